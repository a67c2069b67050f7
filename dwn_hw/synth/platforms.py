"""amaranth.build platforms for the boards amaranth-boards does not have (Basys-3, PYNQ-Z2).

Only what a dwn-hw board build needs: the clock, a UART and a few LEDs. Pins follow the vendors'
master constraint files. No torch here.
"""
from amaranth.build import Attrs, Clock, Pins, Resource
from amaranth.vendor import XilinxPlatform
from amaranth_boards.resources import LEDResources, UARTResource

__all__ = ["Basys3Platform", "PynqZ2Platform"]

_LV33 = Attrs(IOSTANDARD="LVCMOS33")


class Basys3Platform(XilinxPlatform):
    """Digilent Basys-3 (Artix-7 xc7a35t-1cpg236): 100 MHz clock, the FTDI UART on B18/A18."""

    device = "xc7a35t"
    package = "cpg236"
    speed = "1"
    default_clk = "clk100"
    resources = [
        Resource("clk100", 0, Pins("W5", dir="i"), Clock(100e6), _LV33),
        UARTResource(0, rx="B18", tx="A18", attrs=_LV33),
        *LEDResources(pins="U16 E19 U19 V19", attrs=_LV33),
    ]
    connectors = []


class PynqZ2Platform(XilinxPlatform):
    """TUL PYNQ-Z2 (Zynq xc7z020-1clg400), programmable-logic side only.

    The board's USB UART is wired to the processor system, so the UART here is on Pmod JA's top
    row, laid out for a USB-UART Pmod (Digilent PmodUSBUART pin order: 1 RTS, 2 RXD, 3 TXD, 4 CTS):
    the FPGA transmits on JA2 (Y19) and receives on JA3 (Y16). The 125 MHz clock is on H16.
    """

    device = "xc7z020"
    package = "clg400"
    speed = "1"
    default_clk = "clk125"
    resources = [
        Resource("clk125", 0, Pins("H16", dir="i"), Clock(125e6), _LV33),
        UARTResource(0, rx="Y16", tx="Y19", attrs=_LV33),
        *LEDResources(pins="R14 P14 N16 M14", attrs=_LV33),
    ]
    connectors = []
