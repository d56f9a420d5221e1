"""Atomic file writes shared by every module that saves something a user keeps."""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
from collections.abc import Iterator
from typing import IO


def fsync_directory(directory: pathlib.Path) -> None:
    """Flush a directory entry to disk (best effort; a no-op where unsupported)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; when the block ends without an
    error it is flushed, fsync-ed and renamed onto ``path`` (``os.replace``). On any error
    (a crash mid-write, Ctrl-C) the temporary file is removed and ``path`` is untouched, so a
    previous version is never lost or half-written. Creates missing parent directories."""
    if mode not in ("wb", "w"):
        raise ValueError(f"mode={mode!r}: atomic_open writes, pass 'wb' or 'w'")
    path = pathlib.Path(path)
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)  # mode is filtered by the umask
        except FileExistsError:  # pragma: no cover - astronomically unlikely
            continue
        break
    try:
        with os.fdopen(fd, mode, **({"newline": ""} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_directory(directory)
