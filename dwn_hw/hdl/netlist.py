"""Components whose body is a generated Verilog module.

Amaranth's netlist builder costs about 3 ms per LUT and its Verilog writer trims constant
widths (which Verilator's default lint rejects), so the regular, wide parts of a DWN (LUT
arrays, comparators, the final adders) are written here as plain Verilog text, one module per
component, and placed in the Amaranth design as an ``Instance``. Registers, wiring, the argmax
and the valid pipeline stay in Amaranth.
"""
from __future__ import annotations

from amaranth.hdl import Instance
from amaranth.lib import wiring


class VerilogComponent(wiring.Component):
    """A component implemented by the Verilog module :meth:`verilog` returns.

    Subclasses set ``self.module`` (the module name) and implement :meth:`verilog` and
    :meth:`port_map` (``Instance`` keyword arguments such as ``{"i_x": self.inputs}``).
    """

    module: str

    def verilog(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def port_map(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def elaborate(self, platform):
        # Returning the Instance itself avoids a wrapper module around it.
        return Instance(self.module, **self.port_map())


def port_list(ports) -> str:
    """``(\\n    input wire [3:0] x,\\n ...)`` from (direction, width, name) tuples."""
    lines = [f"    {d} wire [{w - 1}:0] {n}" for d, w, n in ports]
    return "(\n" + ",\n".join(lines) + "\n);\n"
