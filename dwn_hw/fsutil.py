"""Atomic writes: a file or folder appears whole or not at all."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from dwn_hw.errors import DwnHwError


def check_new(path: str | os.PathLike, force: bool) -> Path:
    """Refuse to replace an existing path unless ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise DwnHwError(f"{path} already exists; pass --force to overwrite it")
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes 0600 files; give the file the mode a plain open() would (umask applies).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, force: bool = False, before_swap=None):
    """Build a folder in a hidden sibling and move it into place only when the block succeeds.

    Yields the temporary folder. An interrupted build leaves no half folder at ``path``. With
    ``force`` an existing folder at ``path`` is replaced: it stays untouched until the new one is
    complete, ``before_swap(tmp)`` then runs (the caller carries over what it must keep; an
    exception there leaves the old folder as it was), the old folder is renamed aside, the new
    one renamed into place, and only then is the old one removed. Deciding *whether* a folder may
    be replaced is the caller's business (``dwn_hw.export`` replaces only marked bundles).
    """
    path = Path(path)
    check_new(path, force)
    if path.exists() and not path.is_dir():
        raise DwnHwError(f"{path} is a file, not a folder; it is not replaced (choose another path)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        if before_swap is not None:
            before_swap(tmp)
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, old)          # a folder may be renamed onto an empty one
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)      # put the old one back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def link_or_copy(src: Path, dst: Path) -> None:
    """Put ``src`` at ``dst`` without touching ``src``: a hard link where possible, else a copy
    (a symbolic link is recreated as a link)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
