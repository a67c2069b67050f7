"""Synthesis flows (iCE40, ECP5, Xilinx estimates), boards, the UART host side and reports. No torch."""
