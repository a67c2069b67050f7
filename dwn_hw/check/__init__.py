"""The checks of generated hardware, independent of the generator where they repeat a rule (no torch).

- :mod:`dwn_hw.check.sim`: ``dwn-hw sim``, the bundle's cocotb bench on Verilator;
- :mod:`dwn_hw.check.lint`: ``verilator --lint-only`` and the waivers a bundle ships;
- :mod:`dwn_hw.check.verify`: ``dwn-hw verify``: the reference netlist written from the IR alone, LUT read-back
  and the formal proof (its fold rules are its own copy on purpose: a check must not call the generator).
"""
