"""Flax nnx layers over jaxup's functions (needs ``pip install jaxup[flax]``).

The same layers as :mod:`jaxup.flax`, in nnx's eager style: parameters are created in
``__init__``, so the number of input channels and the spatial rank (from ``kernel_size``) are
given up front, as in ``nnx.ConvTranspose``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from jaxup._src import checks
from jaxup._src import layers
from jaxup._src.conv import conv_transpose
from jaxup._src.upsample_conv import upsample_conv
from jaxup._src.geometry import Padding
from jaxup._src.layers import STATELESS_LAYERS
from jaxup._src.layers import BedOfNails as BedOfNails
from jaxup._src.layers import MaxPool as MaxPool
from jaxup._src.layers import MaxUnpool as MaxUnpool
from jaxup._src.layers import PixelShuffle as PixelShuffle
from jaxup._src.layers import PixelUnshuffle as PixelUnshuffle
from jaxup._src.layers import Resize as Resize
from jaxup._src.layers import UpsampleNearest as UpsampleNearest
from jaxup._src.layout import parse_layout

__all__ = ["ConvTranspose", "UpsampleConv", *STATELESS_LAYERS]

IntOrSeq = Union[int, Sequence[int]]


class ConvTranspose(nnx.Module):
  """Transposed convolution with PyTorch semantics: :func:`jaxup.conv_transpose` plus a bias.

  Shapes, channels-last: ``[N, *S, in_features] -> [N, *S_out, out_features]`` with
  ``S_out = (S - 1) stride - 2 padding + dilation (K - 1) + output_padding + 1``. The kernel is
  ``[*K, out_features // groups, in_features]``, the kernel of the convolution being transposed.

  Args:
    in_features: input channels.
    out_features: output channels.
    kernel_size: one int per spatial axis (a tuple: its length sets the spatial rank).
    stride, padding, output_padding, dilation, groups: as in :func:`jaxup.conv_transpose`.
    use_bias: whether to add a bias of shape ``[out_features]``.
    layout: the input layout; ``None`` is channels-last with a batch axis.
    param_dtype: the parameters' dtype.
    precision: passed to ``lax.conv_general_dilated``.
    kernel_init, bias_init: initialisers.
    rngs: the random streams for the initialisers.

  Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> layer = ConvTranspose(16, 4, (3, 3), stride=2, padding=1, output_padding=1,
    ...                       rngs=nnx.Rngs(0))
    >>> layer(jnp.ones((1, 8, 8, 16))).shape
    (1, 16, 16, 4)
  """

  def __init__(
      self,
      in_features: int,
      out_features: int,
      kernel_size: Sequence[int],
      *,
      stride: IntOrSeq = 1,
      padding: Padding = 0,
      output_padding: IntOrSeq = 0,
      dilation: IntOrSeq = 1,
      groups: int = 1,
      use_bias: bool = True,
      layout: Optional[str] = None,
      param_dtype: Any = jnp.float32,
      precision: lax.PrecisionLike = None,
      kernel_init: Optional[Callable] = None,
      bias_init: Callable = jax.nn.initializers.zeros,
      rngs: nnx.Rngs,
  ):
    if isinstance(kernel_size, str) or not isinstance(kernel_size, Sequence):
      raise TypeError(
          f"kernel_size must be a tuple with one size per spatial axis, such as (3, 3) (its "
          f"length sets the spatial rank), got {checks.describe(kernel_size)}")
    use_bias = checks.boolean(use_bias, "use_bias")
    in_features = checks.integer(in_features, "in_features", minimum=1)
    out_features = checks.integer(out_features, "out_features", minimum=1)
    if layout is not None:
      if not isinstance(layout, str):
        raise TypeError(
            f"layout must be a string such as 'NHWC' or None, got {checks.describe(layout)}")
      layout = parse_layout(layout, len(layout), num_spatial=(len(kernel_size),)).spec
    shape = layers.conv_transpose_kernel_shape_for(
        len(kernel_size), in_features, out_features, kernel_size, groups)
    kernel_init = kernel_init or layers.default_kernel_init()
    self.kernel = nnx.Param(kernel_init(rngs.params(), shape, param_dtype))
    self.bias = nnx.Param(bias_init(rngs.params(), (out_features,), param_dtype)) if use_bias else None
    self.stride, self.padding, self.output_padding = stride, padding, output_padding
    self.dilation, self.groups, self.layout, self.precision = dilation, groups, layout, precision

  def __call__(self, x: jax.Array, output_size: Optional[IntOrSeq] = None) -> jax.Array:
    """Applies the layer; ``output_size`` picks among the valid output sizes."""
    y = conv_transpose(
        x, self.kernel[...], stride=self.stride, padding=self.padding,
        output_padding=0 if output_size is not None else self.output_padding,
        output_size=output_size, dilation=self.dilation, groups=self.groups,
        layout=self.layout, precision=self.precision)
    if self.bias is not None:
      y = layers.add_bias(y, self.bias[...], parse_layout(self.layout, y.ndim))
    return y

  @classmethod
  def from_torch(cls, module: Any) -> "ConvTranspose":
    """The layer equal to a PyTorch ``ConvTranspose{1,2,3}d``, weights loaded.

    The layer takes PyTorch's channels-first arrays (layout ``NCW``, ``NCHW`` or ``NCDHW``);
    set ``layer.layout = None`` for channels-last ones.
    """
    config = layers.torch_conv_transpose_config(module)
    n = len(config["kernel_size"])
    layout = {1: "NCW", 2: "NCHW", 3: "NCDHW"}[n]
    layer = cls(config["in_features"], config["features"], config["kernel_size"],
                stride=config["stride"], padding=config["padding"],
                output_padding=config["output_padding"], dilation=config["dilation"],
                groups=config["groups"], use_bias=config["use_bias"], layout=layout,
                param_dtype=config["kernel"].dtype, rngs=nnx.Rngs(0))
    layer.kernel[...] = config["kernel"]
    if config["use_bias"]:
      layer.bias[...] = config["bias"]
    return layer


class UpsampleConv(nnx.Module):
  """Nearest upsampling then a stride-1 convolution, fused: :func:`jaxup.upsample_conv` plus a
  bias. PyTorch's ``nn.Upsample(scale_factor=factor)`` followed by ``nn.Conv{1,2,3}d``.

  Shapes, channels-last: ``[N, *S, in_features] -> [N, *S_out, out_features]`` with
  ``S_out = factor S + 2 padding - dilation (K - 1)``. The kernel is
  ``[*K, in_features // groups, out_features]`` (HWIO, as in ``nnx.Conv``).

  Args:
    in_features: input channels.
    out_features: output channels.
    kernel_size: one int per spatial axis (a tuple: its length sets the spatial rank).
    factor: the upsampling factor, an int or one per spatial axis.
    padding, dilation, groups, fused, lowering: as in :func:`jaxup.upsample_conv`.
    use_bias: whether to add a bias of shape ``[out_features]``.
    layout: the input layout; ``None`` is channels-last with a batch axis.
    param_dtype: the parameters' dtype.
    precision: passed to the convolution.
    kernel_init, bias_init: initialisers.
    rngs: the random streams for the initialisers.

  Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> layer = UpsampleConv(16, 4, (3, 3), 2, padding=1, rngs=nnx.Rngs(0))
    >>> layer(jnp.ones((1, 8, 8, 16))).shape
    (1, 16, 16, 4)
  """

  def __init__(
      self,
      in_features: int,
      out_features: int,
      kernel_size: Sequence[int],
      factor: IntOrSeq,
      *,
      padding: Padding = 0,
      dilation: IntOrSeq = 1,
      groups: int = 1,
      use_bias: bool = True,
      layout: Optional[str] = None,
      param_dtype: Any = jnp.float32,
      precision: lax.PrecisionLike = None,
      fused: Union[bool, str] = "auto",
      lowering: str = "auto",
      kernel_init: Optional[Callable] = None,
      bias_init: Callable = jax.nn.initializers.zeros,
      rngs: nnx.Rngs,
  ):
    if isinstance(kernel_size, int) or not isinstance(kernel_size, Sequence):
      raise TypeError(
          f"kernel_size={kernel_size!r} must be a tuple with one size per spatial axis, "
          "such as (3, 3); its length sets the spatial rank")
    if layout is not None:
      parse_layout(layout, len(layout))
    shape = layers.conv_kernel_shape_for(
        len(kernel_size), in_features, out_features, kernel_size, groups)
    kernel_init = kernel_init or layers.default_conv_kernel_init()
    self.kernel = nnx.Param(kernel_init(rngs.params(), shape, param_dtype))
    self.bias = (nnx.Param(bias_init(rngs.params(), (out_features,), param_dtype))
                 if use_bias else None)
    self.factor, self.padding, self.dilation, self.groups = factor, padding, dilation, groups
    self.layout, self.precision, self.fused, self.lowering = layout, precision, fused, lowering

  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the layer."""
    y = upsample_conv(
        x, self.kernel[...], self.factor, padding=self.padding, dilation=self.dilation,
        groups=self.groups, layout=self.layout, precision=self.precision, fused=self.fused,
        lowering=self.lowering)
    if self.bias is not None:
      y = layers.add_bias(y, self.bias[...], parse_layout(self.layout, y.ndim))
    return y

  @classmethod
  def from_torch(cls, upsample: Any, conv: Any) -> "UpsampleConv":
    """The layer equal to PyTorch's ``Upsample(scale_factor, "nearest")`` + ``Conv{1,2,3}d``.

    ``upsample`` may also be the integer factor. The layer takes PyTorch's channels-first
    arrays (layout ``NCW``, ``NCHW`` or ``NCDHW``); set ``layer.layout = None`` for
    channels-last ones.
    """
    config = layers.torch_upsample_conv_config(upsample, conv)
    n = len(config["kernel_size"])
    layer = cls(config["in_features"], config["features"], config["kernel_size"],
                config["factor"], padding=config["padding"], dilation=config["dilation"],
                groups=config["groups"], use_bias=config["use_bias"],
                layout={1: "NCW", 2: "NCHW", 3: "NCDHW"}[n],
                param_dtype=config["kernel"].dtype, rngs=nnx.Rngs(0))
    layer.kernel[...] = config["kernel"]
    if config["use_bias"]:
      layer.bias[...] = config["bias"]
    return layer
