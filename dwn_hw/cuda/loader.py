"""Build-on-first-use loader of the CUDA extension (``torch.utils.cpp_extension.load`` + ninja).

The build lands in a per-user cache folder keyed by the sources, torch, CUDA and Python versions, so a
second process (or a torchrun worker) loads it in a second. When CUDA is missing nothing is built; when the
build fails the reason is kept (:func:`error`), one ``RuntimeWarning`` says so, and the callers use the CPU
code instead.

Environment
-----------
``DWN_HW_CUDA_CACHE``
    Cache folder (default ``$XDG_CACHE_HOME/dwn_hw/cuda`` or ``~/.cache/dwn_hw/cuda``).
``DWN_HW_DISABLE_CUDA_EXT=1``
    Never build or load the extension (the layers then run the CPU code on CUDA tensors).
"""
from __future__ import annotations

import hashlib
import os
import platform
import sys
import threading
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = ("binding.cpp", "efd_kernels.cu", "baseline_kernels.cu")
HEADERS = ("efd_kernels.h",)

_lock = threading.Lock()
_module = None
_error: str | None = None
_tried = False


def cache_root() -> Path:
    """Folder that holds the builds (one sub-folder per build key)."""
    env = os.environ.get("DWN_HW_CUDA_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dwn_hw" / "cuda"


def build_key() -> str:
    """Hash of everything the compiled module depends on: sources, torch, CUDA, Python, machine."""
    import torch

    digest = hashlib.sha256()
    for name in SOURCES + HEADERS:
        digest.update(name.encode())
        digest.update((HERE / name).read_bytes())
    for part in (torch.__version__, str(torch.version.cuda), sys.version.split()[0], platform.machine()):
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def disabled() -> bool:
    return os.environ.get("DWN_HW_DISABLE_CUDA_EXT", "") not in ("", "0")


def load(verbose: bool = False):
    """The compiled module, building it on first use; ``None`` when CUDA or the build is unavailable.

    The outcome (module or reason) is remembered for the life of the process.
    """
    global _module, _error, _tried
    with _lock:
        if _tried:
            return _module
        _tried = True
        if disabled():
            _error = "disabled by DWN_HW_DISABLE_CUDA_EXT"
            return None
        try:
            import torch
        except Exception as exc:  # a broken torch install: report, do not crash the import
            _error = f"torch could not be imported ({type(exc).__name__}: {exc})"
            return None
        if not torch.cuda.is_available():
            _error = "torch.cuda.is_available() is false"
            return None
        try:
            _module = _build(verbose)
        except Exception as exc:  # nvcc missing, compiler error, ABI mismatch, ...
            _error = f"building the CUDA extension failed: {_summary(exc)}"
            warnings.warn(f"dwn_hw: {_error}; LUT layers on CUDA tensors use the CPU code "
                          f"(slow). Build folder: {cache_root()}", RuntimeWarning, stacklevel=2)
            _module = None
        return _module


def error() -> str | None:
    """Why :func:`load` returned ``None`` (``None`` before the first try or when it succeeded)."""
    return _error


def _build(verbose: bool):
    from torch.utils import cpp_extension

    key = build_key()
    build_dir = cache_root() / key
    build_dir.mkdir(parents=True, exist_ok=True)
    name = f"dwn_hw_cuda_{key}"
    if not any(build_dir.glob(f"{name}*.so")) and not verbose:
        print(f"dwn_hw: building the CUDA LUT kernels in {build_dir} (first use, about a minute)",
              file=sys.stderr, flush=True)
    return cpp_extension.load(
        name=name,
        sources=[str(HERE / s) for s in SOURCES],
        extra_include_paths=[str(HERE)],
        extra_cflags=["-O3"],
        extra_cuda_cflags=["-O3", "-lineinfo"],
        build_directory=str(build_dir),
        verbose=verbose,
    )


def _summary(exc: BaseException, limit: int = 1500) -> str:
    """One readable line from a build exception (the compiler's last lines when present)."""
    text = f"{type(exc).__name__}: {exc}"
    text = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= limit else "..." + text[-limit:]
