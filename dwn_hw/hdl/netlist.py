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
    :meth:`ports` (Verilog port name -> (``"i"`` or ``"o"``, member name)).

    A parent should place it with :meth:`instance`, passing the input *values* directly: going
    through the member signals (``m.d.comb += comp.inputs.eq(v)``) leaves alias wires in the
    Verilog, some bits of which nothing reads, and lint flags them.
    """

    module: str

    def verilog(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def ports(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def instance(self, **inputs) -> Instance:
        """An ``Instance`` of the module: inputs from ``inputs`` (by member name, default the
        member signal), outputs driving the member signals."""
        kwargs = {}
        for port, (direction, member) in self.ports().items():
            value = inputs.pop(member, getattr(self, member)) if direction == "i" else getattr(self, member)
            kwargs[f"{direction}_{port}"] = value
        if inputs:
            raise TypeError(f"{self.module}: no input member(s) {sorted(inputs)}")
        # The component is used through this Instance; tell Amaranth's unused-elaboratable check.
        self._MustUse__silence = True
        return Instance(self.module, **kwargs)

    def elaborate(self, platform):
        return self.instance()


def port_list(ports) -> str:
    """``(\\n    input wire [3:0] x,\\n ...)`` from (direction, width, name) tuples."""
    lines = [f"    {d} wire [{w - 1}:0] {n}" for d, w, n in ports]
    return "(\n" + ",\n".join(lines) + "\n);\n"
