"""Targets of ``tls check``: ``HOST[:PORT]`` parsing and the host-name rule for hosts and SNI.

A name is checked before anything is sent or resolved, so a bad one is a one-line usage error
naming the rule it breaks, not a resolver or IDNA exception from deep inside a probe.
"""

from __future__ import annotations

import ipaddress
import re

from keylife.errors import TlsError, TlsTargetError

__all__ = [
    "HOST_NAME_RULE",
    "MAX_LABEL",
    "MAX_NAME",
    "check_host",
    "check_server_name",
    "parse_target",
]

MAX_LABEL = 63
MAX_NAME = 253
HOST_NAME_RULE = (
    f"a host name is at most {MAX_NAME} characters of dot-separated labels, each 1-{MAX_LABEL} "
    "letters, digits or '-' (not first or last; IDNA for other scripts)"
)
_LDH = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")


def _shown(name: str) -> str:
    return repr(name if len(name) <= 80 else name[:77] + "...")


def _breaks(name: str, what: str, reason: str) -> TlsTargetError:
    return TlsTargetError(
        f"{what} {_shown(name)} is not a valid host name: {reason}; {HOST_NAME_RULE}",
        name=name,
        rule=reason,
    )


def _check_name(name: str, what: str) -> str:
    """``name`` (one trailing dot dropped) if it follows the host-name rule."""
    bare = name[:-1] if name.endswith(".") else name
    if not bare:
        raise _breaks(name, what, "it is empty")
    try:
        ascii_name = bare.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_name = None
    labels = (ascii_name or bare).split(".")
    for label in labels:
        if not label:
            raise _breaks(name, what, "it has an empty label")
        if len(label) > MAX_LABEL:
            raise _breaks(name, what, f"a label is {len(label)} characters (at most {MAX_LABEL})")
        if not _LDH.fullmatch(label):
            raise _breaks(
                name,
                what,
                f"label {_shown(label)} has a character other than a-z, 0-9 or '-', "
                "or starts or ends with '-'",
            )
    if ascii_name is None:
        raise _breaks(name, what, "it cannot be encoded as IDNA")
    if len(ascii_name) > MAX_NAME:
        raise _breaks(name, what, f"it is {len(ascii_name)} characters (at most {MAX_NAME})")
    return bare


def check_host(host: str) -> str:
    """``host`` if it is an IP address or a valid host name; :class:`TlsTargetError` if not."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        _check_name(host, "host")
    return host


def check_server_name(name: str) -> str:
    """The SNI name to send (no trailing dot); :class:`TlsTargetError` if not a host name."""
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return _check_name(name, "--sni")
    raise TlsTargetError(
        f"--sni {_shown(name)} is an IP address, which SNI cannot carry (RFC 6066); "
        "omit --sni and the certificate must name the IP",
        name=name,
        rule="an IP address is not a server name",
    )


def parse_target(target: str, default_port: int = 443) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address -> (host, port)."""
    target = target.strip()
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port = rest.removeprefix(":") or str(default_port)
    elif target.count(":") == 1:
        host, port = target.split(":")
    else:
        host, port = target, str(default_port)
    if not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise TlsError(f"not a HOST[:PORT] target: {_shown(target)}")
    return check_host(host), int(port)
