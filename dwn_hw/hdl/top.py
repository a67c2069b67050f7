"""The top ``dwn_top``: encoder, LUT layers, popcounts, argmax and the valid pipeline.

Only logic that reaches a class score is built: a LUT whose output no later LUT reads and an
encoder bit that no LUT reads are left out (they cannot change any output), so every internal
signal is used and lint stays clean.
"""
from __future__ import annotations

import dataclasses

from amaranth.hdl import Cat, ClockDomain, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dwn_hw.errors import DwnHwError
from dwn_hw.hdl.argmax import Argmax
from dwn_hw.hdl.encoder import ThermometerEncoder
from dwn_hw.hdl.lut import LUTArray, cell_verilog, check_style, native_fanin
from dwn_hw.hdl.pipeline import PipelineSpec, parse_pipeline
from dwn_hw.hdl.popcount import Popcount, popcount_levels
from dwn_hw.ir import class_width, input_width, num_input_bits, score_width

INPUTS = ("features", "bits")


@dataclasses.dataclass
class Plan:
    """The live part of an IR, with indices compacted to what is built.

    ``sources``: for ``inputs="features"`` the (feature, threshold) of each encoder output, for
    ``"bits"`` the ``in_data`` bit index of each input bit. ``layers``: (rows, tables) per layer,
    rows indexing the previous stage's compacted outputs. ``groups``: per class, indices into
    the last layer's outputs.
    """

    sources: list
    layers: list
    groups: list


def _slot_mask(m: int, slot: int) -> int:
    """Bit a set for every address a < 2**m whose bit ``slot`` is 0."""
    return sum(1 << a for a in range(1 << m) if not (a >> slot) & 1)


def reduce_layer(rows, tables):
    """Drop the address bits a LUT's table does not depend on (a constant keeps no input).

    Returns new (rows, tables); what each LUT computes is unchanged. Needed because a LUT
    written as logic (``mux`` style) would not read such a bit, leaving it unconnected.
    """
    import numpy as np

    tabs = [int(t, 16) for t in tables]
    by_len: dict = {}
    for j, row in enumerate(rows):
        by_len.setdefault(len(row), []).append(j)
    reducible = []
    for m, idx in by_len.items():
        if m == 0:
            continue
        t = np.array([tabs[j] for j in idx], dtype=np.uint64)
        depends = np.ones(len(idx), dtype=bool)
        for slot in range(m):
            mask = np.uint64(_slot_mask(m, slot))
            # table[a] == table[a | 1<<slot] for every a with that bit clear: slot is a don't-care
            free = ((t & mask) ^ ((t >> np.uint64(1 << slot)) & mask)) == 0
            depends &= ~free
        reducible += [j for j, d in zip(idx, depends) if not d]
    rows, tabs = [list(r) for r in rows], tabs
    for j in reducible:
        row, table = rows[j], tabs[j]
        for slot in reversed(range(len(row))):
            m = len(row)
            bits = [(table >> a) & 1 for a in range(1 << m)]
            if all(bits[a] == bits[a | 1 << slot] for a in range(1 << m) if not (a >> slot) & 1):
                kept = [a for a in range(1 << m) if not (a >> slot) & 1]
                table = sum(bits[a] << i for i, a in enumerate(kept))
                row = row[:slot] + row[slot + 1:]
        rows[j], tabs[j] = row, table
    return rows, tabs


def fold_constants(rows, tables, const: dict):
    """Substitute known constant inputs (index -> 0/1) into the tables and drop those slots.

    Returns new (rows, tables as hex strings). Why: an encoder bit whose threshold lies outside
    the grid is a constant, and a LUT whose table is constant drives one; a device primitive fed
    a constant select (an ECP5 ``PFUMX``) is folded away by yosys, which leaves the ``L6MUX21``
    after it with an input nextpnr cannot pack.
    """
    rows, out = [list(r) for r in rows], list(tables)
    for j, row in enumerate(rows):
        if not any(i in const for i in row):
            continue
        table = int(out[j], 16)
        for slot in reversed(range(len(row))):
            if row[slot] in const:
                m, v = len(row), const[row[slot]]
                kept = [a for a in range(1 << m) if (a >> slot) & 1 == v]
                table = sum(((table >> a) & 1) << i for i, a in enumerate(kept))
                row = row[:slot] + row[slot + 1:]
        rows[j], out[j] = row, f"{table:x}"
    return rows, out


def _encoder_constants(ir: dict) -> dict:
    """Thermometer bits that are constant: threshold below the grid (1) or at its top (0)."""
    from dwn_hw.ir import grid_range

    enc = ir["encoder"]
    qmin, qmax = grid_range(enc)
    T = int(enc["bits_per_feature"])
    return {f * T + k: int(t <= qmin - 1) for f, row in enumerate(enc["thresholds"]) for k, t in enumerate(row)
            if t <= qmin - 1 or t >= qmax}


def plan(ir: dict, inputs: str) -> Plan:
    """Fold constants, drop don't-care LUT inputs, prune dead logic and compact indices (see :class:`Plan`)."""
    const = _encoder_constants(ir) if inputs == "features" else {}
    layers = []
    for layer in ir["layers"]:
        rows, tabs = reduce_layer(*fold_constants(layer["mapping"], layer["tables"], const))
        layers.append({"mapping": rows, "tables": tabs})
        const = {j: t & 1 for j, (r, t) in enumerate(zip(rows, tabs)) if not r}
    k = int(ir["groupsum"]["k"])
    n_last = len(layers[-1]["mapping"])
    perm = ir["groupsum"].get("permutation") or list(range(n_last))
    g = -(-n_last // k)
    groups = [[perm[p] for p in range(c * g, min((c + 1) * g, n_last))] for c in range(k)]
    # Backward liveness: the last layer is read by the groups, each earlier stage by live LUTs.
    live = [None] * len(layers)
    live[-1] = sorted(set(perm))
    for i in range(len(layers) - 1, 0, -1):
        rows = layers[i]["mapping"]
        live[i - 1] = sorted({s for j in live[i] for s in rows[j]})
    live_in = sorted({s for j in live[0] for s in layers[0]["mapping"][j]})
    out_layers = []
    prev_index = {s: i for i, s in enumerate(live_in)}
    for i, layer in enumerate(layers):
        rows, tabs = layer["mapping"], layer["tables"]
        new_rows = [[prev_index[s] for s in rows[j]] for j in live[i]]
        new_tabs = [tabs[j] for j in live[i]]
        out_layers.append((new_rows, new_tabs))
        prev_index = {s: idx for idx, s in enumerate(live[i])}
    groups = [[prev_index[s] for s in grp] for grp in groups]
    enc = ir["encoder"]
    if inputs == "features":
        T = int(enc["bits_per_feature"])
        sources = [(s // T, int(enc["thresholds"][s // T][s % T])) for s in live_in]
    else:
        sources = list(live_in)
    return Plan(sources=sources, layers=out_layers, groups=groups)


class DwnTop(wiring.Component):
    """A whole DWN: one sample per clock, fixed latency ``latency`` (≥ 1).

    Ports: ``clk``, ``rst``, ``in_valid``, ``in_data``, ``out_valid``, ``out_class``, ``out_scores``
    (class c at ``[c*W +: W]``). The clock domain has no reset: ``rst`` is read only by the valid
    pipeline, so data registers are never reset.

    Parameters
    ----------
    ir : dict
        A validated IR.
    inputs : str
        ``"features"`` (integer features, thermometer encoder in hardware) or ``"bits"``.
    pipeline : PipelineSpec
        Register placement.
    lut_style : str
        How a LUT is written (:mod:`dwn_hw.hdl.lut`).
    name : str
        Stem of the plain-Verilog modules of this top (``<name>_layer<i>``, ``<name>_pop<c>_l<j>``,
        ``<name>_lut``); the top module itself is named at conversion.
    """

    def __init__(self, ir: dict, inputs: str, pipeline: PipelineSpec, *, lut_style: str = "mux",
                 name: str = "dwn_top"):
        cell = f"{name}_lut"
        self.ir, self.inputs, self.spec, self.lut_style, self.cell = ir, inputs, pipeline, lut_style, cell
        self.plan = plan(ir, inputs)
        self.classes = int(ir["groupsum"]["k"])
        self.score_width = score_width(ir)
        self.class_width = class_width(ir)
        self.in_width = input_width(ir, inputs)
        self.max_counter = native_fanin(lut_style)
        sizes = [len(grp) for grp in self.plan.groups]
        # The depth of the tree this style builds (the carry-chain tree in the device styles).
        self.pop_levels = max(popcount_levels(s, self.score_width, self.max_counter, style=lut_style)
                              for s in sizes if s)
        pop_regs = self.pop_levels // pipeline.popcount if pipeline.popcount else 0
        # The Verilog-bodied parts are built here, not in elaborate(), so their text is known up front.
        self.encoder = None
        if inputs == "features" and self.plan.sources:
            enc = ir["encoder"]
            self.encoder = ThermometerEncoder(int(enc["features"]), int(enc["input_bits"]), enc["signed"],
                                              self.plan.sources, module=f"{name}_encoder", style=lut_style,
                                              cell=cell)
        width = len(self.plan.sources)
        self.layers = []
        for i, (rows, tables) in enumerate(self.plan.layers):
            # A layer with no live LUT (every later LUT is a constant) is left out entirely.
            self.layers.append(LUTArray(f"{name}_layer{i}", width, rows, tables, style=lut_style, cell=cell)
                               if rows else None)
            width = len(rows)
        self.popcounts = [
            Popcount(len(grp), self.score_width, levels=self.pop_levels, every=pipeline.popcount,
                     module=f"{name}_pop{c}", style=lut_style, cell=cell, max_counter=self.max_counter)
            if grp else None for c, grp in enumerate(self.plan.groups)]
        arg_levels = max(0, (self.classes - 1).bit_length())
        arg_regs = (arg_levels - 1) // pipeline.argmax if pipeline.argmax and arg_levels else 0
        self.latency = 1 + int(pipeline.encoder) + len(pipeline.layers) + pop_regs + arg_regs
        super().__init__({
            "clk": In(1), "rst": In(1), "in_valid": In(1), "in_data": In(self.in_width),
            "out_valid": Out(1), "out_class": Out(self.class_width),
            "out_scores": Out(self.classes * self.score_width),
        })

    def verilog_modules(self) -> list[str]:
        """Verilog text of the LUT arrays (layers and counter levels) this top instantiates."""
        texts = [self.encoder.verilog()] if self.encoder else []
        texts += [layer.verilog() for layer in self.layers if layer is not None]
        for pop in self.popcounts:
            if pop is not None:
                texts += pop.verilog_modules()
        if self.lut_style == "cell":
            texts.append(cell_verilog(self.cell))
        return texts

    def elaborate(self, platform):
        m = Module()
        spec, plan_ = self.spec, self.plan
        W = self.score_width

        def stage(value, name):
            reg = Signal(len(value), name=name, reset_less=True)
            m.d.sync += reg.eq(value)
            return reg

        # One clock, no domain reset: rst is an ordinary input that only the valid pipeline reads,
        # so no data register and no submodule sees it.
        m.domains.sync = domain = ClockDomain("sync", reset_less=True)
        m.d.comb += domain.clk.eq(self.clk)

        if not plan_.sources:  # every first-layer LUT is a constant
            bits = Const(0, 0)
        elif self.encoder is not None:
            m.submodules.encoder = self.encoder.instance(in_data=self.in_data)
            bits = self.encoder.bits
        else:
            bits = Signal(len(plan_.sources), name="in_bits")
            m.d.comb += bits.eq(Cat(*[self.in_data[i] for i in plan_.sources]))
        if spec.encoder:
            bits = stage(bits, "enc_q")  # (an empty register when nothing is read: still a stage)

        for i, layer in enumerate(self.layers):
            if layer is None:
                bits = Const(0, 0)
            else:
                m.submodules[f"layer{i}"] = layer.instance(inputs=bits) if layer.in_width else layer.instance()
                bits = layer.outputs
            if i in spec.layers:
                bits = stage(bits, f"layer{i}_q")

        scores = []
        for c, (grp, pop) in enumerate(zip(plan_.groups, self.popcounts)):
            if pop is None:  # a class made only of zero padding scores 0
                scores.append(Const(0, W))
                continue
            m.submodules[f"pop{c}"] = pop
            m.d.comb += pop.bits.eq(Cat(*[bits[i] for i in grp]))
            scores.append(pop.count)

        zero_from = next((c for c, pop in enumerate(self.popcounts) if pop is None), self.classes)
        m.submodules.argmax = argmax = Argmax(self.classes, W, every=spec.argmax, zero_from=zero_from)
        m.d.comb += argmax.scores.eq(Cat(*scores))

        # Output registers (always) and the valid pipeline, the only state rst clears.
        m.d.sync += [self.out_class.eq(argmax.index), self.out_scores.eq(argmax.scores_out)]
        valid = self.in_valid
        for s in range(self.latency):
            nxt = Signal(name=f"valid{s}", reset_less=True)
            m.d.sync += nxt.eq(Mux(self.rst, 0, valid))
            valid = nxt
        m.d.comb += self.out_valid.eq(valid)
        return m


def build_top(ir: dict, inputs: str | None = None, pipeline="balanced", name: str = "dwn_top",
              prefix: str = "", lut_style: str = "mux"):
    """Verilog text of a whole DWN and facts about it.

    Parameters
    ----------
    ir : dict
        A validated IR (``dwn_hw.ir.load``).
    inputs : {"features", "bits"} or None
        What ``in_data`` carries; None means ``"features"`` when the IR has an encoder.
    pipeline : str or PipelineSpec
        A preset (``none``, ``balanced``, ``max``), a token list such as
        ``enc,l0,pop=2,arg=1`` (:mod:`dwn_hw.hdl.pipeline`) or a spec.
    name : str
        Name of the top module (before the prefix).
    prefix : str
        Prepended to every module name in the text, so several tops can share one build.
    lut_style : str
        How a LUT is written (:mod:`dwn_hw.hdl.lut`).

    Returns
    -------
    (str, dict)
        The Verilog text and ``info`` with ``latency``, ``in_width``, ``score_width``,
        ``classes``, ``class_width``, ``top`` (the full top module name), ``pipeline`` (canonical
        text), ``inputs``, ``lut_style`` and ``modules`` (every module name in the text).
    """
    if inputs is None:
        inputs = "features" if ir["encoder"]["kind"] == "thermometer" else "bits"
    if inputs not in INPUTS:
        raise DwnHwError(f"inputs must be 'features' or 'bits', not {inputs!r}")
    if inputs == "features" and ir["encoder"]["kind"] != "thermometer":
        raise DwnHwError("--inputs features needs an IR with a thermometer encoder; this one has encoder.kind 'none'")
    ident = prefix + name
    if not ident.isidentifier() or not ident.isascii():
        raise DwnHwError(f"module name {ident!r} (prefix + name) is not a plain Verilog identifier")
    spec = parse_pipeline(pipeline, len(ir["layers"]))
    check_style(lut_style, max(int(layer["n"]) for layer in ir["layers"]))
    top = DwnTop(ir, inputs, spec, lut_style=lut_style, name=ident)
    text = _to_verilog(top, ident)
    text = "\n".join([text.rstrip("\n") + "\n"] + top.verilog_modules())
    modules = _module_names(text)
    info = {"top": ident, "latency": top.latency, "in_width": top.in_width, "score_width": top.score_width,
            "classes": top.classes, "class_width": top.class_width, "inputs": inputs,
            "pipeline": spec.text(), "lut_style": lut_style, "modules": modules,
            "num_input_bits": num_input_bits(ir)}
    return text, info


def _to_verilog(top, name: str) -> str:
    """Verilog of the Amaranth part, through Amaranth's own yosys with a script of ours.

    Like ``amaranth.back.verilog.convert`` (whose script is fixed), but every wire that is not a
    port is made private first, so ``opt_clean`` may drop the alias wires Amaranth names after
    ports and members (some bits unread: lint flags them); ``-noattr`` keeps attributes out.
    """
    from amaranth._toolchain.yosys import find_yosys
    from amaranth.back import rtlil

    text = _private_wires(rtlil.convert(top, name=name, emit_src=False))
    yosys = find_yosys(lambda version: version >= (0, 40))
    script = [f"read_rtlil <<rtlil\n{text}\nrtlil", "proc -nomux -norom", "opt_clean -purge",
              "write_verilog -norename -noattr"]
    out = yosys.run(["-q", "-"], "\n".join(script), ignore_warnings=True)
    # The banner names the yosys build; keep it out so the bytes depend only on the design.
    return "\n".join(line for line in out.splitlines() if not line.startswith("/* Generated by")).lstrip("\n") + "\n"


def _private_wires(rtlil_text: str) -> str:
    """Rename every non-port wire of each RTLIL module from ``\\name`` to ``$name``."""
    out, module = [], None
    for line in rtlil_text.splitlines():
        if line.startswith("module "):
            module = [line]
        elif module is not None:
            module.append(line)
            if line == "end":  # a module's end is the only unindented "end"
                out.extend(_privatise(module))
                module = None
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _privatise(lines: list) -> list:
    names = set()
    for line in lines:
        words = line.split()
        if words and words[0] == "wire" and not {"input", "output", "inout"} & set(words):
            if words[-1].startswith("\\"):
                names.add(words[-1])
    result, in_cell = [], False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("cell "):
            in_cell = True
        elif stripped == "end" and in_cell:
            in_cell = False
        words = line.split(" ")
        # In a cell, "connect PORT SIGNAL": the port name belongs to the cell's module.
        skip = words.index("connect") + 1 if in_cell and stripped.startswith("connect ") else -1
        result.append(" ".join("$" + w[1:] if w in names and i != skip else w for i, w in enumerate(words)))
    return result


def _module_names(text: str) -> list[str]:
    names = []
    for line in text.splitlines():
        if line.startswith("module "):
            names.append(line.split()[1].split("(")[0].lstrip("\\"))
    return names
