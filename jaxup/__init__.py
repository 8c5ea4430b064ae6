"""jaxup: every upsampling technique as a pure, composable JAX function.

Each upsampler is the transpose (the VJP) of a downsampler; see the README for the table.
"""

from jaxup._src.bed_of_nails import bed_of_nails as bed_of_nails
from jaxup._src.conv import conv as conv
from jaxup._src.conv import conv_transpose as conv_transpose
from jaxup._src.conv import kernel_from_torch as kernel_from_torch
from jaxup._src.geometry import conv_output_size as conv_output_size
from jaxup._src.geometry import conv_transpose_output_size as conv_transpose_output_size
from jaxup._src.grid_sample import affine_grid as affine_grid
from jaxup._src.grid_sample import grid_sample as grid_sample
from jaxup._src.icnr import icnr as icnr
from jaxup._src.indices import indices_from_onnx as indices_from_onnx
from jaxup._src.indices import indices_from_tf as indices_from_tf
from jaxup._src.indices import indices_to_onnx as indices_to_onnx
from jaxup._src.indices import indices_to_tf as indices_to_tf
from jaxup._src.layout import Layout as Layout
from jaxup._src.layout import parse_layout as parse_layout
from jaxup._src.max_pool import max_pool as max_pool
from jaxup._src.max_unpool import max_unpool as max_unpool
from jaxup._src.nearest import upsample_nearest as upsample_nearest
from jaxup._src.pixel_shuffle import pixel_shuffle as pixel_shuffle
from jaxup._src.pixel_shuffle import pixel_unshuffle as pixel_unshuffle
from jaxup._src.resize import resize as resize
from jaxup._src.resize import scale_and_translate as scale_and_translate
from jaxup._src.upfirdn import blur_pool as blur_pool
from jaxup._src.upfirdn import blur_upsample as blur_upsample
from jaxup._src.upfirdn import upfirdn as upfirdn
from jaxup._src.upsample_conv import upsample_conv as upsample_conv
from jaxup import testing as testing

__version__ = "0.1.0"

__all__ = [
    "Layout",
    "affine_grid",
    "bed_of_nails",
    "blur_pool",
    "blur_upsample",
    "conv",
    "conv_output_size",
    "conv_transpose",
    "conv_transpose_output_size",
    "grid_sample",
    "icnr",
    "indices_from_onnx",
    "indices_from_tf",
    "indices_to_onnx",
    "indices_to_tf",
    "kernel_from_torch",
    "max_pool",
    "max_unpool",
    "parse_layout",
    "pixel_shuffle",
    "pixel_unshuffle",
    "resize",
    "scale_and_translate",
    "upfirdn",
    "upsample_conv",
    "upsample_nearest",
]
