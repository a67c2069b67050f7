"""Local mappings (``dwn-hw train --receptive-field R``, dwn_hw.train.locality): every LUT reads near its place."""
import numpy as np
import pytest
import torch

from dwn_hw.freeze import freeze
from dwn_hw.train import checkpoint, locality
from dwn_hw.train.loop import TrainConfig, run

# digits: 8x8 images; two layers so that both the patch rule and the nearest-input rule are exercised
LOCAL = dict(dataset="digits", bits=3, layers=[120, 60], n=[4], batch_size=64, epochs=2, receptive_field=1,
             val_split=0.1)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    path = tmp_path_factory.mktemp("loc") / "loc.pt"
    run(TrainConfig(**LOCAL), str(path), progress=False)
    return path


def test_hilbert_order_visits_each_pixel_once_in_unit_steps():
    order = locality.hilbert_order(8, 8)
    assert sorted(order.tolist()) == list(range(64))
    y, x = order // 8, order % 8
    assert (np.abs(np.diff(y)) + np.abs(np.diff(x)) == 1).all()
    cut = locality.hilbert_order(5, 7)                   # a box that is not a power-of-two square
    assert sorted(cut.tolist()) == list(range(35))


def test_spread_and_patches_stay_in_the_box_and_image():
    box, shape = (3, 27, 4, 25), [28, 28]
    c = locality.spread(2000, box, shape)
    assert ((c // 28 >= 3) & (c // 28 < 27) & (c % 28 >= 4) & (c % 28 < 25)).all()
    assert len(set(c.tolist())) == 24 * 21              # 2,000 centers cover all 504 pixels of the box
    p = locality.patch(0, shape, 2)                     # a corner: clipped to 3 x 3
    assert sorted(p.tolist()) == [0, 1, 2, 28, 29, 30, 56, 57, 58]
    assert sorted(locality.patch_bits(29, shape, 0, 3).tolist()) == [87, 88, 89]


def test_last_layer_anchors_are_interleaved_over_classes():
    a = locality.anchors(100, (0, 8, 0, 8), [8, 8], classes=10)
    groups = a.reshape(10, 10)                          # GroupSum's contiguous class groups
    assert all((g == groups[0]).all() for g in groups)   # every class gets the same spread of anchors
    assert len(set(groups[0].tolist())) == 10


def test_trained_first_layer_reads_only_its_patch(local):
    rec = checkpoint.read_record(local)
    loc = rec["hardware"]["locality"]
    # 60 LUTs in 10 classes: 6 distinct anchors, so the default fanin is 2 x 120 / 6 = 40 (above 4n = 16)
    assert rec["options"]["receptive_field"] == 1 and loc["radius"] == 1 and loc["fanin"] == [40]
    model = checkpoint.load(local).model
    rows = model[0].hard_mapping().tolist()
    assert locality.check_first_layer(rows, loc["first_layer_centers"], [8, 8], 1, 3) == 0
    # the same mapping breaks a narrower patch: the check can fail
    assert locality.check_first_layer(rows, loc["first_layer_centers"], [8, 8], 0, 3) > 0


def test_later_layer_reads_distinct_near_inputs(local):
    rec = checkpoint.read_record(local)
    loc = rec["hardware"]["locality"]
    model = checkpoint.load(local).model
    second = model[1].mapping.numpy()
    assert all(len(set(r)) == 4 for r in second.tolist())
    pos = np.stack(divmod(np.asarray(loc["first_layer_centers"]), 8), axis=1).astype(float)
    anc = locality.anchors(60, loc["box"], [8, 8], classes=10)
    here = np.stack(divmod(anc, 8), axis=1).astype(float)
    for j, r in enumerate(second):
        d = ((pos - here[j]) ** 2).sum(axis=1)
        assert d[r].max() <= np.sort(d)[39] + 1e-9       # among the 40 nearest first-layer LUTs
    usage = np.bincount(second.reshape(-1), minlength=120)
    assert usage.min() >= 1 and usage.max() <= 3         # least read first: every input stays in use


def test_freeze_records_locality_and_refuses_a_lut_outside_its_patch(local, tmp_path):
    ir = freeze(str(local))
    assert ir["meta"]["locality"]["radius"] == 1
    assert ir["meta"]["training_options"]["receptive_field"] == 1
    rec = checkpoint.read_record(local)
    loc = rec["hardware"]["locality"]
    far = int(np.argmax([abs(c % 8 - 4) + abs(c // 8 - 4) for c in loc["first_layer_centers"]]))
    c = loc["first_layer_centers"][far]
    outside = next(b for b in range(192) if b // 3 not in locality.patch(c, [8, 8], 1).tolist())
    w = rec["state_dict"]["0.mapping.weights"]
    w[outside, far * 4] = 1e12                           # plant a read outside LUT `far`'s patch
    bad = tmp_path / "bad.pt"
    torch.save(rec, bad)
    with pytest.raises(Exception, match="outside their patch"):
        freeze(str(bad))


def test_masked_weights_survive_training_and_resume(tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    run(TrainConfig(**{**LOCAL, "epochs": 3}), str(a), progress=False)
    run(TrainConfig(**{**LOCAL, "epochs": 1}), str(b), progress=False)
    run(TrainConfig(**{**LOCAL, "epochs": 3}), str(b), resume=True, progress=False, epochs_override=3)
    ma, mb = checkpoint.load(a).model, checkpoint.load(b).model
    assert torch.equal(ma[0].hard_mapping(), mb[0].hard_mapping())
    assert torch.equal(ma[1].mapping, mb[1].mapping)
    w = ma[0].mapping.weights.detach()
    assert float(w.min()) < -1e8                          # the mask is still there after 3 epochs of Adam


@pytest.mark.parametrize("args, msg", [
    (["--local-fanin", "8"], "give --receptive-field too"),
    (["--dataset", "npz:{npz}", "--receptive-field", "1"], "not the pixels of an image"),
    (["--receptive-field", "1", "--local-fanin", "2"], "--local-fanin must be an integer of at least n = 4"),
])
def test_cli_refuses_bad_locality_options(tmp_path, cli_exit, args, msg):
    npz = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(npz, x_train=rng.integers(0, 16, (64, 6)), y_train=rng.integers(0, 2, 64),
             x_test=rng.integers(0, 16, (16, 6)), y_test=rng.integers(0, 2, 16))
    args = [a.format(npz=npz) for a in args]
    code, err = cli_exit("train", "--layers", "20", "--n", "4", "--epochs", "1", "-q",
                     "-o", str(tmp_path / "m.pt"), *args)
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.pt").exists()


def test_init_from_a_global_source_refuses_to_redraw(tmp_path, cli_exit):
    src = tmp_path / "g.pt"
    run(TrainConfig(dataset="digits", bits=3, layers=[40], n=[4], batch_size=64, epochs=1), str(src), progress=False)
    code, err = cli_exit("train", "--init-from", str(src), "--receptive-field", "1", "-q",
                     "-o", str(tmp_path / "ft.pt"))
    assert code == 2 and "cannot redraw" in err
    assert not (tmp_path / "ft.pt").exists()


def test_an_input_cap_that_empties_a_patch_is_refused(tmp_path, cli_exit):
    code, err = cli_exit("train", "--layers", "200,100", "--n", "4", "--receptive-field", "0",
                     "--max-input-bits", "10", "--epochs", "2", "--val-split", "0.1", "-q",
                     "-o", str(tmp_path / "m.pt"))
    assert code == 2 and "no encoder bit inside their --receptive-field 0 patch" in err
