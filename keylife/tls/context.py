"""In-process TLS settings: check a context against a policy, or build one that complies.

``check_context`` reads an ``ssl.SSLContext`` from its attributes. An ``OpenSSL.SSL.Context``
has no getters for versions or suites, so keylife asks it to write a ClientHello into memory
and reads what it offers, with the same parser the endpoint probe uses.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
from pathlib import Path
from typing import Any, Literal

from cryptography import x509

from keylife.clock import SystemClock
from keylife.errors import HelloParseError, TlsError, TlsPolicyError
from keylife.tls.certs import evaluate_chain
from keylife.tls.ciphersuites import CipherSuite, suite_by_code, suites_for_tls12
from keylife.tls.clienthello import TlsVersion, parse_client_hello
from keylife.tls.policy import TlsPolicy, load_policy
from keylife.tls.report import ContextReport
from keylife.tls.rules import FindingCollector, SeenSuite, evaluate_protocols, evaluate_suites

__all__ = ["check_context", "cipher_string", "client_context", "server_context"]

Role = Literal["client", "server"]

_SSL_VERSIONS = {
    ssl.TLSVersion.SSLv3: TlsVersion.SSL3,
    ssl.TLSVersion.TLSv1: TlsVersion.TLS1_0,
    ssl.TLSVersion.TLSv1_1: TlsVersion.TLS1_1,
    ssl.TLSVersion.TLSv1_2: TlsVersion.TLS1_2,
    ssl.TLSVersion.TLSv1_3: TlsVersion.TLS1_3,
}
_NO_FLAGS = {
    TlsVersion.SSL3: ssl.OP_NO_SSLv3,
    TlsVersion.TLS1_0: ssl.OP_NO_TLSv1,
    TlsVersion.TLS1_1: ssl.OP_NO_TLSv1_1,
    TlsVersion.TLS1_2: ssl.OP_NO_TLSv1_2,
    TlsVersion.TLS1_3: ssl.OP_NO_TLSv1_3,
}


def check_context(
    ctx: Any,
    policy: TlsPolicy | str | Path | None = None,
    *,
    role: Role | None = None,
    now: dt.datetime | None = None,
) -> ContextReport:
    """Judge an ``ssl.SSLContext`` or ``OpenSSL.SSL.Context`` against ``policy``.

    Checks the enabled protocol versions and cipher suites (with their real strength), and for
    a client context certificate verification and host-name checking, for a server context the
    loaded certificate (key, signature hash, validity).
    """
    pol = load_policy(policy)
    out = FindingCollector(pol)
    if isinstance(ctx, ssl.SSLContext):
        role = role or _ssl_role(ctx)
        versions, suites, leaf = _inspect_ssl(ctx, role)
        if role == "client":
            if ctx.verify_mode != ssl.CERT_REQUIRED:
                out.add(
                    "tls.context.verify-mode.v1",
                    f"verify_mode={ctx.verify_mode.name}",
                    "CERT_REQUIRED",
                )
            if not ctx.check_hostname:
                out.add("tls.context.hostname-check.v1", "check_hostname=False", "True")
    else:
        role, versions, suites, leaf = _inspect_pyopenssl(ctx, role)
        if role == "client":
            from OpenSSL import SSL

            if not ctx.get_verify_mode() & SSL.VERIFY_PEER:
                out.add("tls.context.verify-mode.v1", "VERIFY_PEER not set", "VERIFY_PEER")
    evaluate_protocols(versions, pol, out, what="enables")
    top = max(versions) if versions else TlsVersion.TLS1_2
    legacy_top = max((v for v in versions if v < TlsVersion.TLS1_3), default=top)
    seen = [SeenSuite(TlsVersion.TLS1_3 if s.tls13 else legacy_top, s) for s in suites]
    evaluate_suites(seen, pol, out)
    certs: tuple[Any, ...] = ()
    if role == "server":
        chain = [leaf] if leaf is not None else []
        certs, _ = evaluate_chain(
            chain,
            host=None,
            ca_file=None,
            now=now or SystemClock().now(),
            out=out,
            endpoint_rules=False,
        )
    findings = out.findings
    return ContextReport(
        context_type=f"{type(ctx).__module__}.{type(ctx).__qualname__}",
        role=role,
        policy=pol.name,
        verdict="fail" if any(f.severity == "fail" for f in findings) else "pass",
        findings=findings,
        min_version=min(versions).label if versions else None,
        max_version=max(versions).label if versions else None,
        suites=tuple(s.result() for s in seen),
        certificates=certs,
    )


def _ssl_role(ctx: ssl.SSLContext) -> Role:
    if ctx.protocol == ssl.PROTOCOL_TLS_SERVER:
        return "server"
    if ctx.protocol == ssl.PROTOCOL_TLS_CLIENT:
        return "client"
    return "client" if ctx.check_hostname else "server"


def _inspect_ssl(
    ctx: ssl.SSLContext, role: Role
) -> tuple[list[TlsVersion], list[CipherSuite], x509.Certificate | None]:
    lowest = TlsVersion.SSL3 if ssl.HAS_SSLv3 else TlsVersion.TLS1_0
    low = _SSL_VERSIONS.get(ctx.minimum_version, lowest)
    high = _SSL_VERSIONS.get(ctx.maximum_version, TlsVersion.TLS1_3)
    versions = [v for v in TlsVersion if low <= v <= high and not ctx.options & _NO_FLAGS[v]]
    suites = []
    for info in ctx.get_ciphers():
        suite = suite_by_code(int(info["id"]) & 0xFFFF)
        if suite is None:
            continue
        if suite.tls13 and TlsVersion.TLS1_3 not in versions:
            continue
        if not suite.tls13 and not any(v < TlsVersion.TLS1_3 for v in versions):
            continue
        suites.append(suite)
    leaf = _ssl_server_leaf(ctx) if role == "server" else None
    return versions, suites, leaf


def _ssl_server_leaf(ctx: ssl.SSLContext) -> x509.Certificate | None:
    """The certificate ``ctx`` serves, read from an in-memory handshake with a lax client."""
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.set_ciphers("ALL:@SECLEVEL=0")
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    cobj = client.wrap_bio(c_in, c_out)
    try:
        sobj = ctx.wrap_bio(s_in, s_out, server_side=True)
    except (ssl.SSLError, ValueError):
        return None
    done = [False, False]
    client_ok = False
    for _ in range(8):
        for i, (obj, src, dst) in enumerate(((cobj, c_out, s_in), (sobj, s_out, c_in))):
            if not done[i]:
                try:
                    obj.do_handshake()
                    done[i] = True
                    client_ok = client_ok or i == 0
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
                except ssl.SSLError:
                    done[i] = True
            dst.write(src.read())
        if all(done):
            break
    der = cobj.getpeercert(binary_form=True) if client_ok else None
    return x509.load_der_x509_certificate(der) if der else None


def _inspect_pyopenssl(
    ctx: Any, role: Role | None
) -> tuple[Role, list[TlsVersion], list[CipherSuite], x509.Certificate | None]:
    try:
        from OpenSSL import SSL
    except ImportError as exc:  # pragma: no cover - pyOpenSSL is a dependency
        raise TlsError("pyOpenSSL is not installed") from exc
    if not isinstance(ctx, SSL.Context):
        raise TlsError(f"not an ssl.SSLContext or OpenSSL.SSL.Context: {type(ctx).__name__}")
    try:
        conn = SSL.Connection(ctx, None)
        local = conn.get_certificate()
        leaf = local.to_cryptography() if local is not None else None
        role = role or ("server" if leaf is not None else "client")
        conn.set_connect_state()
        with contextlib.suppress(SSL.WantReadError):
            conn.do_handshake()
        hello = parse_client_hello(conn.bio_read(65536))
    except (SSL.Error, HelloParseError) as exc:
        raise TlsError(f"cannot inspect the OpenSSL context: {exc}") from exc
    versions = sorted(TlsVersion(v) for v in hello.versions if v in TlsVersion._value2member_map_)
    suites = [s for code in hello.suites if (s := suite_by_code(code)) is not None]
    return role, versions, suites, leaf


_SSL_MIN = {
    TlsVersion.TLS1_2: ssl.TLSVersion.TLSv1_2,
    TlsVersion.TLS1_3: ssl.TLSVersion.TLSv1_3,
}

_TLS13_DEFAULTS = frozenset(
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
)


def cipher_string(policy: TlsPolicy | str | Path | None = None) -> str:
    """An OpenSSL cipher list (TLS 1.2 and below) of the suites ``policy`` allows."""
    from keylife.tls.ciphersuites import openssl_names

    pol = load_policy(policy)
    by_code = {code: name for name, code in openssl_names().items()}
    chosen: list[CipherSuite] = [
        s
        for s in suites_for_tls12()
        if s.code in by_code
        and s.strength >= pol.min_cipher_bits
        and not (s.null_cipher or s.anonymous or s.export or s.rc4)
        and (s.forward_secrecy or not pol.forward_secrecy)
        and pol.allows_suite(s.name, s.cipher)
        and s.authentication in ("RSA", "ECDSA")
    ]
    chosen.sort(key=lambda s: (s.key_exchange != "ECDHE", not s.aead, s.strength != 128))
    if not chosen:
        raise TlsPolicyError(f"policy {pol.name!r} allows no TLS 1.2 suite this OpenSSL offers")
    return ":".join(by_code[s.code] for s in chosen)


# OpenSSL 3's default key-exchange groups, and the one group keylife sets when a policy does not
# allow them all: Python's ssl can set a single group (``set_ecdh_curve``), not a list. P-256 is
# the one every client supports (FIPS included); X25519 and P-384 are the fallbacks.
OPENSSL_DEFAULT_GROUPS = (
    "x25519", "secp256r1", "x448", "secp521r1", "secp384r1",
    "ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192",
)  # fmt: skip
_SINGLE_GROUP = {"secp256r1": "prime256v1", "x25519": "X25519", "secp384r1": "secp384r1"}


def _set_groups(ctx: ssl.SSLContext, pol: TlsPolicy) -> None:
    allowed = pol.allowed_groups
    if allowed is None or set(OPENSSL_DEFAULT_GROUPS) <= allowed:
        return
    choice = next((name for group, name in _SINGLE_GROUP.items() if group in allowed), None)
    if choice is None:
        raise TlsPolicyError(
            f"policy {pol.name!r} allows none of secp256r1, x25519, secp384r1, the groups "
            "Python's ssl module can set; build an OpenSSL.SSL.Context instead"
        )
    ctx.set_ecdh_curve(choice)


def _harden(ctx: ssl.SSLContext, pol: TlsPolicy) -> None:
    if pol.min_version not in _SSL_MIN:
        raise TlsPolicyError(f"keylife builds no context allowing {pol.min_version.label}")
    denied = {
        name
        for name in _TLS13_DEFAULTS
        if (s := _suite(name)) is not None and not pol.allows_suite(s.name, s.cipher)
    }
    if denied:
        raise TlsPolicyError(
            f"policy {pol.name!r} denies TLS 1.3 suites {sorted(denied)}, which Python's ssl "
            "module cannot disable; build an OpenSSL.SSL.Context instead"
        )
    ctx.minimum_version = _SSL_MIN[pol.min_version]
    ctx.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    if pol.min_version < TlsVersion.TLS1_3:
        ctx.set_ciphers(cipher_string(pol))
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_SINGLE_ECDH_USE
    _set_groups(ctx, pol)


def _suite(name: str) -> CipherSuite | None:
    from keylife.tls.ciphersuites import suite_by_name

    return suite_by_name(name)


def server_context(
    policy: TlsPolicy | str | Path | None = None,
    cert: str | Path | None = None,
    key: str | Path | None = None,
    *,
    password: str | None = None,
    client_ca_file: str | Path | None = None,
) -> ssl.SSLContext:
    """A server ``ssl.SSLContext`` that passes ``check_context`` under ``policy``.

    ``cert`` is a PEM file with the leaf followed by its intermediates; ``key`` its private key
    (or None when the key is in ``cert``). With ``client_ca_file``, clients must present a
    certificate issued by one of those CAs (mutual TLS).
    """
    pol = load_policy(policy)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(ctx, pol)
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        if cert is not None:
            ctx.load_cert_chain(cert, key, password=password)
        if client_ca_file is not None:
            ctx.load_verify_locations(cafile=client_ca_file)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load the server certificate or CA: {exc}") from exc
    return ctx


def client_context(
    policy: TlsPolicy | str | Path | None = None,
    *,
    ca_file: str | Path | None = None,
    cert: str | Path | None = None,
    key: str | Path | None = None,
    password: str | None = None,
) -> ssl.SSLContext:
    """A client ``ssl.SSLContext`` that verifies certificates and host names under ``policy``.

    Trusts ``ca_file`` when given, else the system store. ``cert``/``key`` add a client
    certificate for mutual TLS.
    """
    pol = load_policy(policy)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _harden(ctx, pol)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    try:
        if ca_file is not None:
            ctx.load_verify_locations(cafile=ca_file)
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if cert is not None:
            ctx.load_cert_chain(cert, key, password=password)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load the CA or client certificate: {exc}") from exc
    return ctx
