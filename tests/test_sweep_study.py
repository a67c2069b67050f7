"""dwn-hw sweep: the study logic on a stand-in pipeline (training, export and synthesis replaced by fakes).

The real pipeline (digits, yosys) runs in tests/test_sweep_workers.py (slow set).
"""
import csv
import json
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from dwn_hw.cli import main  # noqa: E402
from dwn_hw.sweep.objective import PruneRule  # noqa: E402
from dwn_hw.sweep.outputs import pareto_front  # noqa: E402
from dwn_hw.synth.toolchain import ToolFailed  # noqa: E402

SPACE = {"version": "fake-1", "fixed": {"epochs": 3, "depth": 1},
         "params": {"luts": {"type": "int", "low": 10, "high": 200, "log": True},
                    "bits": {"type": "int", "low": 1, "high": 4},
                    "encoder": {"type": "categorical", "choices": ["distributive", "uniform"]}}}


class Fake:
    """Training, export and synth stand-ins: accuracy and LUTs follow from the parameters."""

    def __init__(self, monkeypatch):
        self.synth_calls = 0
        self.fail_at = set()    # synth calls (0-based) that fail like a broken tool
        self.capacity = 10**9   # board LUTs
        self.cfg = None
        import dwn_hw.export
        import dwn_hw.synth.flows
        import dwn_hw.train.loop

        monkeypatch.setattr(dwn_hw.train.loop, "run", self.run)
        monkeypatch.setattr(dwn_hw.export, "export_bundle", self.export_bundle)
        import dwn_hw.freeze

        monkeypatch.setattr(dwn_hw.freeze, "bundle_inputs", lambda path: {"checkpoint": str(path)})
        monkeypatch.setattr(dwn_hw.synth.flows, "synth", self.synth)

    def run(self, cfg, output, *, on_epoch=None, **kw):
        self.cfg = cfg
        Path(output).write_bytes(b"not a real checkpoint")
        size = sum(cfg.layers) * cfg.bits
        acc = size / (size + 60.0)
        for e in range(1, cfg.epochs + 1):
            if on_epoch:
                on_epoch({"epoch": e, "loss": 1 - acc, "train_accuracy": acc, "val_accuracy": acc * e / cfg.epochs,
                          "test_accuracy": acc, "seconds": 0.5})
        out = {"val_accuracy": acc, "test_accuracy": acc - 0.01, "epochs": cfg.epochs, "train_seconds": 0.0}
        if cfg.keep_best:  # like the loop: the best validation epoch (here the one before the last) kept aside
            from dwn_hw.train.loop import best_path

            best_path(output).write_bytes(b"the best epoch")
            out.update(best_epoch=cfg.epochs - 1, best_val_accuracy=acc + 0.005, best_test_accuracy=acc - 0.02)
        return out

    def export_bundle(self, model, out, boards=(), **kw):
        out = Path(out)
        (out / "synth" / boards[0]).mkdir(parents=True, exist_ok=True)
        (out / "dwn.ir.json").write_text("{}\n")

    def synth(self, bundle_dir, board, **kw):
        n = self.synth_calls
        self.synth_calls += 1
        if n in self.fail_at:
            raise ToolFailed("yosys core", 1, Path(bundle_dir) / "core_yosys.log", ["ERROR: planted failure"])
        luts = 3 * sum(self.cfg.layers) + 20 * self.cfg.bits
        fits = luts + 100 <= self.capacity
        report = {"core": {"luts": luts, "ffs": luts // 2, "carry": 0, "fmax_mhz": None, "utilisation": {}},
                  "luts": luts + 100, "fits": fits, "part": "fake", "family": "xilinx",
                  "utilisation": {"luts": (luts + 100) / self.capacity}}
        path = Path(bundle_dir) / "synth" / board / "report.json"
        path.write_text(json.dumps(report))
        if not fits:
            from dwn_hw.errors import DwnHwError

            raise DwnHwError(f"the board build does not fit the fake part (report: {path})")
        return report


@pytest.fixture
def fake(monkeypatch):
    return Fake(monkeypatch)


def sweep(tmp_path, capsys, *args, out="s", code=0, space=None):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space or SPACE))
    space = path
    argv = ["sweep", "--dataset", "digits", "--out", str(tmp_path / out), "--space", str(space), "-q", *args]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    cap = capsys.readouterr()
    assert exc.value.code == code, cap.err
    return cap


def load(tmp_path, out="s"):
    return optuna.load_study(study_name="dwn-sweep", storage=f"sqlite:///{tmp_path / out / 'study.db'}")


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_rerun_with_more_trials_continues_the_study(tmp_path, capsys, fake):
    sweep(tmp_path, capsys, "--trials", "3", "--no-prune")
    first = {t.number: (t.values, t.params) for t in load(tmp_path).trials}
    assert len(first) == 3
    cap = sweep(tmp_path, capsys, "--trials", "5", "--no-prune")
    study = load(tmp_path)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 5 and [t.number for t in done] == [0, 1, 2, 3, 4]
    for t in done[:3]:
        assert (t.values, t.params) == first[t.number]
    assert "sweep: 5 complete trials" in cap.out and cap.err.count("trial ") >= 2
    rows = read_rows(tmp_path / "s" / "trials.csv")
    assert [r["number"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert {"number", "state", "accuracy", "test_accuracy", "luts", "ffs", "fmax_mhz", "seconds", "param_luts",
            "param_bits", "param_encoder"} <= set(rows[0])
    # the front: exactly the non-dominated trials, and the same as Optuna's own
    doc = json.loads((tmp_path / "s" / "pareto.json").read_text())
    pts = [(t.number, t.values[0], t.values[1]) for t in done]
    brute = {n for n, a, l in pts if not any(a2 >= a and l2 <= l and (a2 > a or l2 < l) for _, a2, l2 in pts)}
    # a point measured twice (same parameters) stands once on the front, as its first trial
    optuna_front = {t.number for t in study.best_trials}
    assert brute == optuna_front
    first_of = {}
    for n, a, l in pts:
        first_of.setdefault((a, l), n)
    assert {p["number"] for p in doc["front"]} == {first_of[(a, l)] for n, a, l in pts if n in brute}
    assert doc["space_version"] == "fake-1" and doc["trials"] == {"COMPLETE": 5}
    for p in doc["front"]:
        assert (tmp_path / "s" / p["ir"]).is_file() and (tmp_path / "s" / p["checkpoint"]).is_file()
    off = set(range(5)) - brute
    assert len({tuple(t.params.items()) for t in done}) == 5  # the rerun drew new points
    for n in off:  # checkpoints kept only on the front; the IR always
        assert not (tmp_path / "s" / "trials" / f"{n:04d}" / "model.pt").exists()
        assert (tmp_path / "s" / "trials" / f"{n:04d}" / "dwn.ir.json").exists()
    assert (tmp_path / "s" / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    # already there: nothing to do
    sweep(tmp_path, capsys, "--trials", "4", "--no-prune")
    assert len(load(tmp_path).trials) == 5


def test_failed_tool_is_recorded_with_its_reason_and_the_study_goes_on(tmp_path, capsys, fake):
    fake.fail_at = {1}
    cap = sweep(tmp_path, capsys, "--trials", "3", "--no-prune")
    study = load(tmp_path)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    reason = study.trials[1].user_attrs["fail_reason"]
    assert reason.startswith("synth: yosys core failed (exit 1)") and "ERROR: planted failure" in reason
    assert "trial 1 fail: synth: yosys core failed" in cap.err
    rows = read_rows(tmp_path / "s" / "trials.csv")
    assert rows[1]["state"] == "FAIL" and "planted failure" in rows[1]["fail_reason"]


def test_a_model_that_does_not_fit_is_infeasible_and_off_the_front(tmp_path, capsys, fake):
    fake.capacity = 500
    sweep(tmp_path, capsys, "--trials", "4", "--no-prune", "--sampler", "random")
    study = load(tmp_path)
    rows = read_rows(tmp_path / "s" / "trials.csv")
    doc = json.loads((tmp_path / "s" / "pareto.json").read_text())
    front = {p["number"] for p in doc["front"]}
    for t, r in zip(study.trials, rows):
        assert t.state.name == "COMPLETE"
        fits = t.user_attrs["fits"]
        assert r["fits"] == str(fits)
        assert (t.constraints["fits"] > 0) == (not fits)
        if not fits:
            assert t.number not in front


def test_from_csv_rebuilds_the_study_elsewhere(tmp_path, capsys, fake):
    sweep(tmp_path, capsys, "--trials", "3", "--no-prune")
    old = load(tmp_path).trials
    sweep(tmp_path, capsys, "--trials", "4", "--no-prune", "--from", str(tmp_path / "s" / "trials.csv"), out="t")
    new = load(tmp_path, "t").trials
    assert len([t for t in new if t.state.name == "COMPLETE"]) == 4
    for a, b in zip(old, new[:3]):
        assert (a.number, a.values, a.params) == (b.number, b.values, b.params)
        assert a.user_attrs["test_accuracy"] == pytest.approx(b.user_attrs["test_accuracy"], rel=1e-5)
    # a second --from into a study that has trials is refused
    cap = sweep(tmp_path, capsys, "--trials", "4", "--from", str(tmp_path / "s" / "trials.csv"), out="t", code=2)
    assert cap.err.startswith("error: --from") and len(cap.err.strip().splitlines()) == 1


def test_keep_best_makes_the_best_validation_epoch_the_trials_model(tmp_path, capsys, fake):
    space = {**SPACE, "version": "fake-best-1", "fixed": {**SPACE["fixed"], "keep_best": True}}
    sweep(tmp_path, capsys, "--trials", "2", "--no-prune", space=space, out="b")
    sweep(tmp_path, capsys, "--trials", "2", "--no-prune", out="l")
    for out, epoch in (("b", 2), ("l", 3)):
        rows = read_rows(tmp_path / out / "trials.csv")
        assert [r["model_epoch"] for r in rows] == [str(epoch)] * 2 and [r["epochs"] for r in rows] == ["3"] * 2
    best, last = load(tmp_path, "b").trials, load(tmp_path, "l").trials
    for b, t in zip(best, last):  # the same points (one sampler seed): the objective is the best epoch's
        assert b.params == t.params
        assert b.values[0] == pytest.approx(t.values[0] + 0.005) and b.values[1] == t.values[1]
        assert b.user_attrs["test_accuracy"] == pytest.approx(t.user_attrs["test_accuracy"] - 0.01)
        d = tmp_path / "b" / b.user_attrs["dir"]
        assert (d / "model.pt").read_bytes() == b"the best epoch" and not (d / "model.best.pt").exists()
        assert json.loads((d / "metrics.json").read_text())["model_epoch"] == 2
        # the trial's train.log has the epoch lines dwn-hw train prints
        assert [ln.split(":")[0] for ln in (d / "train.log").read_text().splitlines()] == [
            "epoch 1/3", "epoch 2/3", "epoch 3/3"]
    front = json.loads((tmp_path / "b" / "pareto.json").read_text())["front"]
    assert front and all(p["model_epoch"] == 2 for p in front)


def test_another_space_does_not_continue_a_study(tmp_path, capsys, fake):
    sweep(tmp_path, capsys, "--trials", "1")
    SPACE["version"] = "fake-2"
    try:
        cap = sweep(tmp_path, capsys, "--trials", "2", code=2)
    finally:
        SPACE["version"] = "fake-1"
    assert "space_version 'fake-1'" in cap.err and len(cap.err.strip().splitlines()) == 1


def test_pruning_stops_a_trial_that_trails_a_smaller_one(tmp_path, capsys, fake):
    rule = PruneRule(after=2, margin=0.05, min_trials=1)

    class T:
        def __init__(self, number, hist, size):
            self.number, self.user_attrs = number, {"val_history": hist, "size": size}

    done = [T(0, [0.5, 0.8, 0.9], 100)]
    assert rule.check(done, 1, 0.1, 200) is None            # before --prune-after
    assert rule.check(done, 2, 0.7, 200)["by_trial"] == 0   # bigger and worse by > margin
    assert rule.check(done, 2, 0.76, 200) is None           # within the margin
    assert rule.check(done, 2, 0.1, 50) is None             # smaller: may be on the front
    # through the command: pruned trials are recorded as such and do not count
    sweep(tmp_path, capsys, "--trials", "6", "--prune-after", "1", "--prune-margin", "0.0", "--sampler", "random")
    study = load(tmp_path)
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert len([t for t in study.trials if t.state.name == "COMPLETE"]) == 6
    for t in pruned:
        assert "trails complete trial" in t.user_attrs["pruned"]["rule"]
    rows = read_rows(tmp_path / "s" / "trials.csv")
    assert all(r["pruned_epoch"] for r in rows if r["state"] == "PRUNED")


def test_pareto_front_ignores_failed_and_infeasible_rows():
    rows = [{"number": 0, "state": "COMPLETE", "accuracy": 0.9, "luts": 100, "fits": True},
            {"number": 1, "state": "COMPLETE", "accuracy": 0.8, "luts": 120, "fits": True},
            {"number": 2, "state": "COMPLETE", "accuracy": 0.99, "luts": 50, "fits": False},
            {"number": 3, "state": "FAIL", "accuracy": None, "luts": None},
            {"number": 4, "state": "COMPLETE", "accuracy": 0.95, "luts": 300, "fits": True},
            {"number": 5, "state": "COMPLETE", "accuracy": 0.95, "luts": 300, "fits": True}]
    assert [r["number"] for r in pareto_front(rows)] == [0, 4]


def test_timeout_stops_starting_trials(tmp_path, capsys, fake):
    cap = sweep(tmp_path, capsys, "--trials", "1000", "--timeout", "1.5", "--no-prune")
    n = len(load(tmp_path).trials)
    assert 1 <= n < 1000 and "stopped by --timeout" in cap.out


def test_enqueue_runs_given_points_first_once(tmp_path, capsys, fake):
    pts = tmp_path / "points.json"
    pts.write_text(json.dumps([{"luts": 150, "bits": 2, "encoder": "uniform"}, {"luts": 12}]))
    cap = sweep(tmp_path, capsys, "--trials", "3", "--no-prune", "--enqueue", str(pts),
                "--enqueue", '{"luts": 40, "bits": 4, "encoder": "distributive"}')
    assert "queued 3 of 3 point(s)" in cap.err
    trials = load(tmp_path).trials
    assert trials[0].params == {"luts": 150, "bits": 2, "encoder": "uniform"}
    assert trials[1].params["luts"] == 12 and set(trials[1].params) == {"luts", "bits", "encoder"}  # rest sampled
    assert trials[2].params == {"luts": 40, "bits": 4, "encoder": "distributive"}
    assert fake.cfg.layers == [40] and fake.cfg.bits == 4
    # the same full points again: already tried, nothing queued, no fourth trial
    cap = sweep(tmp_path, capsys, "--trials", "3", "--enqueue", '{"luts": 40, "bits": 4, "encoder": "distributive"}')
    assert "queued 0 of 1 point(s) to be tried first; the study has tried the other 1 already" in cap.err
    assert len(load(tmp_path).trials) == 3
    # a new point when the study has its trials: queued, and the user is told to raise --trials
    cap = sweep(tmp_path, capsys, "--trials", "3", "--enqueue", '{"luts": 77}')
    assert "queued 1 of 1" in cap.err and "raise --trials to run them" in cap.err
    sweep(tmp_path, capsys, "--trials", "4", "--no-prune")
    assert [t.params["luts"] for t in load(tmp_path).trials][3] == 77


@pytest.mark.parametrize("point, says", [
    ('{"luts": 5}', "luts=5 is outside the space: luts is an integer in [10, 200]"),
    ('{"luts": 20.5}', "luts=20.5 is outside the space"),
    ('{"encoder": "gaussian"}', "encoder=\"gaussian\" is outside the space: encoder is one of"),
    ('{"epochs": 2}', "'epochs' is not a searched parameter (fixed by the space)"),
    ('{"luts": ', "not JSON"),
    ('[3]', "each point is a non-empty JSON object"),
    ('no_such_file.json', "neither a JSON object nor a readable file"),
])
def test_enqueue_refuses_points_outside_the_space(tmp_path, capsys, fake, point, says):
    cap = sweep(tmp_path, capsys, "--trials", "1", "--enqueue", point, code=2)
    assert cap.err.startswith("error: --enqueue") and says in cap.err and len(cap.err.strip().splitlines()) == 1
    assert fake.synth_calls == 0
