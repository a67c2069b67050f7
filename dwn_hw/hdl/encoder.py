"""Thermometer encoder: one comparator per threshold that some LUT reads."""
from __future__ import annotations

from amaranth.lib.wiring import In, Out

from dwn_hw.errors import DwnHwError
from dwn_hw.hdl.netlist import VerilogComponent, port_list
from dwn_hw.ir import grid_range


class ThermometerEncoder(VerilogComponent):
    """Bits ``q_f > threshold`` of integer features, for a chosen list of (feature, threshold).

    Feature ``f`` is ``in_data[f*B +: B]`` (two's complement when ``signed``). A threshold at
    ``qmin - 1`` is the constant 1 and one at ``qmax`` the constant 0, so they cost nothing;
    equal (feature, threshold) pairs share one comparator. Each comparison is between a
    feature and a constant of the same width and signedness.

    Parameters
    ----------
    features : int
        Number of features F.
    input_bits : int
        Bits per feature B.
    signed : bool
        Whether features are two's complement.
    bits : list of (int, int)
        The (feature, threshold) of each output bit, in output order.
    module : str
        Verilog module name.

    Attributes
    ----------
    in_data : Signal(F*B), in
    bits : Signal(len(bits)), out
    """

    def __init__(self, features: int, input_bits: int, signed: bool, bits, *, module: str = "dwn_encoder"):
        if not bits:
            raise DwnHwError("ThermometerEncoder needs at least one output bit")
        self.module = module
        self._features, self._B, self._signed = features, input_bits, bool(signed)
        self._qmin, self._qmax = grid_range({"input_bits": input_bits, "signed": signed})
        for f, t in bits:
            if not 0 <= f < features:
                raise DwnHwError(f"ThermometerEncoder: feature {f} is out of range 0..{features - 1}")
            if not self._qmin - 1 <= t <= self._qmax:
                raise DwnHwError(f"ThermometerEncoder: threshold {t} is outside [{self._qmin - 1}, {self._qmax}]")
        self._bits = [(int(f), int(t)) for f, t in bits]
        super().__init__({"in_data": In(features * input_bits), "bits": Out(len(self._bits))})

    def verilog(self) -> str:
        B, mask = self._B, (1 << self._B) - 1
        digits = max(1, -(-B // 4))
        decls, assigns, shared = [], [], {}
        for i, (f, t) in enumerate(self._bits):
            if t <= self._qmin - 1:
                assigns.append(f"    assign bits[{i}] = 1'b1;\n")
                continue
            if t >= self._qmax:
                assigns.append(f"    assign bits[{i}] = 1'b0;\n")
                continue
            if (f, t) not in shared:
                name = f"f{f}_gt_{'m' if t < 0 else ''}{abs(t)}"
                q = f"in_data[{f * B + B - 1}:{f * B}]"
                const = f"{B}'h{t & mask:0{digits}x}"
                cmp = f"$signed({q}) > $signed({const})" if self._signed else f"{q} > {const}"
                decls.append(f"    wire {name} = {cmp};\n")
                shared[(f, t)] = name
            assigns.append(f"    assign bits[{i}] = {shared[(f, t)]};\n")
        ports = [("input", self._features * B, "in_data"), ("output", len(self._bits), "bits")]
        return f"module {self.module} " + port_list(ports) + "".join(decls) + "".join(assigns) + "endmodule\n"

    def ports(self) -> dict:
        return {"in_data": ("i", "in_data"), "bits": ("o", "bits")}
