"""train_argv: the dwn-hw train options that make a TrainConfig, parsed back into the same TrainConfig."""
from __future__ import annotations

import dataclasses

import pytest

from dwn_hw.train.cli import config_from_params, train, train_argv
from dwn_hw.train.loop import TrainConfig

EVERY_FIELD = dict(dataset="csv:data/x y.csv", encoder="uniform", bits=5, layers=[300, 120, 40], n=[6, 5, 4],
                   mapping="random", tau=1 / 0.3, epochs=7, batch_size=64, lr=0.0123456789, lr_step=3, gamma=0.5,
                   seed=11, shift=2, val_split=0.15, input_bits=4, csv_label_column="digit", csv_header="yes",
                   init_from="runs/a b.pt", init_encoder="refit", threshold_bits=3, max_input_bits=200,
                   cap_warmup=0, receptive_field=2, local_fanin=9, keep_best=True)


def parse(argv: list[str]) -> TrainConfig:
    ctx = train.make_context("train", [*argv, "-o", "x.pt"])
    return config_from_params(ctx.params)


def test_every_field_is_covered():
    # a new TrainConfig field without a train option (or one train_argv skips) fails here
    assert set(EVERY_FIELD) == {f.name for f in dataclasses.fields(TrainConfig)}
    for name, value in EVERY_FIELD.items():
        assert getattr(TrainConfig(), name) != value, name  # each one differs from its default


@pytest.mark.parametrize("cfg", [TrainConfig(), TrainConfig(**EVERY_FIELD),
                                 TrainConfig(dataset="mnist", layers=[2000, 800], n=[6], threshold_bits=5,
                                             epochs=14, lr_step=10, shift=1, val_split=0.1, keep_best=True)],
                         ids=["defaults", "every field", "mnist"])
def test_round_trip(cfg):
    argv = train_argv(cfg)
    assert parse(argv) == cfg
    assert "-o" not in argv and "--output" not in argv


def test_defaults_are_left_out():
    assert train_argv(TrainConfig()) == []
    assert train_argv(TrainConfig(epochs=5, keep_best=False, val_split=0.2)) == ["--epochs", "5", "--val-split", "0.2"]


def test_the_irs_training_command_retrains_the_same_model(tmp_path, cli_exit, capsys):
    import json
    import shlex

    first = tmp_path / "a.pt"
    code, err = cli_exit("train", "-o", first, "-q", "--layers", "60,20", "--n", "5,4", "--epochs", "2", "--tau", "2.5",
                         "--threshold-bits", "3", "--val-split", "0.2", "--seed", "3", "--shift", "1")
    assert code == 0, err
    assert cli_exit("freeze", first, "-o", tmp_path / "a.ir.json")[0] == 0
    a = json.loads((tmp_path / "a.ir.json").read_text())
    command = a["meta"]["training_command"]
    assert command == ("dwn-hw train --layers 60,20 --n 5,4 --tau 2.5 --epochs 2 --seed 3 --shift 1 --val-split 0.2 "
                       "--threshold-bits 3")
    argv = shlex.split(command)[1:]
    assert cli_exit(*argv, "-o", tmp_path / "b.pt", "-q")[0] == 0
    assert cli_exit("freeze", tmp_path / "b.pt", "-o", tmp_path / "b.ir.json")[0] == 0
    b = json.loads((tmp_path / "b.ir.json").read_text())
    assert a["encoder"] == b["encoder"] and a["layers"] == b["layers"] and a["meta"]["accuracy"] == b["meta"]["accuracy"]
    # dwn-hw info shows it, with the epoch the IR holds
    from dwn_hw.cli import main

    with pytest.raises(SystemExit):
        main(["info", str(tmp_path / "a.ir.json")])
    assert f"trained by       {command} (the IR is epoch 2)" in capsys.readouterr().out
