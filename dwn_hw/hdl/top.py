"""The top ``dwn_top``: encoder, LUT layers, popcounts, argmax and the valid pipeline.

Only logic that reaches a class score is built: a LUT whose output no later LUT reads and an
encoder bit that no LUT reads are left out (they cannot change any output), so every internal
signal is used and lint stays clean.
"""
from __future__ import annotations

from amaranth.hdl import Cat, ClockDomain, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dwn_hw.errors import DwnHwError
from dwn_hw.hdl.argmax import Argmax, argmax_registers
from dwn_hw.hdl.encoder import ThermometerEncoder
from dwn_hw.hdl.lut import LUTArray, cell_verilog, check_style, native_fanin
from dwn_hw.hdl.pipeline import PipelineSpec, parse_pipeline
from dwn_hw.hdl.plan import plan
from dwn_hw.hdl.popcount import Popcount, popcount_levels
from dwn_hw.hdl.verilog import module_names, to_verilog
from dwn_hw.ir import class_width, input_width, num_input_bits, score_width

INPUTS = ("features", "bits")


def argmax_structure(lut_style: str) -> str:
    """The argmax a core of this LUT style builds (:mod:`dwn_hw.hdl.argmax`).

    ECP5: ``pairs`` -- on its carry chains the tree's comparisons in series (each into a score
    multiplexer) set the core's Fmax; all pairs side by side cost 45 comparators instead of 9 for
    10 classes (a few percent of an MNIST core) and need at most one register. Elsewhere ``tree``,
    the fewest LUTs (the iCE40 cores are LUT-bound, the Xilinx figures are LUT counts).
    """
    return "pairs" if lut_style == "ecp5" else "tree"


def popcount_align(lut_style: str) -> str:
    """Where a core of this style puts its ``pop=<m>`` registers (:class:`Popcount` ``align``).

    ECP5: ``root``, a register right after the final adder, so that its carry chain and the argmax's
    comparison chain are not in one cycle; the number of registers (the latency) is the same.
    Elsewhere ``leaves`` (after levels m, 2m, ...).
    """
    return "root" if lut_style == "ecp5" else "leaves"


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
                     module=f"{name}_pop{c}", style=lut_style, cell=cell, max_counter=self.max_counter,
                     align=popcount_align(lut_style))
            if grp else None for c, grp in enumerate(self.plan.groups)]
        self.argmax_structure = argmax_structure(lut_style)
        arg_regs = argmax_registers(self.classes, pipeline.argmax, self.argmax_structure)
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
        m.submodules.argmax = argmax = Argmax(self.classes, W, every=spec.argmax, zero_from=zero_from,
                                                structure=self.argmax_structure)
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
    text = to_verilog(top, ident, private_wires=True)
    text = "\n".join([text.rstrip("\n") + "\n"] + top.verilog_modules())
    modules = module_names(text)
    info = {"top": ident, "latency": top.latency, "in_width": top.in_width, "score_width": top.score_width,
            "classes": top.classes, "class_width": top.class_width, "inputs": inputs,
            "pipeline": spec.text(), "lut_style": lut_style, "modules": modules,
            "num_input_bits": num_input_bits(ir), "input_doc": input_doc(ir, inputs)}
    return core_header(info) + text, info


# Said identically in docs/ir.md, the bundle README and dwn_hw.ir.grid.quantize_array (np.rint).
ROUNDING = ("round = to the nearest integer, ties to even (numpy rint: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -2.5 -> -2), "
            "x*scale computed in float64 with scale as float32")


def _fmt_scale(scale) -> str:
    if isinstance(scale, list):
        return f"per feature ({len(scale)} values: bundle.json input_scale, dwn.ir.json encoder.scale)"
    return repr(float(scale))


def input_doc(ir: dict, inputs: str) -> list[str]:
    """Lines (no comment marks) saying how a user's data becomes ``in_data``; deterministic."""
    from dwn_hw.ir import grid_range

    enc = ir["encoder"]
    if inputs == "bits":
        lines = [f"in_data[i] is input bit i ({num_input_bits(ir)} bits)."]
        if enc["kind"] == "thermometer":
            T = int(enc["bits_per_feature"])
            lines.append(f"Bit i = f*{T} + t is the thermometer bit q_f > thresholds[f][t] of dwn.ir.json "
                         "(q_f as below).")
        else:
            return lines
    else:
        B = int(enc["input_bits"])
        kind = "two's complement" if enc["signed"] else "unsigned"
        lines = [f"Feature f (of {int(enc['features'])}) is q_f at in_data[f*{B} +: {B}], {B}-bit {kind}."]
    qmin, qmax = grid_range(enc)
    lines += [f"q_f = clip(round(x_f * scale_f), qmin, qmax), qmin = {qmin}, qmax = {qmax}, "
              f"scale {_fmt_scale(enc['scale'])};",
              f"  {ROUNDING}.",
              "The model saw x_f = float32(q_f) / float32(scale_f)."]
    return lines


def _port_lines(ports) -> list[str]:
    """``(direction, name, width, meaning)`` rows as aligned text."""
    rows = [(d, f"[{w - 1}:0]" if w > 1 else "", n, m) for d, n, w, m in ports]
    wr = max(len(r[1]) for r in rows)
    wn = max(len(r[2]) for r in rows)
    return [f"  {d:<6} {r:<{wr}} {n:<{wn}}  {m}".rstrip() for d, r, n, m in rows]


def verilog_header(title: str, facts: list[str], ports, notes: list[str]) -> str:
    """A ``//`` comment block for the top of a generated Verilog file (ASCII, no dates, no paths)."""
    from dwn_hw import __version__

    lines = [title, f"Generated by dwn-hw {__version__} (Amaranth) from a dwn-hw IR; regenerate with "
             "`dwn-hw export` instead of editing.", *facts, "Ports:", *_port_lines(ports), *notes]
    return "".join(f"// {line}".rstrip() + "\n" for line in lines) + "\n"


def core_header(info: dict) -> str:
    """The header comment of a core ``build_top`` writes."""
    K, W, L = info["classes"], info["score_width"], info["latency"]
    ports = [("input", "clk", 1, "clock, rising edge"),
             ("input", "rst", 1, "synchronous, active high; clears only the valid pipeline"),
             ("input", "in_valid", 1, "in_data holds a sample this clock"),
             ("input", "in_data", info["in_width"], "the sample (below)"),
             ("output", "out_valid", 1, "out_class and out_scores hold a result"),
             ("output", "out_class", info["class_width"], "predicted class: lowest index among the highest scores"),
             ("output", "out_scores", K * W, f"score of class c (popcount of its group) at out_scores[c*{W} +: {W}]")]
    facts = [f"Top {info['top']}: {K} classes, LUT style {info['lut_style']}, pipeline {info['pipeline']}.",
             f"Latency {L} clock(s), one sample per clock: a sample driven with in_valid after rising edge e",
             f"shows on out_class/out_scores with out_valid high after rising edge e+{L}."]
    return verilog_header(f"{info['top']}: a Differentiable Weightless Neural Network (lookup-table network) core.",
                          facts, ports, ["Inputs:", *("  " + line for line in info["input_doc"])])
