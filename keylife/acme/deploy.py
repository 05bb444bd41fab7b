"""Deploy a certificate as PEM files, atomically, and run a reload hook.

Each file is written to a temporary file in the same directory (the private key created 0600
from the start), fsync'd, and renamed over the old one with :func:`os.replace`, then the
directory is fsync'd: a reader sees the old file or the new one, never a partial one. The key is
written first and ``fullchain.pem`` last; servers should reload from the deploy hook.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from keylife.acme.challenges import run_hook
from keylife.errors import AcmeError
from keylife.files import atomic_write as files_atomic_write

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


@dataclass(frozen=True)
class DeployedFiles:
    directory: Path
    privkey: Path
    cert: Path
    chain: Path
    fullchain: Path

    def environment(self) -> dict[str, str]:
        return {
            "KEYLIFE_DEPLOY_DIR": str(self.directory),
            "KEYLIFE_PRIVKEY": str(self.privkey),
            "KEYLIFE_CERT": str(self.cert),
            "KEYLIFE_CHAIN": str(self.chain),
            "KEYLIFE_FULLCHAIN": str(self.fullchain),
        }


def atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data`` atomically (:func:`keylife.files.atomic_write`)."""
    files_atomic_write(path, data, mode=mode, error=AcmeError)


def deploy_files(
    directory: str | os.PathLike[str],
    *,
    certificate_pem: str,
    chain_pem: str,
    private_key_pem: bytes,
) -> DeployedFiles:
    """Write ``privkey.pem`` (0600), ``cert.pem``, ``chain.pem``, ``fullchain.pem`` (0644)."""
    target = Path(directory)
    try:
        target.mkdir(parents=True, exist_ok=True, mode=0o755)
    except OSError as exc:
        raise AcmeError(f"cannot create the deploy directory {target}: {exc.strerror}") from exc
    files = DeployedFiles(
        directory=target,
        privkey=target / "privkey.pem",
        cert=target / "cert.pem",
        chain=target / "chain.pem",
        fullchain=target / "fullchain.pem",
    )
    atomic_write(files.privkey, private_key_pem, PRIVATE_MODE)
    atomic_write(files.cert, certificate_pem.encode("ascii"), PUBLIC_MODE)
    atomic_write(files.chain, chain_pem.encode("ascii"), PUBLIC_MODE)
    atomic_write(files.fullchain, (certificate_pem + chain_pem).encode("ascii"), PUBLIC_MODE)
    return files


def run_deploy_hook(
    command: str,
    *,
    ring: str,
    version: int | None,
    domains: Sequence[str],
    files: DeployedFiles | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
) -> None:
    """Run ``command`` (through ``/bin/sh -c``) after an issue or renewal.

    Environment: ``KEYLIFE_RING``, ``KEYLIFE_VERSION``, ``KEYLIFE_DOMAINS`` (space separated),
    and when files were deployed ``KEYLIFE_DEPLOY_DIR``, ``KEYLIFE_PRIVKEY``, ``KEYLIFE_CERT``,
    ``KEYLIFE_CHAIN``, ``KEYLIFE_FULLCHAIN``; also certbot's ``RENEWED_LINEAGE`` and
    ``RENEWED_DOMAINS`` so existing certbot deploy hooks keep working. Nothing else of
    keylife's environment but :data:`~keylife.acme.challenges.HOOK_ENV_ALLOWED` is passed.
    """
    env = {
        "KEYLIFE_RING": ring,
        "KEYLIFE_VERSION": "" if version is None else str(version),
        "KEYLIFE_DOMAINS": " ".join(domains),
        "RENEWED_DOMAINS": " ".join(domains),
    }
    if files is not None:
        env.update(files.environment())
        env["RENEWED_LINEAGE"] = str(files.directory)
    env.update(extra_env or {})
    run_hook(command, env, what="the deploy hook", timeout=timeout)


__all__ = ["DeployedFiles", "atomic_write", "deploy_files", "run_deploy_hook"]
