"""Benchmark: place-and-route time of a model with local mappings, beside the same-shaped model with global ones.

Prints JSON (and writes it with --json). For each IR: `dwn-hw export IR --board B --pipeline P`, then
`dwn-hw synth --board B` (ECP5: `--no-board-build`, the core alone in its harness; iCE40: `--no-core-pnr`, the
board build inside the UART wrapper), each under a wall-clock limit. The figure is the local model's
place-and-route seconds; the baseline the global model's, measured in the same run (when it does not finish
within --timeout the baseline is reported as "not routed in T s" and the ratio as an upper bound T_local / T).
Fmax, cells and the router's last line (arcs still overused) come with each.

    python bench/route.py --board ulx3s --pipeline max --global models/mnist_tutorial.ir.json \\
        --local models/mnist_tutorial_loc.ir.json --timeout 600
    python bench/route.py --board icebreaker --pipeline none --baud 3000000 \\
        --global models/mnist_ice40s.ir.json --local models/mnist_ice40l.ir.json --timeout 720
    python bench/route.py ... --work DIR --report-only   # read an earlier run's reports in DIR (DIR/local,
                                                          # DIR/global bundles; a missing report = stopped)
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dwn_hw.fsutil import atomic_write_text  # noqa: E402
from dwn_hw.synth.boards import load_board  # noqa: E402


def dwn(*args: str) -> list[str]:
    return [sys.executable, "-m", "dwn_hw.cli", *args]


def last_router_line(build: Path, synth_log: Path) -> str | None:
    """The router's last progress line (what was left when it stopped): from the nextpnr log of the build, else
    from synth's own progress lines (a killed nextpnr may not have flushed its log)."""
    for log in [*sorted(build.glob("*nextpnr.log")), synth_log]:
        if not log.exists():
            continue
        lines = [m.group(0) for ln in log.read_text(errors="replace").splitlines()
                 if (m := re.search(r"Info:\s+\d+ \|.*", ln))]
        if lines:
            return lines[-1].strip()
    return None


def one(name: str, ir: str, args, work: Path) -> dict:
    bundle = work / name
    ice40 = load_board(args.board).family == "ice40"
    if not args.report_only:
        subprocess.run(dwn("export", ir, "-o", str(bundle), "--board", args.board, "--pipeline", args.pipeline,
                           "--force"), check=True, capture_output=True)
    report = work / f"{name}.json"
    flags = ["--no-core-pnr", "--baud", str(args.baud)] if ice40 else ["--no-board-build"]
    t0 = time.perf_counter()
    rc = 0
    if not args.report_only:
        with open(work / f"{name}.synth.log", "w") as log:
            try:
                rc = subprocess.run(dwn("synth", str(bundle), "--board", args.board, "--json", str(report), "--force",
                                        *flags), timeout=args.timeout, stdout=log, stderr=subprocess.STDOUT).returncode
            except subprocess.TimeoutExpired:
                rc = None
    wall = time.perf_counter() - t0
    out = {"ir": ir, "routed": False, "wall_s": None if args.report_only else round(wall, 1)}
    build = bundle / "build" / "synth" / args.board
    if report.exists() and rc == 0:
        rep = json.loads(report.read_text())
        part = rep if ice40 else rep["core"]   # the board build's figures are the report's top level
        times = rep.get("times_s") or {}
        out.update(routed=True, pnr_s=round(times.get("nextpnr_board" if ice40 else "nextpnr_core", wall), 1),
                   fmax_mhz=part.get("fmax_mhz"), luts=part.get("luts"), ffs=part.get("ffs"),
                   carry=part.get("carry"), latency_cycles=rep.get("latency_cycles"))
    else:
        # --report-only: a run without a report is taken to have been stopped at --timeout
        out["stopped_after_s"] = args.timeout if rc is None or args.report_only else None
    out["router_last_line"] = last_router_line(build, work / f"{name}.synth.log")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", required=True)
    ap.add_argument("--pipeline", default="balanced")
    ap.add_argument("--baud", type=int, default=3_000_000)
    ap.add_argument("--global", dest="glob", required=True, help="IR with global (torch-dwn) mappings")
    ap.add_argument("--local", required=True, help="IR of the same shape with local mappings")
    ap.add_argument("--timeout", type=float, default=600.0, help="wall-clock limit per place-and-route")
    ap.add_argument("--work", default=None, help="folder for bundles and reports [default: a temporary one]")
    ap.add_argument("--report-only", action="store_true", help="read the reports in --work; run nothing")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="dwn-route-"))
    work.mkdir(parents=True, exist_ok=True)
    res = {"bench": "route", "board": args.board, "pipeline": args.pipeline, "timeout_s": args.timeout,
           "local": one("local", args.local, args, work), "global": one("global", args.glob, args, work)}
    loc, glo = res["local"], res["global"]
    if loc["routed"] and glo["routed"]:
        res["ratio"] = round(loc["pnr_s"] / glo["pnr_s"], 3)
    elif loc["routed"]:
        res["ratio_at_most"] = round(loc["pnr_s"] / args.timeout, 3)
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        atomic_write_text(args.json, text + "\n")


if __name__ == "__main__":
    main()
