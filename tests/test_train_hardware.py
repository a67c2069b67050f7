"""Hardware-aware training options: --init-from, --threshold-bits, --max-input-bits (dwn_hw.train.hardware)."""
import hashlib

import numpy as np
import pytest
import torch

from dwn_hw.freeze import freeze
from dwn_hw.errors import DwnHwError
from dwn_hw.ir.grid import snap_thresholds, threshold_bits_report, threshold_read_bits
from dwn_hw.nn import LearnableMapping
from dwn_hw.train import checkpoint
from dwn_hw.train.loop import TrainConfig, run

TINY = dict(bits=3, layers=[50], n=[6], batch_size=64, epochs=1)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "src.pt"
    run(TrainConfig(**{**TINY, "epochs": 2}), str(path), progress=False)
    return path


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------- --init-from

def test_init_from_starts_from_the_source_and_records_it(source, tmp_path):
    out = tmp_path / "ft.pt"
    run(TrainConfig(**TINY, lr=1e-12, init_from=str(source)), str(out), progress=False)
    a, b = checkpoint.load(source), checkpoint.load(out)
    rec = checkpoint.read_record(out)
    assert rec["options"]["init_from"] == str(source)
    assert rec["hardware"]["init_from"]["sha256"] == _sha(source)
    assert torch.equal(a.encoder.thresholds, b.encoder.thresholds)
    assert torch.equal(a.model[0].hard_mapping(), b.model[0].hard_mapping())
    assert torch.equal(a.model[0].luts > 0, b.model[0].luts > 0)
    ir = freeze(str(out))
    assert ir["meta"]["training_options"]["init_from"]["sha256"] == _sha(source)


def test_init_from_onto_a_narrower_grid_keeps_or_refits_thresholds(source, tmp_path):
    keep, refit = tmp_path / "k.pt", tmp_path / "r.pt"
    run(TrainConfig(**TINY, init_from=str(source), input_bits=3), str(keep), progress=False)
    run(TrainConfig(**TINY, init_from=str(source), input_bits=3, init_encoder="refit"), str(refit), progress=False)
    src = checkpoint.load(source)
    assert checkpoint.load(keep).grid.input_bits == 3
    assert torch.equal(checkpoint.load(keep).encoder.thresholds, src.encoder.thresholds)
    assert not torch.equal(checkpoint.load(refit).encoder.thresholds, src.encoder.thresholds)
    ir = freeze(str(keep))
    assert ir["encoder"]["input_bits"] == 3 and ir["meta"]["training_options"]["input_bits"] == 3


def test_init_from_refuses_another_shape_in_one_line(source, tmp_path):
    with pytest.raises(DwnHwError, match="layer 0 has output_size 50, this run 60") as e:
        run(TrainConfig(**{**TINY, "layers": [60]}, init_from=str(source)), str(tmp_path / "x.pt"), progress=False)
    assert "\n" not in str(e.value)
    with pytest.raises(DwnHwError, match="encoder bits"):
        run(TrainConfig(**{**TINY, "bits": 2}, init_from=str(source)), str(tmp_path / "x.pt"), progress=False)
    with pytest.raises(DwnHwError, match="does not exist"):
        run(TrainConfig(**TINY, init_from=str(tmp_path / "nope.pt")), str(tmp_path / "x.pt"), progress=False)


def test_cli_init_from_takes_the_source_architecture(source, tmp_path, cli_exit):
    out = tmp_path / "c.pt"
    code, err = cli_exit("train", "--init-from", str(source), "--epochs", "1", "-q", "-o", str(out))
    assert code == 0, err
    assert checkpoint.read_record(out)["options"]["layers"] == [50]
    code, err = cli_exit("train", "--init-from", str(source), "--layers", "60", "-q", "-o", str(tmp_path / "d.pt"))
    assert code == 2 and "output_size 50, this run 60" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------- bad values

@pytest.mark.parametrize("kw, msg", [
    ({"threshold_bits": 0}, "--threshold-bits must be in 1..32"),
    ({"max_input_bits": 0}, "--max-input-bits must be a positive integer"),
    ({"max_input_bits": 5, "cap_warmup": -1}, "--cap-warmup must be a non-negative"),
    ({"max_input_bits": 5, "cap_warmup": 0}, "--cap-warmup 0 needs --init-from"),
    ({"max_input_bits": 5, "cap_warmup": 1}, "leaves no epoch after the cap"),
    ({"max_input_bits": 5, "mapping": "random", "epochs": 2}, "needs --mapping learnable"),
    ({"init_encoder": "refit"}, "needs --init-from"),
    ({"init_encoder": "maybe", "init_from": "x.pt"}, "--init-encoder must be keep or refit"),
])
def test_bad_values_are_refused(kw, msg):
    with pytest.raises(DwnHwError, match=msg):
        TrainConfig(**{**TINY, **kw}).check()


@pytest.mark.parametrize("args, msg", [
    (["--threshold-bits", "0"], "--threshold-bits"), (["--max-input-bits", "0"], "--max-input-bits"),
    (["--cap-warmup", "-1"], "--cap-warmup"), (["--init-encoder", "x"], "--init-encoder"),
])
def test_cli_refuses_bad_values(tmp_path, args, msg, cli_exit):
    code, err = cli_exit("train", *args, "-o", str(tmp_path / "m.pt"))
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1


def test_resume_refuses_new_hardware_options(tmp_path, cli_exit):
    out = tmp_path / "m.pt"
    run(TrainConfig(**TINY), str(out), progress=False)
    code, err = cli_exit("train", "--resume", "--threshold-bits", "3", "-o", str(out))
    assert code == 2 and "drop --threshold-bits" in err


# ------------------------------------------------------------------------------------------- --threshold-bits

def test_snap_thresholds_reads_top_bits_keeps_order_and_constants():
    t = np.array([[-1, 0, 5, 6, 7, 31], [3, 3, 20, 21, 22, 31]])
    s = snap_thresholds(t, 5, False, 2)            # levels t + 1 in {8, 16, 24}
    assert s[0, 0] == -1 and s[0, 5] == 31          # constants stay
    assert (threshold_read_bits(s, 5, False) <= 2).all()
    assert list(s[0, 1:5]) == [7, 7, 7, 7]          # 4 distinct values, 3 levels: plain rounding, they share
    assert s[1, 0] == s[1, 1]                       # equal thresholds stay equal
    s = snap_thresholds(np.array([[3, 20, 22]]), 5, False, 2)
    assert list(s[0]) == [7, 15, 23]                # distinct ones nudged apart, in order
    signed = snap_thresholds(np.array([[-16, -3, 0, 9, 14]]), 5, True, 3)
    assert (threshold_read_bits(signed, 5, True) <= 3).all() and (np.diff(signed[0]) > 0).all()
    assert np.array_equal(snap_thresholds(t, 5, False, 5), t)


def test_threshold_bits_hold_in_the_frozen_ir(tmp_path):
    out = tmp_path / "t.pt"
    run(TrainConfig(**TINY, threshold_bits=2), str(out), progress=False)
    rec = checkpoint.read_record(out)
    assert rec["options"]["threshold_bits"] == 2 and rec["hardware"]["threshold_bits"]["max_read_bits"] <= 2
    ir = freeze(str(out))
    enc = ir["encoder"]
    t = np.asarray(enc["thresholds"])
    live = (t > -1) & (t < 2 ** enc["input_bits"] - 1)
    assert ((t[live] + 1) % 2 ** (enc["input_bits"] - 2) == 0).all()
    assert ir["meta"]["threshold_bits"]["violations"] == 0 and ir["meta"]["threshold_bits"]["max_read_bits"] <= 2
    assert ir["meta"]["training_options"]["threshold_bits"] == 2
    assert threshold_bits_report(enc, 1)["violations"] > 0


def test_freeze_refuses_an_ir_that_breaks_the_recorded_threshold_bits(tmp_path):
    out = tmp_path / "t.pt"
    run(TrainConfig(**TINY), str(out), progress=False)
    rec = checkpoint.read_record(out)
    rec["options"]["threshold_bits"] = 1
    checkpoint.save_record({k: v for k, v in rec.items() if not k.startswith("format") and k != "dwn_hw_version"},
                           out)
    with pytest.raises(DwnHwError, match="--threshold-bits 1 but"):
        freeze(str(out))


# ------------------------------------------------------------------------------------------- --max-input-bits

def test_input_cap_holds_in_the_frozen_mapping_and_survives_resume(tmp_path):
    straight, split = tmp_path / "a.pt", tmp_path / "b.pt"
    cfg = dict(TINY, max_input_bits=30, cap_warmup=1)
    run(TrainConfig(**{**cfg, "epochs": 3}), str(straight), progress=False)
    run(TrainConfig(**{**cfg, "epochs": 2}), str(split), progress=False)
    run(TrainConfig(), str(split), resume=True, epochs_override=3, progress=False)
    a, b = checkpoint.read_record(straight), checkpoint.read_record(split)
    assert len(a["architecture"]["layers"][0]["allowed_inputs"]) == 30
    assert a["architecture"] == b["architecture"] and a["hardware"] == b["hardware"]
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    allowed = set(a["architecture"]["layers"][0]["allowed_inputs"])
    assert set(checkpoint.load(straight).model[0].hard_mapping().reshape(-1).tolist()) <= allowed
    ir = freeze(str(straight))
    read = {v for row in ir["layers"][0]["mapping"] for v in row}
    assert len(read) <= 30 and read <= allowed
    assert ir["meta"]["input_cap"]["max_input_bits"] == 30
    assert ir["meta"]["input_cap"]["thresholds_used"] == int(np.asarray(ir["encoder"]["used"]).sum()) <= 30


def test_restricted_mapping_never_picks_an_excluded_input_under_the_fused_step():
    torch.manual_seed(0)
    m = LearnableMapping(40, 12)
    m.restrict_inputs([1, 5, 7])
    opt = torch.optim.Adam(m.parameters(), lr=0.5)
    for _ in range(5):
        x = (torch.rand(16, 40) > 0.5).float()
        opt.zero_grad()
        m(x).sum().backward()
        opt.step()
        assert set(m.hard_mapping().tolist()) <= {1, 5, 7}
    assert m.allowed_inputs() == [1, 5, 7]
    with pytest.raises(DwnHwError, match="allowed inputs"):
        m.restrict_inputs([40])
    m.restrict_inputs(None)
    assert m.allowed_inputs() is None
