"""The C++ kernels in ``csrc/``, compiled on first use and loaded with ctypes.

The sources use a plain C ABI and no torch headers, so a build takes a second or two with the system
C++ compiler (``$CXX``, else ``c++``). The library is cached under ``$DWN_HW_CACHE`` (default
``~/.cache/dwn_hw``), keyed by the sources, the flags and the CPU (it is built with ``-march=native``), and
written atomically so concurrent first uses are safe. When no build works, :func:`library` warns once and
returns ``None``, and every caller falls back to vectorized torch code.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path

_lock = threading.Lock()
_lib = None
_lib_error = None

_CSRC = Path(__file__).with_name("csrc")
_SOURCES = [_CSRC / name for name in ("mapping_adam.cpp", "lut_kernels.cpp")]
_HEADERS = [_CSRC / "parallel.h"]
_FLAG_SETS = (["-O3", "-march=native", "-fno-math-errno", "-pthread"], ["-O3", "-fno-math-errno", "-pthread"],
              ["-O3", "-pthread"])

_P, _I64, _I, _F, _D = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_float, ctypes.c_double
_SIGNATURES = {
    "dwn_mapping_adam_argmax": [_P, _P, _I64, _I64, _I64, _P, _P, _P, _P, _F, _F, _F, _F, _F, _I, _I, _D, _D, _I,
                                _P, _P],
    "dwn_lut_forward": [_P, _P, _P, _I64, _I64, _I64, _I, _P, _P, _I],
    "dwn_lut_backward": [_P, _P, _P, _P, _F, _F, _I64, _I64, _I64, _I, _P, _P, _I],
}


def cache_dir() -> Path:
    base = os.environ.get("DWN_HW_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "dwn_hw")
    return Path(base) / "ext"


def library():
    """The compiled kernels (a ``ctypes.CDLL``), or ``None`` when they cannot be built (warned once)."""
    global _lib, _lib_error
    if _lib is not None or _lib_error is not None:
        return _lib
    with _lock:
        if _lib is None and _lib_error is None:
            try:
                _lib = _build_and_load()
            except Exception as exc:  # any build problem: fall back, say so once
                text = str(exc).strip()
                _lib_error = text.splitlines()[-1] if text else type(exc).__name__
                warnings.warn(f"dwn_hw: could not build the C++ CPU kernels ({_lib_error}); using vectorized "
                              "torch code (slower)", RuntimeWarning, stacklevel=2)
    return _lib


def _cpu_signature() -> str:
    """What -march=native depends on, so a cache shared between machines never runs foreign code."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [line for line in f if line.startswith(("model name", "flags"))][:2]
    except OSError:
        lines = []
    return platform.machine() + "".join(lines)


def _build_and_load():
    compiler = os.environ.get("CXX", "c++")
    source = b"".join(path.read_bytes() for path in _SOURCES + _HEADERS) + _cpu_signature().encode()
    errors = []
    for flags in _FLAG_SETS:
        key = hashlib.sha256(source + " ".join([compiler, *flags, sys.platform]).encode()).hexdigest()[:16]
        target = cache_dir() / f"dwn_hw_cpu-{key}.so"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
            os.close(fd)
            cmd = [compiler, *flags, "-std=c++17", "-shared", "-fPIC", *map(str, _SOURCES), "-o", tmp]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True)
            except OSError as exc:
                os.unlink(tmp)
                raise RuntimeError(f"cannot run {compiler!r}: {exc}") from None
            if proc.returncode != 0:
                os.unlink(tmp)
                errors.append(f"{' '.join(cmd)}: {proc.stderr.strip()[-300:]}")
                continue
            os.replace(tmp, target)         # atomic: concurrent builders never see half a file
        lib = ctypes.CDLL(str(target))
        for name, argtypes in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype = ctypes.c_int
            fn.argtypes = argtypes
        return lib
    raise RuntimeError("; ".join(errors) or "no compiler flags worked")
