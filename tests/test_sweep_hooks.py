"""The two small hooks dwn-hw sweep adds outside its package: loop.run(on_epoch=) and synth(board_pnr=False)."""
import json

import pytest

from dwn_hw.train import checkpoint
from dwn_hw.train.loop import TrainConfig, run

TINY = dict(bits=2, layers=[30], n=[3], batch_size=128, val_split=0.2)


class Stop(Exception):
    pass


def test_on_epoch_sees_validation_accuracy_and_can_stop_the_run(tmp_path):
    seen = []

    def hook(entry):
        seen.append(entry)
        if entry["epoch"] == 2:
            raise Stop

    with pytest.raises(Stop):
        run(TrainConfig(**TINY, epochs=5), str(tmp_path / "m.pt"), progress=False, on_epoch=hook)
    assert [e["epoch"] for e in seen] == [1, 2]
    assert all(0 <= e["val_accuracy"] <= 1 and "test_accuracy" in e for e in seen)
    rec = checkpoint.read_record(tmp_path / "m.pt")  # the checkpoint keeps the epoch the hook stopped at
    assert rec["train_state"]["epoch"] == 2


def test_synth_without_board_place_and_route_counts_and_checks_the_fit(tmp_path):
    from dwn_hw.export import export_bundle
    from dwn_hw.freeze import bundle_inputs
    from dwn_hw.synth.flows import synth

    run(TrainConfig(**TINY, epochs=1), str(tmp_path / "m.pt"), progress=False)
    export_bundle({"name": "m.pt", **bundle_inputs(tmp_path / "m.pt")}, tmp_path / "b", boards=["icebreaker"])
    r = synth(tmp_path / "b", "icebreaker", core_pnr=False, board_pnr=False, quiet=True)
    assert r["fits"] is True and r["luts"] > r["core"]["luts"] > 0
    assert r["fmax_mhz"] is None and r["bitstream"] is None
    build = tmp_path / "b" / "build" / "synth" / "icebreaker"
    assert build.is_dir() and not list(build.glob("*nextpnr*"))
    assert json.loads((tmp_path / "b" / "synth" / "icebreaker" / "report.json").read_text())["fits"]
