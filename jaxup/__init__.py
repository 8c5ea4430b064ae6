"""jaxup: every upsampling technique as a pure, composable JAX function.

Each upsampler is the transpose (the VJP) of a downsampler; see the README for the table.
"""

from jaxup._src.bed_of_nails import bed_of_nails as bed_of_nails
from jaxup._src.geometry import conv_output_size as conv_output_size
from jaxup._src.geometry import conv_transpose_output_size as conv_transpose_output_size
from jaxup._src.layout import Layout as Layout
from jaxup._src.layout import parse_layout as parse_layout
from jaxup._src.nearest import upsample_nearest as upsample_nearest
from jaxup._src.pixel_shuffle import pixel_shuffle as pixel_shuffle
from jaxup._src.pixel_shuffle import pixel_unshuffle as pixel_unshuffle

__version__ = "0.1.0"

__all__ = [
    "Layout",
    "bed_of_nails",
    "conv_output_size",
    "conv_transpose_output_size",
    "parse_layout",
    "pixel_shuffle",
    "pixel_unshuffle",
    "upsample_nearest",
]
