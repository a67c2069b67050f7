"""Search spaces of ``dwn-hw sweep``: a default per data set, or a JSON file that overrides it.

A space is a JSON object (format in ``docs/sweep.md``)::

    {"version": "digits-1",
     "fixed":  {"epochs": 20},
     "params": {"luts": {"type": "int", "low": 20, "high": 600, "log": true},
                "encoder": {"type": "categorical", "choices": ["distributive", "uniform"]}}}

Parameter names are the fields of :class:`dwn_hw.train.loop.TrainConfig` (``bits``, ``n``,
``tau``, ``lr``, ``input_bits``, ``encoder``, ``epochs``, ...), the export options ``pipeline``
and the three names that make the layer list: ``depth`` (number of LUT layers), ``luts`` (LUTs of
the first layer) and ``shrink`` (each later layer has ``shrink`` times the LUTs of the one before,
never fewer than the classes). ``dataset``, ``seed`` and ``val_split`` belong to the command line.
A name is either fixed or searched, not both. New ``TrainConfig`` options become searchable
without a change here.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

from dwn_hw.errors import DwnHwError

__all__ = ["Space", "default_space", "load_space", "SPACE_SCHEMA"]

LAYER_NAMES = ("depth", "luts", "shrink")
EXPORT_NAMES = ("pipeline",)
CLI_NAMES = ("dataset", "seed", "val_split")

SPACE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "params"],
    "additionalProperties": False,
    "properties": {
        "version": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "fixed": {"type": "object"},
        "params": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "oneOf": [
                    {"type": "object", "additionalProperties": False, "required": ["type", "low", "high"],
                     "properties": {"type": {"const": "int"}, "low": {"type": "integer"},
                                    "high": {"type": "integer"}, "log": {"type": "boolean"},
                                    "step": {"type": "integer", "minimum": 1}}},
                    {"type": "object", "additionalProperties": False, "required": ["type", "low", "high"],
                     "properties": {"type": {"const": "float"}, "low": {"type": "number"},
                                    "high": {"type": "number"}, "log": {"type": "boolean"}}},
                    {"type": "object", "additionalProperties": False, "required": ["type", "choices"],
                     "properties": {"type": {"const": "categorical"},
                                    "choices": {"type": "array", "minItems": 1,
                                                "items": {"type": ["string", "integer", "number", "boolean"]}}}},
                ],
            },
        },
    },
}

# The defaults. A change of a default space gets a new version: the version is recorded in the
# study, and a study made with another version is not continued with this one.
_DIGITS = {
    "version": "digits-1",
    "description": "sklearn digits (8x8, 5-bit pixels): 1-2 LUT layers of 20-600 LUTs; 20 epochs per trial",
    "fixed": {"epochs": 20, "lr_step": 14, "mapping": "learnable"},
    "params": {
        "depth": {"type": "int", "low": 1, "high": 2},
        "luts": {"type": "int", "low": 20, "high": 600, "log": True},
        "shrink": {"type": "float", "low": 0.2, "high": 1.0},
        "n": {"type": "int", "low": 2, "high": 6},
        "bits": {"type": "int", "low": 1, "high": 8},
        "encoder": {"type": "categorical", "choices": ["distributive", "uniform", "gaussian"]},
        "input_bits": {"type": "int", "low": 2, "high": 5},
        "tau": {"type": "float", "low": 1.0, "high": 10.0, "log": True},
        "lr": {"type": "float", "low": 0.003, "high": 0.03, "log": True},
    },
}
_MNIST = {
    "version": "mnist-1",
    "description": "MNIST-shaped image data (784 8-bit pixels): 1-2 LUT layers of 200-4000 LUTs; 6 epochs per trial",
    "fixed": {"epochs": 6, "lr_step": 4, "batch_size": 64, "mapping": "learnable"},
    "params": {
        "depth": {"type": "int", "low": 1, "high": 2},
        "luts": {"type": "int", "low": 200, "high": 4000, "log": True},
        "shrink": {"type": "float", "low": 0.2, "high": 1.0},
        "n": {"type": "int", "low": 4, "high": 6},
        "bits": {"type": "int", "low": 1, "high": 4},
        "encoder": {"type": "categorical", "choices": ["distributive", "uniform"]},
        "input_bits": {"type": "int", "low": 3, "high": 8},
        "tau": {"type": "float", "low": 1.0, "high": 8.0, "log": True},
        "lr": {"type": "float", "low": 0.003, "high": 0.03, "log": True},
    },
}
_GENERIC = {
    "version": "generic-1",
    "description": "any csv:/npz: data set: 1-2 LUT layers of 20-2000 LUTs on the data's own grid; 20 epochs",
    "fixed": {"epochs": 20, "lr_step": 14, "mapping": "learnable"},
    "params": {
        "depth": {"type": "int", "low": 1, "high": 2},
        "luts": {"type": "int", "low": 20, "high": 2000, "log": True},
        "shrink": {"type": "float", "low": 0.2, "high": 1.0},
        "n": {"type": "int", "low": 2, "high": 6},
        "bits": {"type": "int", "low": 1, "high": 8},
        "encoder": {"type": "categorical", "choices": ["distributive", "uniform", "gaussian"]},
        "tau": {"type": "float", "low": 1.0, "high": 10.0, "log": True},
        "lr": {"type": "float", "low": 0.003, "high": 0.03, "log": True},
    },
}
DEFAULTS = {"digits": _DIGITS, "mnist": _MNIST, "fashion-mnist": {**_MNIST, "version": "fashion-mnist-1"}}


@dataclass
class Space:
    """A validated search space: ``params`` (name -> spec), ``fixed`` values, a ``version`` and its source."""

    version: str
    params: dict
    fixed: dict
    source: str
    description: str = ""

    def to_json(self) -> dict:
        d = {"version": self.version, "fixed": self.fixed, "params": self.params}
        if self.description:
            d["description"] = self.description
        return d

    def distributions(self) -> dict:
        """Optuna distributions of every searched parameter (for ``create_trial`` / ``add_trial``)."""
        import optuna.distributions as od

        out = {}
        for name, spec in self.params.items():
            if spec["type"] == "int":
                out[name] = od.IntDistribution(spec["low"], spec["high"], log=spec.get("log", False),
                                               step=spec.get("step", 1))
            elif spec["type"] == "float":
                out[name] = od.FloatDistribution(spec["low"], spec["high"], log=spec.get("log", False))
            else:
                out[name] = od.CategoricalDistribution(spec["choices"])
        return out

    def check_point(self, point: dict, where: str) -> dict:
        """``point`` (searched parameter -> value) checked against the space, floats as floats; else
        :class:`DwnHwError` naming ``where``, the parameter and its range."""
        out = {}
        for name, v in point.items():
            spec = self.params.get(name)
            if spec is None:
                fixed = " (fixed by the space)" if name in self.fixed else ""
                raise DwnHwError(f"{where}: {name!r} is not a searched parameter{fixed}; searched: "
                                 f"{', '.join(self.params)}")
            if spec["type"] == "categorical":
                ok = v in spec["choices"]
            else:
                kind = int if spec["type"] == "int" else (int, float)
                ok = (isinstance(v, kind) and not isinstance(v, bool) and spec["low"] <= v <= spec["high"]
                      and (spec["type"] == "float" or (v - spec["low"]) % spec.get("step", 1) == 0))
            if not ok:
                step = f" on step {spec['step']}" if spec.get("step", 1) != 1 else ""
                what = (f"one of {spec['choices']}" if spec["type"] == "categorical" else
                        f"{'an integer' if spec['type'] == 'int' else 'a number'} in [{spec['low']}, {spec['high']}]{step}")
                raise DwnHwError(f"{where}: {name}={json.dumps(v)} is outside the space: {name} is {what}")
            # 3 and 3.0 are the same point to Optuna only as floats
            out[name] = float(v) if spec["type"] == "float" else v
        return out

    def suggest(self, trial) -> dict:
        """One point of the space, drawn through an Optuna trial."""
        out = {}
        for name, spec in self.params.items():
            if spec["type"] == "int":
                out[name] = trial.suggest_int(name, spec["low"], spec["high"], log=spec.get("log", False),
                                              step=spec.get("step", 1))
            elif spec["type"] == "float":
                out[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
            else:
                out[name] = trial.suggest_categorical(name, spec["choices"])
        return out

    def settings(self, params: dict, *, dataset: str, seed: int, val_split: float, num_classes: int | None = None):
        """``(TrainConfig, export options)`` for one point (``params`` plus the fixed values)."""
        from dwn_hw.train.loop import TrainConfig

        values = {**self.fixed, **params}
        depth = int(values.pop("depth", 1))
        luts = int(values.pop("luts", 500))
        shrink = float(values.pop("shrink", 0.5))
        export = {k: values.pop(k) for k in EXPORT_NAMES if k in values}
        if "layers" not in values:
            floor = int(num_classes or 1)
            layers = [max(luts, floor)]
            for _ in range(depth - 1):
                layers.append(max(floor, int(round(layers[-1] * shrink))))
            values["layers"] = layers
        elif isinstance(values["layers"], int):
            values["layers"] = [values["layers"]]
        if isinstance(values.get("n"), int):
            values["n"] = [values["n"]]
        cfg = TrainConfig(dataset=dataset, seed=seed, val_split=val_split, **values)
        return cfg, export


def _train_fields() -> set:
    from dwn_hw.train.loop import TrainConfig

    return {f.name for f in fields(TrainConfig)}


def _where(path) -> str:
    return ".".join(str(p) for p in path) or "the top level"


def validate(data, source: str) -> Space:
    """A :class:`Space` from parsed JSON, or :class:`DwnHwError` naming the field and what is wrong."""
    import jsonschema

    def fail(msg):
        raise DwnHwError(f"space {source}: {msg}")

    validator = jsonschema.Draft202012Validator(SPACE_SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        err = errors[0]
        if err.validator == "oneOf" and isinstance(err.instance, dict):
            kind = err.instance.get("type")
            need = {"int": "integer low and high (optional log, step)", "float": "numeric low and high "
                    "(optional log)", "categorical": "a non-empty list of choices"}
            if kind in need:
                fail(f"{_where(err.absolute_path)}: a {kind} parameter takes {need[kind]} and nothing else, "
                     f"not {json.dumps(err.instance)}")
            fail(f"{_where(err.absolute_path)}: \"type\" must be int, float or categorical, not {json.dumps(kind)}")
        fail(f"{_where(err.absolute_path)}: {err.message}")
    params, fixed = data["params"], data.get("fixed", {})
    known = _train_fields() | set(LAYER_NAMES) | set(EXPORT_NAMES)
    for where, names in (("params", params), ("fixed", fixed)):
        for name in names:
            if name in CLI_NAMES:
                fail(f"{where}.{name}: set by the command line (--{name.replace('_', '-')}), not by the space")
            if name not in known:
                fail(f"{where}.{name}: unknown parameter; known: {', '.join(sorted(known - set(CLI_NAMES)))}")
    both = sorted(set(params) & set(fixed))
    if both:
        fail(f"{both[0]} is both fixed and searched; keep one")
    if "layers" in params or ("layers" in fixed and set(params) & set(LAYER_NAMES)):
        fail("layers: fix a layer list in \"fixed\" or search depth/luts/shrink, not both")
    for name, spec in params.items():
        if spec["type"] in ("int", "float"):
            low, high = spec["low"], spec["high"]
            if not (math.isfinite(low) and math.isfinite(high)) or low > high:
                fail(f"params.{name}: low {low!r} must not be above high {high!r}")
            if spec.get("log") and low <= 0:
                fail(f"params.{name}: a log range needs low > 0, not {low!r}")
            if spec.get("log") and spec.get("step", 1) != 1:
                fail(f"params.{name}: log and step cannot be combined")
        elif len(set(map(json.dumps, spec["choices"]))) != len(spec["choices"]):
            fail(f"params.{name}: choices repeat a value")
    space = Space(version=data["version"], params=copy.deepcopy(params), fixed=copy.deepcopy(fixed),
                  source=source, description=data.get("description", ""))
    # every corner of the space must make a valid training configuration
    for corner in ("low", "high"):
        point = {}
        for name, spec in params.items():
            point[name] = spec[corner] if spec["type"] != "categorical" else spec["choices"][0 if corner == "low" else -1]
        try:
            cfg, _ = space.settings(point, dataset="digits", seed=0, val_split=0.2)
            cfg.check()
            from dwn_hw.train.arch import make_arch

            make_arch(8, cfg.layers, cfg.n, 1, cfg.tau, cfg.mapping)
        except DwnHwError as exc:
            fail(f"the {corner} corner of the space is not a valid model: {str(exc).lstrip('-')}")
        except TypeError as exc:
            fail(f"a fixed value has the wrong type: {exc}")
    return space


def default_space(dataset: str) -> Space:
    data = DEFAULTS.get(dataset, _GENERIC)
    return validate(copy.deepcopy(data), f"default for {dataset}")


def load_space(path: str | Path | None, dataset: str) -> Space:
    """The space in ``path`` (JSON), or the default of ``dataset`` when ``path`` is None."""
    if path is None:
        return default_space(dataset)
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise DwnHwError(f"space {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DwnHwError(f"space {path}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return validate(data, str(path))
