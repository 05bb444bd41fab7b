"""Writing files safely where another local user may be waiting: the one atomic writer.

:func:`atomic_write` is the only way keylife replaces a file. It writes a temporary file with a
random name created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and its final mode from the start
(so a pre-created name or a symlink planted in the directory is never followed or chmodded),
fsyncs it, renames it over the destination (a symlink *at* the destination is replaced, never
followed) and fsyncs the directory. :func:`private_dir` makes directories 0700 whatever the
umask.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from .errors import KeylifeError

__all__ = ["atomic_write", "check_private_file", "private_dir", "read_capped"]


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    mode: int = 0o600,
    error: type[KeylifeError] = KeylifeError,
) -> None:
    """Replace ``path`` with ``data`` atomically; the new file has exactly ``mode``.

    Failures raise ``error`` (a :class:`KeylifeError` subclass) naming the path, with the
    ``OSError`` as ``__cause__``.
    """
    target = Path(path)
    directory = target.parent
    tmp = directory / f".{target.name}.{secrets.token_hex(8)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except OSError as exc:
        raise error(f"cannot write in {directory}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # the umask may have taken bits away
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise error(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(directory)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename in ``directory`` durable (best effort where directories cannot open)."""
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def private_dir(path: str | os.PathLike[str], *, error: type[KeylifeError] = KeylifeError) -> Path:
    """Create ``path`` (and missing parents) as 0700 directories, whatever the umask.

    An existing directory is left as it is (the operator chose its mode); a non-directory or a
    symlink at ``path`` is refused.
    """
    target = Path(path)
    missing: list[Path] = []
    p = target
    while not p.exists() and not p.is_symlink():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise error(f"cannot create directory {d}: {exc.strerror or exc}") from exc
        else:
            with contextlib.suppress(OSError):
                os.chmod(d, 0o700, follow_symlinks=False)
    try:
        st = os.lstat(target)
    except OSError as exc:
        raise error(f"cannot use directory {target}: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise error(f"{target} is not a directory")
    return target


def check_private_file(
    path: str | os.PathLike[str], *, what: str, error: type[KeylifeError]
) -> None:
    """Refuse a secret file that group or others may read or write (as ssh does)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {path} is not a regular file")
    if st.st_mode & 0o077:
        raise error(
            f"{what} {path} is accessible by others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run `chmod 600 {path}`"
        )


def read_capped(
    path: str | os.PathLike[str],
    cap: int,
    *,
    what: str = "file",
    error: type[KeylifeError] = KeylifeError,
) -> bytes:
    """The bytes of ``path``, refusing (``error``, naming the path) anything over ``cap``."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(cap + 1)
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > cap:
        size = f"{cap >> 20} MiB" if cap >= 1 << 20 else f"{cap} bytes"
        raise error(f"{path} is larger than {size}; not a {what}")
    return data
