"""``python -m keylife_cli`` runs the CLI."""

from .main import main

main()
