"""jaxup: every upsampling technique as a pure, composable JAX function.

Each upsampler is the transpose (the VJP) of a downsampler; see the README for the table.
"""

from jaxup._src.conv import conv as conv
from jaxup._src.conv import conv_transpose as conv_transpose
from jaxup._src.conv import kernel_from_torch as kernel_from_torch
from jaxup._src.geometry import conv_output_size as conv_output_size
from jaxup._src.geometry import conv_transpose_output_size as conv_transpose_output_size
from jaxup._src.layout import Layout as Layout
from jaxup._src.layout import parse_layout as parse_layout
from jaxup._src.resize import resize as resize

__version__ = "0.1.0"

__all__ = [
    "Layout",
    "conv",
    "conv_output_size",
    "conv_transpose",
    "conv_transpose_output_size",
    "kernel_from_torch",
    "parse_layout",
    "resize",
]
