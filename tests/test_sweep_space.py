"""dwn-hw sweep: search spaces (defaults, JSON overrides, one-line errors)."""
import json

import pytest

from dwn_hw.cli import main
from dwn_hw.errors import DwnHwError
from dwn_hw.sweep.space import DEFAULTS, default_space, load_space

optuna = pytest.importorskip("optuna")


@pytest.mark.parametrize("dataset", ["digits", "mnist", "fashion-mnist", "csv:whatever.csv"])
def test_default_spaces_are_valid_and_versioned(dataset):
    space = default_space(dataset)
    assert space.version.endswith("-1")
    assert set(space.distributions()) == set(space.params)


def test_settings_build_layers_and_clamp_to_classes():
    space = default_space("digits")
    cfg, export = space.settings({"depth": 2, "luts": 100, "shrink": 0.05, "n": 4, "bits": 3, "encoder": "uniform",
                                  "input_bits": 4, "tau": 2.0, "lr": 0.01}, dataset="digits", seed=3, val_split=0.2,
                                 num_classes=10)
    assert cfg.layers == [100, 10] and cfg.n == [4] and cfg.seed == 3 and cfg.val_split == 0.2
    assert cfg.epochs == DEFAULTS["digits"]["fixed"]["epochs"] and export == {}


def test_suggest_draws_every_parameter_inside_its_range():
    space = default_space("digits")
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        t = study.ask()
        p = space.suggest(t)
        for name, spec in space.params.items():
            if spec["type"] == "categorical":
                assert p[name] in spec["choices"]
            else:
                assert spec["low"] <= p[name] <= spec["high"]
        study.tell(t, [0.5, 100])


BAD = [
    ("[1, 2]", "is not of type 'object'"),
    ('{"params": {}}', "'version' is a required property"),
    ('{"version": "x", "params": {"bits": {"type": "int", "low": 1}}}', "a int parameter takes"),
    ('{"version": "x", "params": {"bits": {"type": "weird", "low": 1, "high": 2}}}', "\"type\" must be int, float"),
    ('{"version": "x", "params": {"colour": {"type": "int", "low": 1, "high": 2}}}', "params.colour: unknown parameter"),
    ('{"version": "x", "params": {"bits": {"type": "int", "low": 5, "high": 2}}}', "low 5 must not be above high 2"),
    ('{"version": "x", "params": {"lr": {"type": "float", "low": 0, "high": 1, "log": true}}}', "needs low > 0"),
    ('{"version": "x", "fixed": {"bits": 2}, "params": {"bits": {"type": "int", "low": 1, "high": 2}}}',
     "bits is both fixed and searched"),
    ('{"version": "x", "params": {"seed": {"type": "int", "low": 1, "high": 2}}}', "set by the command line"),
    ('{"version": "x", "params": {"n": {"type": "int", "low": 1, "high": 13}}}', "high corner of the space"),
    ('{"version": "x", "fixed": {"epochs": 0}, "params": {"n": {"type": "int", "low": 2, "high": 3}}}',
     "epochs must be a positive integer, not 0"),
    ('{"version": "x",', "not JSON"),
]


@pytest.mark.parametrize("text,needle", BAD)
def test_bad_space_is_one_error_line_and_exit_2(tmp_path, capsys, text, needle):
    path = tmp_path / "space.json"
    path.write_text(text)
    with pytest.raises(DwnHwError, match="space "):
        load_space(path, "digits")
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--out", str(tmp_path / "s"), "--space", str(path), "--trials", "1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: space ") and needle in err[0], err
    assert not (tmp_path / "s").exists()


def test_missing_space_file_is_an_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--out", str(tmp_path / "s"), "--space", str(tmp_path / "nope.json")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: space ") and "cannot read" in err[0]


def test_space_file_overrides_the_default(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"version": "mine-3", "fixed": {"epochs": 1, "depth": 1},
                                "params": {"luts": {"type": "int", "low": 10, "high": 20}}}))
    space = load_space(path, "digits")
    assert space.version == "mine-3" and list(space.params) == ["luts"]


def test_sweep_is_a_dwn_hw_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--help"])
    assert exc.value.code == 0 and "--storage" in capsys.readouterr().out
