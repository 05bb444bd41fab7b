"""``keylife encrypt|decrypt|sign|verify|rewrap``: a ring's operations for operators and scripts.

Input is stdin or ``--in FILE``, output stdout or ``--out FILE``, binary-safe; ``--base64``
reads and writes one base64 line instead (the form ``keylife rewrap`` files hold). The formats
are the library's (docs/formats.md). ``--out`` files are written to a temporary file and
renamed into place only when the whole operation succeeded (0600).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import click

from .context import EXIT_FAILED, Obj, emit, errors, fail, pass_obj

#: The message formats (encrypt, sign) read their input whole, up to this size.
MAX_MESSAGE = 64 * 1024 * 1024
STREAM_FORMAT = 0x02


def _open_in(path: str | None) -> BinaryIO:
    if path is None or path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--in") from None


def _read_all(src: BinaryIO, what: str, as_base64: bool = False) -> bytes:
    data = src.read(MAX_MESSAGE + 1)
    if len(data) > MAX_MESSAGE:
        raise click.UsageError(
            f"{what} reads at most 64 MiB; use `keylife encrypt --stream` for large files"
        )
    if as_base64:
        try:
            return base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise click.UsageError("--base64 input is not valid base64") from None
    return data


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[BinaryIO]:
    """stdout, or a temporary file next to ``path`` renamed over it on success only."""
    if path is None or path == "-":
        out = sys.stdout.buffer
        yield out
        out.flush()
        return
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise click.BadParameter(
            f"cannot write {path}: {exc.strerror}", param_hint="--out"
        ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _write(dst: BinaryIO, data: bytes, as_base64: bool) -> None:
    dst.write(base64.b64encode(data) + b"\n" if as_base64 else data)


_in = click.option("--in", "in_path", metavar="FILE", help="Read FILE instead of stdin.")
_out = click.option("--out", "out_path", metavar="FILE", help="Write FILE instead of stdout.")
_b64 = click.option("--base64", "as_base64", is_flag=True, help="Base64 text instead of bytes.")
_ad = click.option(
    "--associated-data", "ad", default="", help="Context bound to the ciphertext (text)."
)


@click.command()
@click.argument("ring")
@_in
@_out
@_b64
@_ad
@click.option("--stream", is_flag=True, help="Segmented format for large files (any size).")
@pass_obj
def encrypt(
    obj: Obj,
    ring: str,
    in_path: str | None,
    out_path: str | None,
    as_base64: bool,
    ad: str,
    stream: bool,
) -> None:
    """Encrypt stdin (or --in) under RING's primary."""
    if stream and as_base64:
        raise click.UsageError("--stream writes binary; leave out --base64")
    with errors(obj), obj.manager() as m, contextlib.ExitStack() as stack:
        r = m.ring(ring)
        src = stack.enter_context(_open_in(in_path)) if in_path else _open_in(None)
        if stream:
            with _output(out_path) as dst:
                r.encrypt_stream(src, dst, ad.encode())
            return
        data = _read_all(src, "encrypt")
        blob = r.encrypt(data, ad.encode())
        with _output(out_path) as dst:
            _write(dst, blob, as_base64)


@click.command()
@click.argument("ring")
@_in
@_out
@_b64
@_ad
@pass_obj
def decrypt(
    obj: Obj, ring: str, in_path: str | None, out_path: str | None, as_base64: bool, ad: str
) -> None:
    """Decrypt what `keylife encrypt RING` wrote (either format, told apart by its first byte)."""
    with errors(obj), obj.manager() as m, contextlib.ExitStack() as stack:
        r = m.ring(ring)
        src = stack.enter_context(_open_in(in_path)) if in_path else _open_in(None)
        if not as_base64:
            first = src.read(1)
            if first == bytes([STREAM_FORMAT]):
                with _output(out_path) as dst:
                    r.decrypt_stream(cast(BinaryIO, _Prefixed(first, src)), dst, ad.encode())
                return
            data = first + _read_all(src, "decrypt")
        else:
            data = _read_all(src, "decrypt", as_base64=True)
        plain = r.decrypt(data, ad.encode())
        with _output(out_path) as dst:
            dst.write(plain)


class _Prefixed:
    """A binary stream with bytes already read put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._rest.read(size)
        head, self._head = self._head, b""
        if size < 0:
            return head + self._rest.read()
        return head + self._rest.read(size - len(head)) if size > len(head) else head


@click.command()
@click.argument("ring")
@_in
@_out
@_b64
@click.option("--jws", is_flag=True, help="Write a compact JWS of the input instead.")
@pass_obj
def sign(
    obj: Obj, ring: str, in_path: str | None, out_path: str | None, as_base64: bool, jws: bool
) -> None:
    """Sign stdin (or --in) with RING's primary; the signature names its version."""
    with errors(obj), obj.manager() as m, contextlib.ExitStack() as stack:
        r = m.ring(ring)
        src = stack.enter_context(_open_in(in_path)) if in_path else _open_in(None)
        data = _read_all(src, "sign")
        if jws:
            token = r.sign_jws(data).encode() + b"\n"
            with _output(out_path) as dst:
                dst.write(token)
            return
        signature = r.sign(data)
        with _output(out_path) as dst:
            _write(dst, signature, as_base64)


@click.command()
@click.argument("ring")
@click.option("--signature", "signature_path", required=True, metavar="FILE")
@_in
@_b64
@pass_obj
def verify(obj: Obj, ring: str, signature_path: str, in_path: str | None, as_base64: bool) -> None:
    """Check a `keylife sign RING` signature of stdin (or --in); exit 1 if it does not verify."""
    from keylife.errors import InvalidSignatureError

    try:
        with open(signature_path, "rb") as handle:
            raw = handle.read(MAX_MESSAGE + 1)
    except OSError as exc:
        raise click.BadParameter(str(exc.strerror), param_hint="--signature") from None
    if as_base64:
        try:
            raw = base64.b64decode(raw.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise click.UsageError("--base64 signature is not valid base64") from None
    with errors(obj), obj.manager() as m, contextlib.ExitStack() as stack:
        r = m.ring(ring)
        src = stack.enter_context(_open_in(in_path)) if in_path else _open_in(None)
        data = _read_all(src, "verify")
        try:
            kid = r.verify(data, raw)
        except InvalidSignatureError as exc:
            fail(obj, str(exc), EXIT_FAILED, type(exc).__name__)
    emit(
        obj, {"valid": True, "kid": kid}, lambda: click.echo(f"valid signature by {kid}", err=True)
    )


@click.command()
@click.argument("ring")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, writable=True))
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100000))
@pass_obj
def rewrap(obj: Obj, ring: str, file: str, batch_size: int) -> None:
    """Re-encrypt FILE's ciphertexts (one base64 blob per line) under RING's primary.

    The file is replaced atomically after each batch and FILE.rewrap-checkpoint records
    progress: an interrupted run resumes where it stopped.
    """
    from keylife.rewrap import rewrap_file

    with errors(obj), obj.manager() as m:
        result = rewrap_file(m.ring(ring), file, batch_size=batch_size)
    doc = result.to_dict()
    resumed = (
        f" (resumed at line {result.resumed_from_line + 1})" if result.resumed_from_line else ""
    )
    emit(
        obj,
        doc,
        f"rewrapped {result.rewrapped} of {result.lines} lines to {ring} "
        f"v{result.target_version}{resumed}",
    )
