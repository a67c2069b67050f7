"""`dwn-hw report`: report.md and PNG plots from bundles and their synth reports."""
import json

from click.testing import CliRunner

from dwn_hw.synth.cli import report_cmd


def fake_bundle(path, luts, acc, stages=None):
    (path / "synth" / "icebreaker").mkdir(parents=True)
    bundle = {"top": "dwn_top", "in_width": 320, "classes": 10, "score_width": 4, "latency": 3}
    if stages:
        bundle["resources"] = {"stages": stages}
    (path / "bundle.json").write_text(json.dumps(bundle))
    (path / "dwn.ir.json").write_text(json.dumps({"meta": {"accuracy": {"float": 0.5, "grid": acc}}}))
    rep = {"board": "icebreaker", "part": "iCE40UP5K-SG48", "clock_mhz": 12.0, "latency_cycles": 3, "fits": True,
           "luts": luts + 200, "ffs": 900, "fmax_mhz": 25.25, "tools": {"yosys": "Yosys 0.70"}, "seed": 1,
           "core": {"luts": luts, "ffs": 300, "fmax_mhz": 30.5}, "wrapper": {"luts": 200, "ffs": 600}}
    (path / "synth" / "icebreaker" / "report.json").write_text(json.dumps(rep))


def test_report_tables_and_plots(tmp_path):
    fake_bundle(tmp_path / "small", 1234, 0.91)
    fake_bundle(tmp_path / "big", 4321, 0.97, stages={"encoder": {"luts": 40, "flops": 0, "carry4": 0},
                                                       "layer 0": {"luts": 500, "flops": 500, "carry4": 0}})
    res = CliRunner().invoke(report_cmd, [str(tmp_path / "small"), str(tmp_path / "big"), "-o", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| small | 91.00% | icebreaker | iCE40UP5K-SG48 | 1234 | 300 | 30.5 | 1434 | 900 | 25.2 |" in md
    assert "| big | 97.00% |" in md and "| layer 0 | 500 | 500 | 0 |" in md
    for png in ("resources_per_stage.png", "accuracy_vs_luts.png"):
        assert f"]({png})" in md
        assert (tmp_path / "r" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_bundle_has_no_accuracy_plot(tmp_path):
    fake_bundle(tmp_path / "only", 100, 0.9)
    res = CliRunner().invoke(report_cmd, [str(tmp_path / "only"), "-o", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "r" / "accuracy_vs_luts.png").exists()
    assert (tmp_path / "r" / "resources_per_stage.png").exists()
