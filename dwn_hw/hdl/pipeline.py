"""Where the pipeline registers go: presets and an explicit per-stage spec.

The output registers (``out_valid``, ``out_class``, ``out_scores``) always exist, so the
latency is at least 1. Everything else is a choice:

``enc``
    a register after the thermometer encoder (with ``--inputs bits``: on the input bits).
``l<i>`` / ``layers``
    a register after LUT layer ``i`` (``layers``: after every layer).
``pop=<m>``
    a register after every ``m`` levels of the popcount trees (levels counted from the
    leaves; a register after the last level sits between the popcount and the argmax).
``arg=<m>``
    a register after every ``m`` levels of the argmax tree (not after its last level,
    whose result goes straight into the output registers). The ``pairs`` argmax of the ECP5
    cores (:mod:`dwn_hw.hdl.argmax`) has one register, after its comparisons, whenever the
    tree would have at least one.

Text form, for the CLI and ``bundle.json``: comma-separated tokens, e.g.
``enc,l0,l1,pop=2,arg=2``; ``none``, ``balanced`` and ``max`` are presets.
"""
from __future__ import annotations

import dataclasses
import re

from dwn_hw.errors import DwnHwError, show

PRESETS = ("none", "balanced", "max")


@dataclasses.dataclass(frozen=True)
class PipelineSpec:
    """Register placement of one top.

    Parameters
    ----------
    encoder : bool
        Register after the encoder (on the input bits when the hardware has no encoder).
    layers : frozenset of int
        Indices of the LUT layers followed by a register.
    popcount : int
        Register every ``popcount`` levels of the popcount trees; 0 for none.
    argmax : int
        Register every ``argmax`` levels of the argmax tree; 0 for none.
    """

    encoder: bool = False
    layers: frozenset = frozenset()
    popcount: int = 0
    argmax: int = 0

    def __post_init__(self):
        object.__setattr__(self, "layers", frozenset(int(i) for i in self.layers))
        for field in ("popcount", "argmax"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise DwnHwError(f"pipeline {field} must be an integer >= 0, not {show(value)}")
        bad = sorted(i for i in self.layers if i < 0)
        if bad:
            raise DwnHwError(f"pipeline layer index must be >= 0, not {bad[0]}")

    def text(self) -> str:
        """Canonical text form (round-trips through :func:`parse_pipeline`)."""
        parts = []
        if self.encoder:
            parts.append("enc")
        parts += [f"l{i}" for i in sorted(self.layers)]
        if self.popcount:
            parts.append(f"pop={self.popcount}")
        if self.argmax:
            parts.append(f"arg={self.argmax}")
        return ",".join(parts) or "none"

    def check(self, num_layers: int) -> "PipelineSpec":
        """Refuse layer indices the model does not have."""
        bad = sorted(i for i in self.layers if i >= num_layers)
        if bad:
            raise DwnHwError(f"pipeline names layer l{bad[0]}, but the model has {num_layers} layer(s) "
                             f"(l0..l{num_layers - 1})")
        return self


def preset(name: str, num_layers: int) -> PipelineSpec:
    """The spec of a preset for a model with ``num_layers`` LUT layers.

    ``none``: output registers only (latency 1). ``balanced``: after the encoder, after the
    last LUT layer, every 3 popcount levels and every 2 argmax levels. ``max``: after every
    stage and every tree level.
    """
    if name == "none":
        return PipelineSpec()
    if name == "balanced":
        return PipelineSpec(encoder=True, layers=frozenset({num_layers - 1}), popcount=3, argmax=2)
    if name == "max":
        return PipelineSpec(encoder=True, layers=frozenset(range(num_layers)), popcount=1, argmax=1)
    raise DwnHwError(f"unknown pipeline preset {name!r}; expected one of {', '.join(PRESETS)}")


_TOKEN = re.compile(r"^(?:(enc)|(layers)|l(\d+)|(pop|arg)=(\d+))$")


def parse_pipeline(spec, num_layers: int) -> PipelineSpec:
    """A :class:`PipelineSpec` from a preset name, a token list text or a spec.

    Raises
    ------
    DwnHwError
        naming the token that is not understood or the layer the model lacks.
    """
    if isinstance(spec, PipelineSpec):
        return spec.check(num_layers)
    if not isinstance(spec, str):
        raise DwnHwError(f"pipeline must be a preset name, a spec text or a PipelineSpec, not {spec!r}")
    text = spec.strip()
    if text in PRESETS:
        return preset(text, num_layers)
    enc, layers, pop, arg = False, set(), 0, 0
    for token in text.split(","):
        token = token.strip()
        match = _TOKEN.match(token)
        if not match:
            raise DwnHwError(f"pipeline token {token!r} is not understood; use none|balanced|max or tokens "
                             "like enc,l0,l1,layers,pop=2,arg=2")
        if match.group(1):
            enc = True
        elif match.group(2):
            layers.update(range(num_layers))
        elif match.group(3) is not None:
            layers.add(int(match.group(3)))
        elif match.group(4) == "pop":
            pop = int(match.group(5))
        else:
            arg = int(match.group(5))
    return PipelineSpec(encoder=enc, layers=frozenset(layers), popcount=pop, argmax=arg).check(num_layers)
