"""The checks of generated hardware, independent of the generator where they repeat a rule (no torch).

- :mod:`dwn_hw.check.sim`: ``dwn-hw sim``, the bundle's cocotb bench on Verilator;
- :mod:`dwn_hw.check.lint`: ``verilator --lint-only`` and the waivers a bundle ships;
- :mod:`dwn_hw.check.reference`: the reference netlist written from the IR alone, with its own fold rules (a copy
  on purpose: a check must not call the generator);
- :mod:`dwn_hw.check.formal`: the yosys miter and SAT proof (:func:`~dwn_hw.check.formal.prove`);
- :mod:`dwn_hw.check.readback`: the gate netlist reader and :func:`~dwn_hw.check.readback.lut_readback`;
- :mod:`dwn_hw.check.verify`: ``dwn-hw verify`` (:func:`~dwn_hw.check.verify.verify_bundle` and the CLI).
"""
