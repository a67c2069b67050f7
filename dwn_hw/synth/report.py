"""``dwn-hw report``: a Markdown report and PNG plots from export bundles and their synth reports.

Reads each bundle's ``bundle.json``, ``dwn.ir.json`` (its ``meta.accuracy``) and every
``synth/<board>/report.json`` written by ``dwn-hw synth``. Plots (matplotlib, Agg back end):
resources per stage (the bundle's per-stage yosys estimate when export made one, and always the
core against the UART wrapper per board), and accuracy against LUTs when several bundles are
given. No torch here.
"""
from __future__ import annotations

import json
from pathlib import Path

from dwn_hw.bundle import read_bundle
from dwn_hw.errors import DwnHwError
from dwn_hw.fsutil import atomic_write_text
from dwn_hw.outputs import check_replaceable, is_tool_output, text_mark

REPORT = "report.md"
PLOTS = ("resources_per_stage.png", "accuracy_vs_luts.png")


def accuracy_of(bundle_dir: Path, bundle: dict) -> float | None:
    """The test accuracy recorded for a bundle's model (on grid inputs where recorded), or None."""
    candidates = [bundle.get("accuracy")]
    ir_path = bundle_dir / "dwn.ir.json"
    if ir_path.is_file():
        try:
            ir = json.loads(ir_path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DwnHwError(f"{ir_path} is not valid JSON ({exc}); export the bundle again") from None
        meta = ir.get("meta") if isinstance(ir, dict) else None
        candidates.append(meta.get("accuracy") if isinstance(meta, dict) else None)
    for acc in candidates:
        if isinstance(acc, (int, float)):
            return float(acc)
        if isinstance(acc, dict):
            for key in ("grid", "test_grid", "test", "float"):
                if isinstance(acc.get(key), (int, float)):
                    return float(acc[key])
            for value in acc.values():
                if isinstance(value, (int, float)):
                    return float(value)
    return None


def synth_reports(bundle_dir: Path) -> list[Path]:
    """The bundle's synth reports, ``synth/<board>/report.json``, one per board."""
    return sorted((bundle_dir / "synth").glob("*/report.json"))


def collect(bundle_dirs: list[Path]) -> list[dict]:
    entries = []
    for d in bundle_dirs:
        bundle = read_bundle(d)
        synths = []
        for rep in synth_reports(d):
            try:
                data = json.loads(rep.read_text())
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise DwnHwError(f"{rep} is not valid JSON ({exc}); run `dwn-hw synth` again") from None
            if not isinstance(data, dict) or not isinstance(data.get("core"), dict):
                raise DwnHwError(f"{rep} is not a synth report; run `dwn-hw synth` again")
            synths.append(data)
        entries.append({"dir": d, "name": d.name, "bundle": bundle, "accuracy": accuracy_of(d, bundle),
                        "synth": synths})
    return entries


def _fmt(v, unit=""):
    if v is None:
        return "–"
    return f"{v:.1f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def check_outputs(out: Path, force: bool) -> None:
    """Refuse to write over a ``report.md`` or plot that ``dwn-hw report`` did not write (unless ``force``).

    ``report.md`` carries our mark; the plots cannot, so they are ours when the ``report.md``
    beside them is (a folder holding our report is our report folder).
    """
    if out.exists() and not out.is_dir():
        raise DwnHwError(f"{out} is a file; give a folder for the report (-o)")
    md = out / REPORT
    ours = is_tool_output(md)
    check_replaceable(md, force)
    for name in PLOTS:
        plot = out / name
        if plot.is_dir():
            raise DwnHwError(f"{plot} is a folder; choose another report folder (-o)")
        if plot.exists() and not ours and not force:
            raise DwnHwError(f"{plot} exists and was not written by dwn-hw report; pass --force to replace it, "
                             "or choose another folder (-o)")


def write_report(bundle_dirs: list[Path], out: Path, force: bool = False) -> Path:
    """Write ``out/report.md`` and its plots; return the Markdown file's path.

    Files of those names that ``dwn-hw report`` did not write are refused unless ``force``.
    """
    entries = collect(bundle_dirs)
    check_outputs(out, force)
    out.mkdir(parents=True, exist_ok=True)
    lines = [text_mark("<!-- {} report -->"), "# dwn-hw hardware report", ""]
    lines += ["| bundle | accuracy | board | part | core LUTs | core FFs | core Fmax (MHz) | board LUTs | board FFs |"
              " board Fmax (MHz) | clock (MHz) | latency | fits |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        acc = f"{e['accuracy']:.2%}" if e["accuracy"] is not None else "–"
        if not e["synth"]:
            lines.append(f"| {e['name']} | {acc} | (no synth report) | | | | | | | | | {e['bundle']['latency']} | |")
        for r in e["synth"]:
            c = r["core"]
            lines.append(f"| {e['name']} | {acc} | {r['board']} | {r['part']} | {c['luts']} | {c['ffs']} | "
                         f"{_fmt(c.get('fmax_mhz'))} | {_fmt(r.get('luts'))} | {_fmt(r.get('ffs'))} | "
                         f"{_fmt(r.get('fmax_mhz'))} | {r['clock_mhz']:g} | {r['latency_cycles']} | "
                         f"{'yes' if r['fits'] else 'NO'} |")
    lines += ["", "LUTs are LUT4 on iCE40 and ECP5, LUT1–LUT6 on Xilinx (yosys `synth_xilinx` estimates; Vivado's "
              "own figures come from the generated `vivado.tcl`). Fmax is nextpnr's achieved figure; the core's "
              "comes from a harness (iCE40) or an out-of-context build (ECP5) with registered inputs and outputs.", ""]
    plots = _plots(entries, out)
    for title, name in plots:
        lines += [f"## {title}", "", f"![{title}]({name})", ""]
    for e in entries:
        stages = (e["bundle"].get("resources") or {}).get("stages")
        if stages:
            lines += [f"## Stages of {e['name']} (yosys synth_xilinx, hierarchy kept)", "",
                      "| stage | LUTs | FFs | CARRY4 |", "|---|---|---|---|"]
            lines += [f"| {s} | {v.get('luts', 0)} | {v.get('flops', 0)} | {v.get('carry4', 0)} |"
                      for s, v in stages.items()]
            lines.append("")
        for r in e["synth"]:
            tools = "; ".join(f"{k}: {v}" for k, v in r.get("tools", {}).items())
            lines.append(f"- {e['name']} on {r['board']}: tools {tools}; seed {r.get('seed')}")
    path = out / REPORT
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _save(fig, path: Path) -> None:
    import io

    from dwn_hw.fsutil import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    atomic_write_bytes(path, buf.getvalue())


def _plots(entries: list[dict], out: Path) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    # Resources per stage: per-stage estimate where export made one, then core vs wrapper per board.
    bars = []  # (label, {stage: luts})
    for e in entries:
        stages = (e["bundle"].get("resources") or {}).get("stages")
        if stages:
            bars.append((f"{e['name']}\n(xc7 estimate)", {s: v.get("luts", 0) for s, v in stages.items()}))
        for r in e["synth"]:
            wrap = r.get("wrapper") or {}
            split = {"core": r["core"]["luts"]}
            if "luts" in wrap:
                split["UART wrapper"] = wrap["luts"]
            bars.append((f"{e['name']}\n{r['board']}", split))
    if bars:
        stages = list(dict.fromkeys(s for _, d in bars for s in d))
        fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(bars) + 2), 4))
        bottom = [0] * len(bars)
        for s in stages:
            vals = [d.get(s, 0) for _, d in bars]
            ax.bar(range(len(bars)), vals, bottom=bottom, label=s)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_xticks(range(len(bars)), [lbl for lbl, _ in bars], fontsize=7)
        ax.set_ylabel("LUTs")
        ax.set_title("Resources per stage")
        ax.legend(fontsize=7)
        fig.tight_layout()
        _save(fig, out / "resources_per_stage.png")
        plt.close(fig)
        made.append(("Resources per stage", "resources_per_stage.png"))
    points = [(r["core"]["luts"], e["accuracy"], f"{e['name']} ({r['board']})")
              for e in entries if e["accuracy"] is not None for r in e["synth"]]
    if len(entries) > 1 and points:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for x, y, label in points:
            ax.scatter(x, 100 * y)
            ax.annotate(label, (x, 100 * y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("core LUTs")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title("Accuracy vs LUTs")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        _save(fig, out / "accuracy_vs_luts.png")
        plt.close(fig)
        made.append(("Accuracy vs LUTs", "accuracy_vs_luts.png"))
    return made
