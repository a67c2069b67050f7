"""Popcount of one class's group: a compressor tree sized exactly.

Bits are kept in columns by weight. Nothing is wider than the score: a bit of weight ≥ the
score width can only be 0 (the group's popcount is below 2**width), so it is never built.
Two structures:

LUT tree (the portable styles, and ``chain=False``)
    each level replaces every column taller than two by counters of up to 6 inputs (one LUT
    per output bit, written like the layers' LUTs); the two rows that remain are added once
    (``assign s = a + b``).
carry chain (the device styles ``xilinx``, ``ecp5``, ``ice40``)
    counters built on the family's carry chain from explicit primitives, chosen per level by a
    small cost model (:mod:`dwn_hw.hdl.popchain`), and a final ripple adder on the chain.
    docs/hardware.md has the structures and the measured figures.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dwn_hw.errors import DwnHwError
from dwn_hw.hdl.lut import LUTArray
from dwn_hw.hdl.netlist import VerilogComponent, port_list
from dwn_hw.hdl import popchain


ALIGNS = ("leaves", "root")


def counter_table(size: int, bit: int) -> int:
    """Truth table of bit ``bit`` of the popcount of ``size`` inputs."""
    return sum(1 << a for a in range(1 << size) if (bin(a).count("1") >> bit) & 1)


def _outputs(size: int, weight: int, width: int) -> int:
    return min(size.bit_length(), width - weight)


def _round(cols: list, width: int, max_counter: int, counter) -> list:
    """One level of compression; ``counter(bits, weight)`` returns the output bits of a counter."""
    new = [[] for _ in range(width)]
    for w, col in enumerate(cols):
        if len(col) <= 2:
            new[w].extend(col)
            continue
        for start in range(0, len(col), max_counter):
            chunk = col[start:start + max_counter]
            if len(chunk) < 3:  # a counter of 1 or 2 bits would not shorten the column
                new[w].extend(chunk)
                continue
            for b, out in enumerate(counter(chunk, w)):
                new[w + b].append(out)
    return new


def popcount_levels(size: int, width: int, max_counter: int = 6, style: str = "mux",
                    chain: bool | None = None) -> int:
    """Logic levels of the tree for ``size`` bits: compression rounds plus the final adder.

    ``style`` and ``chain`` as in :class:`Popcount` (a device style builds the carry-chain tree).
    """
    if _use_chain(style, chain):
        return len(popchain.plan(style, size, width)[0]) + 1
    cols = [[None] * size] + [[] for _ in range(width - 1)]
    levels = 0
    while any(len(c) > 2 for c in cols):
        cols = _round(cols, width, max_counter, lambda chunk, w: [None] * _outputs(len(chunk), w, width))
        levels += 1
    return levels + 1  # the final adder (see Popcount)


def _use_chain(style: str, chain: bool | None) -> bool:
    if chain is None:
        return style in popchain.FAMILIES
    if chain and style not in popchain.FAMILIES:
        raise DwnHwError(f"a carry-chain popcount needs a device LUT style ({', '.join(popchain.FAMILIES)}), "
                         f"not {style!r}")
    return bool(chain)


class RowAdder(VerilogComponent):
    """``s = a + b`` on ``width`` bits, the last level of a popcount (the carry out is always 0).

    Attributes
    ----------
    a, b : Signal(width), in
    s : Signal(width), out
    """

    def __init__(self, width: int, *, module: str = "dwn_add"):
        self.module, self.width = module, width
        super().__init__({"a": In(width), "b": In(width), "s": Out(width)})

    def verilog(self) -> str:
        ports = [("input", self.width, "a"), ("input", self.width, "b"), ("output", self.width, "s")]
        return f"module {self.module} " + port_list(ports) + "    assign s = a + b;\nendmodule\n"

    def ports(self) -> dict:
        return {"a": ("i", "a"), "b": ("i", "b"), "s": ("o", "s")}


class Popcount(wiring.Component):
    """Number of ones in ``bits``, as an unsigned ``width``-bit ``count``.

    Parameters
    ----------
    size : int
        Number of input bits (≥ 1).
    width : int
        Width of ``count``; must hold ``size``.
    levels : int or None
        Levels to span (≥ this tree's own depth): a shorter tree passes its result through the
        remaining levels, so that every class of a top has the same latency.
    every : int
        A register after every ``every`` levels (0: purely combinational).
    align : str
        Where those ``levels // every`` registers sit when ``every`` does not divide ``levels``:
        ``"leaves"`` after levels ``every, 2*every, ...``; ``"root"`` after the last level and every
        ``every`` levels below it, so the count leaves from a register (the ECP5 cores: their
        final adder's carry chain then does not run into the argmax's comparisons). Same latency.
    module : str
        Prefix of the Verilog modules of the counter levels (``<module>_l1``, ...).
    style, cell : str
        LUT style and cell name of the counters (:mod:`dwn_hw.hdl.lut`).
    max_counter : int
        Inputs of the largest counter (6 for LUT6 devices, 4 for LUT4) of the LUT tree.
    chain : bool or None
        Build the carry-chain tree (None: exactly when ``style`` is a device style).

    Attributes
    ----------
    bits : Signal(size), in
    count : Signal(width), out
    """

    def __init__(self, size: int, width: int, *, levels: int | None = None, every: int = 0,
                 module: str = "dwn_pop", style: str = "mux", cell: str = "dwn_lut", max_counter: int = 6,
                 chain: bool | None = None, align: str = "leaves"):
        if align not in ALIGNS:
            raise DwnHwError(f"Popcount align must be one of {', '.join(ALIGNS)}, not {align!r}")
        self.align = align
        if size < 1:
            raise DwnHwError(f"Popcount needs at least one input bit, not {size}")
        if size >= 1 << width:
            raise DwnHwError(f"Popcount width {width} cannot hold a count of {size}")
        if not 3 <= max_counter <= 6:
            raise DwnHwError(f"Popcount max_counter must be 3..6, not {max_counter}")
        self.size, self.width, self.every = size, width, every
        self.chain = _use_chain(style, chain)
        if self.chain:
            self._plan, self._final, self._adder = popchain.build(style, size, width, module)
        else:
            self._plan, self._final = self._build_plan(module, style, cell, max_counter)
            # Always a final adder, even with one row left: the count then comes out of a module
            # Amaranth cannot see into. A count with constant-0 high bits built in Amaranth would be
            # passed on trimmed (a 1-bit score compared with 2-bit ones), which Verilator's lint flags.
            self._adder = RowAdder(width, module=f"{module}_add")
        own = len(self._plan) + 1
        self.levels = own if levels is None else levels
        if self.levels < own:
            raise DwnHwError(f"Popcount of {size} bits needs {own} levels, not {levels}")
        super().__init__({"bits": In(size), "count": Out(width)})

    def _build_plan(self, module, style, cell, max_counter):
        width = self.width
        cols = [[("b", i) for i in range(self.size)]] + [[] for _ in range(width - 1)]
        plan = []
        while any(len(c) > 2 for c in cols):
            level = len(plan) + 1
            in_ids, rows, tables, out_ids = [], [], [], []

            def counter(chunk, w):
                base = len(in_ids)
                in_ids.extend(chunk)
                outs = []
                for b in range(_outputs(len(chunk), w, width)):
                    rows.append(list(range(base, base + len(chunk))))
                    tables.append(counter_table(len(chunk), b))
                    outs.append(("c", level, len(out_ids)))
                    out_ids.append(outs[-1])
                return outs

            cols = _round(cols, width, max_counter, counter)
            array = LUTArray(f"{module}_l{level}", len(in_ids), rows, tables, style=style, cell=cell)
            plan.append((array, in_ids, out_ids, cols))
        return plan, cols

    def registers(self) -> int:
        """Register stages inside (the latency this component adds)."""
        return self.levels // self.every if self.every else 0

    def verilog_modules(self) -> list[str]:
        return [array.verilog() for array, *_ in self._plan] + [self._adder.verilog()]

    def elaborate(self, platform):
        m = Module()
        value = {("b", i): self.bits[i] for i in range(self.size)}
        level = 0

        def registered(ids, name):
            # Registers sit after levels every, 2*every, ... of the padded depth ("leaves"), or after
            # levels L, L - every, ... > L % every ("root"): levels // every of them either way.
            if not self.every:
                return
            if self.align == "leaves" and level % self.every:
                return
            if self.align == "root" and ((self.levels - level) % self.every or level <= self.levels % self.every):
                return
            parts = [value[i] for i in ids]
            reg = Signal(sum(len(p) for p in parts), name=name, reset_less=True)
            m.d.sync += reg.eq(Cat(*parts))
            start = 0
            for i, part in zip(ids, parts):
                value[i] = reg[start:start + len(part)]
                start += len(part)

        for array, in_ids, out_ids, cols in self._plan:
            level += 1
            m.submodules[f"l{level}"] = array.instance(inputs=Cat(*[value[i] for i in in_ids]))
            for k, i in enumerate(out_ids):
                value[i] = array.outputs[k]
            registered([i for col in cols for i in col], f"r{level}")

        cols = self._final
        level += 1
        if self.chain:
            m.submodules.add = self._adder.instance(inputs=Cat(*[value[i] for col in cols for i in col]))
            value["sum"] = self._adder.outputs
        else:
            row_a = Cat(*[value[c[0]] if c else Const(0, 1) for c in cols])
            row_b = Cat(*[value[c[1]] if len(c) == 2 else Const(0, 1) for c in cols])
            m.submodules.add = self._adder.instance(a=row_a, b=row_b)
            value["sum"] = self._adder.s
        registered(["sum"], f"r{level}")
        result = value["sum"]
        while level < self.levels:
            level += 1
            value["sum"] = result
            registered(["sum"], f"r{level}")
            result = value["sum"]
        m.d.comb += self.count.eq(result)
        return m
