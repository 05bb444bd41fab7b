"""Examples shown at the end of each command's ``--help``: one table, looked up by the
command's path (``key create``), so every command's help ends the same way."""

from __future__ import annotations

EXAMPLES: dict[str, tuple[str, ...]] = {
    "init": ("keylife init", "keylife --store vault://vault.internal:8200/keylife init"),
    "key": ("keylife key create payments-signing --purpose signing", "keylife key list"),
    "key create": (
        "keylife key create payments-signing --purpose signing",
        "keylife key create orders --purpose data-encryption --type aes-256",
    ),
    "key import": (
        "keylife key import legacy-signing --file key.pem --type rsa-3072 --purpose signing",
        "keylife key import archive --file aes.key --type aes-256 --purpose data-encryption",
    ),
    "key list": ("keylife key list", "keylife key list --prefix payments- --limit 20 --jsonl"),
    "key show": ("keylife key show orders", "keylife key show orders 2 --json"),
    "key history": ("keylife key history orders",),
    "key activate": ("keylife key activate orders 2",),
    "key deactivate": ("keylife key deactivate orders 1 --reason 'moved to v2'",),
    "key suspend": ("keylife key suspend orders 2 --reason 'under investigation'",),
    "key resume": ("keylife key resume orders 2",),
    "key destroy": (
        "keylife key destroy orders 1 --reason 'no data left under v1'",
        "keylife key destroy orders 2 --wait 0s  # a compromised version only",
    ),
    "key cancel-destroy": ("keylife key cancel-destroy orders 1",),
    "key approve": ("keylife --actor bob key approve orders 1",),
    "key revoke": ("keylife key revoke orders 1 --reason superseded",),
    "key recover": (
        "keylife key recover orders 2 --reason 'INC-42 re-encryption' --in old.bin --out plain",
    ),
    "key retire": ("keylife key retire old-partner-api --reason 'contract ended'",),
    "key rotate": ("keylife key rotate orders",),
    "key compromise": ("keylife key compromise orders --occurred-at 2026-11-28T22:00Z",),
    "rotate": (
        "keylife rotate --dry-run",
        "keylife rotate --wait 60 --metrics-file /var/lib/node_exporter/keylife.prom",
    ),
    "backup": ("keylife backup /var/backups/keylife.klb --passphrase-file /etc/keylife/bk.pass",),
    "restore": ("keylife restore /var/backups/keylife.klb --passphrase-file /etc/keylife/bk.pass",),
    "audit": ("keylife audit verify", "keylife audit show --ring orders"),
    "audit show": ("keylife audit show --ring orders", "keylife --json audit show"),
    "audit verify": (
        "keylife audit verify",
        "keylife audit verify --checkpoints /srv/anchors/keylife.checkpoints",
    ),
    "audit checkpoint": ("keylife audit checkpoint --out /srv/anchors/keylife.checkpoints",),
    "policy": ("keylife policy show", "keylife policy check /etc/keylife/policy.toml"),
    "policy show": ("keylife policy show", "keylife --policy 128-bit policy show"),
    "policy check": (
        "keylife policy check /etc/keylife/policy.toml",
        "keylife --policy 128-bit policy check --store",
    ),
    "report": (
        "keylife report --format html --out report.html",
        "keylife report --format json --as-of 2031-01-01 --window 180d",
        "keylife report --tls targets.txt --format html --out report.html",
    ),
    "store": ("keylife store rekey", "keylife store migrate --from ./k.db --to vault://v:8200/kl"),
    "tls": ("keylife tls check example.internal:443",),
    "tls check": (
        "keylife tls check example.internal:443",
        "keylife tls check 10.0.0.5:8443 --sni api.internal --json",
    ),
    "cert": ("keylife cert issue web --domain www.example.com --directory URL --agree-tos",),
    "cert list": ("keylife cert list", "keylife cert list --json"),
    "cert show": ("keylife cert show web", "keylife cert show web --json"),
    "cert renew": ("keylife cert renew web", "keylife cert renew web --force"),
    "cert revoke": ("keylife cert revoke web --reason superseded --renew",),
    "vault": ("keylife --store vault://127.0.0.1:8200/keylife vault setup",),
    "vault setup": ("keylife --store vault://127.0.0.1:8200/keylife vault setup",),
    "vault policy": (
        "keylife --store vault://127.0.0.1:8200/keylife vault policy orders",
        "keylife --store vault://127.0.0.1:8200/keylife vault policy jwt-signing --verify-only",
    ),
    "completion": (
        "keylife completion bash > /etc/bash_completion.d/keylife",
        "keylife completion zsh > ~/.zfunc/_keylife",
    ),
}


def epilog(path: str) -> str | None:
    """The ``Examples:`` block for command ``path`` (``key create``), or None."""
    lines = EXAMPLES.get(path)
    if not lines:
        return None
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
