"""DWN layers with torch-dwn's API: thermometer encoders, LUT layers, learnable mapping, GroupSum.

``import dwn_hw as dwn`` forwards these names, so torch-dwn's code runs with only its import changed.
"""
from .efd import EFDFunction, STEFunction
from .encoders import DistributiveThermometer, GaussianThermometer, Thermometer
from .group_sum import GroupSum
from .lut_layer import LUTLayer
from .mapping import LearnableMapping, layer_mapping

__all__ = ["Thermometer", "DistributiveThermometer", "GaussianThermometer", "LUTLayer", "LearnableMapping",
           "GroupSum", "EFDFunction", "STEFunction", "layer_mapping"]
