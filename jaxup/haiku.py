"""Haiku modules over jaxup's functions (needs ``pip install jaxup[haiku]``).

The same layers as :mod:`jaxup.flax`, as ``hk.Module``s for use inside ``hk.transform``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import haiku as hk
import jax
import jax.numpy as jnp
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

__all__ = ["ConvTranspose", "UpsampleConv", "conv_transpose_params", "upsample_conv_params",
           *STATELESS_LAYERS]

IntOrSeq = Union[int, Sequence[int]]


class ConvTranspose(hk.Module):
  """Transposed convolution with PyTorch semantics: :func:`jaxup.conv_transpose` plus a bias.

  Shapes, channels-last: ``[N, *S, C_in] -> [N, *S_out, output_channels]`` with
  ``S_out = (S - 1) stride - 2 padding + dilation (K - 1) + output_padding + 1``. The parameter
  ``w`` is ``[*K, output_channels // groups, C_in]``, the kernel of the convolution being
  transposed, and ``b`` is ``[output_channels]``.

  Example:
    >>> import haiku as hk, jax, jax.numpy as jnp
    >>> f = hk.transform(lambda x: ConvTranspose(4, 3, stride=2, padding=1, output_padding=1)(x))
    >>> x = jnp.ones((1, 8, 8, 16))
    >>> params = f.init(jax.random.key(0), x)
    >>> f.apply(params, None, x).shape
    (1, 16, 16, 4)
  """

  def __init__(
      self,
      output_channels: int,
      kernel_size: IntOrSeq,
      *,
      stride: IntOrSeq = 1,
      padding: Padding = 0,
      output_padding: IntOrSeq = 0,
      dilation: IntOrSeq = 1,
      groups: int = 1,
      with_bias: bool = True,
      layout: Optional[str] = None,
      precision: lax.PrecisionLike = None,
      w_init: Optional[Callable] = None,
      b_init: Callable = jnp.zeros,
      name: Optional[str] = None,
  ):
    super().__init__(name=name)
    output_channels = checks.integer(output_channels, "output_channels", minimum=1)
    with_bias = checks.boolean(with_bias, "with_bias")
    self.output_channels, self.kernel_size = output_channels, kernel_size
    self.stride, self.padding, self.output_padding = stride, padding, output_padding
    self.dilation, self.groups, self.with_bias = dilation, groups, with_bias
    self.layout, self.precision = layout, precision
    self.w_init = w_init or layers.default_kernel_init()
    self.b_init = b_init

  def __call__(self, x: jax.Array, output_size: Optional[IntOrSeq] = None) -> jax.Array:
    """Applies the module; ``output_size`` picks among the valid output sizes."""
    shape, lay = layers.conv_transpose_kernel_shape(
        jnp.shape(x), self.layout, self.output_channels, self.kernel_size, self.groups)
    w = hk.get_parameter("w", shape, jnp.result_type(x),
                         init=lambda shape, dtype: self.w_init(hk.next_rng_key(), shape, dtype))
    y = conv_transpose(
        x, w, stride=self.stride, padding=self.padding,
        output_padding=0 if output_size is not None else self.output_padding,
        output_size=output_size, dilation=self.dilation, groups=self.groups,
        layout=self.layout, precision=self.precision)
    if self.with_bias:
      b = hk.get_parameter("b", (self.output_channels,), jnp.result_type(x), init=self.b_init)
      y = layers.add_bias(y, b, lay)
    return y


def conv_transpose_params(module: Any, name: str = "conv_transpose") -> tuple[dict, dict]:
  """Haiku parameters and :class:`ConvTranspose` arguments equal to a PyTorch module.

  Args:
    module: a ``torch.nn.ConvTranspose1d/2d/3d``.
    name: the Haiku module name the parameters are stored under.

  Returns:
    ``(kwargs, params)``: ``ConvTranspose(**kwargs, name=name)`` inside ``hk.transform``, applied
    with ``params``, equals the PyTorch module on channels-first arrays (``kwargs["layout"]``
    is ``NCW``, ``NCHW`` or ``NCDHW``; replace it for channels-last).
  """
  config = layers.torch_conv_transpose_config(module)
  n = len(config["kernel_size"])
  kwargs = dict(
      output_channels=config["features"], kernel_size=config["kernel_size"],
      stride=config["stride"], padding=config["padding"],
      output_padding=config["output_padding"], dilation=config["dilation"],
      groups=config["groups"], with_bias=config["use_bias"],
      layout={1: "NCW", 2: "NCHW", 3: "NCDHW"}[n])
  params = {"w": config["kernel"]}
  if config["use_bias"]:
    params["b"] = config["bias"]
  return kwargs, {name: params}


class UpsampleConv(hk.Module):
  """Nearest upsampling then a stride-1 convolution, fused: :func:`jaxup.upsample_conv` plus a
  bias. PyTorch's ``nn.Upsample(scale_factor=factor)`` followed by ``nn.Conv{1,2,3}d``.

  Shapes, channels-last: ``[N, *S, C_in] -> [N, *S_out, output_channels]`` with
  ``S_out = factor S + 2 padding - dilation (K - 1)``. The parameter ``w`` is
  ``[*K, C_in // groups, output_channels]`` (HWIO, as in ``hk.Conv2D``) and ``b`` is
  ``[output_channels]``.

  Example:
    >>> import haiku as hk, jax, jax.numpy as jnp
    >>> f = hk.transform(lambda x: UpsampleConv(4, 3, 2, padding=1)(x))
    >>> x = jnp.ones((1, 8, 8, 16))
    >>> params = f.init(jax.random.key(0), x)
    >>> f.apply(params, None, x).shape
    (1, 16, 16, 4)
  """

  def __init__(
      self,
      output_channels: int,
      kernel_size: IntOrSeq,
      factor: IntOrSeq,
      *,
      padding: Padding = 0,
      dilation: IntOrSeq = 1,
      groups: int = 1,
      with_bias: bool = True,
      layout: Optional[str] = None,
      precision: lax.PrecisionLike = None,
      fused: Union[bool, str] = "auto",
      lowering: str = "auto",
      w_init: Optional[Callable] = None,
      b_init: Callable = jnp.zeros,
      name: Optional[str] = None,
  ):
    super().__init__(name=name)
    self.output_channels, self.kernel_size, self.factor = output_channels, kernel_size, factor
    self.padding, self.dilation, self.groups, self.with_bias = padding, dilation, groups, with_bias
    self.layout, self.precision, self.fused, self.lowering = layout, precision, fused, lowering
    self.w_init = w_init or layers.default_conv_kernel_init()
    self.b_init = b_init

  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the module."""
    lay = layers.parse_layout(self.layout, jnp.ndim(x))
    shape = layers.conv_kernel_shape_for(lay.num_spatial, lay.channels(jnp.shape(x)),
                                         self.output_channels, self.kernel_size, self.groups)
    w = hk.get_parameter("w", shape, jnp.result_type(x),
                         init=lambda shape, dtype: self.w_init(hk.next_rng_key(), shape, dtype))
    y = upsample_conv(
        x, w, self.factor, padding=self.padding, dilation=self.dilation, groups=self.groups,
        layout=self.layout, precision=self.precision, fused=self.fused, lowering=self.lowering)
    if self.with_bias:
      b = hk.get_parameter("b", (self.output_channels,), jnp.result_type(x), init=self.b_init)
      y = layers.add_bias(y, b, lay)
    return y


def upsample_conv_params(upsample: Any, conv: Any,
                         name: str = "upsample_conv") -> tuple[dict, dict]:
  """Haiku parameters and :class:`UpsampleConv` arguments equal to PyTorch's ``Upsample`` +
  ``Conv*d``.

  Args:
    upsample: a ``torch.nn.Upsample(scale_factor=s, mode="nearest")`` with an integer ``s``,
      or the factor.
    conv: the ``torch.nn.Conv1d/2d/3d`` (stride 1) that follows it.
    name: the Haiku module name the parameters are stored under.

  Returns:
    ``(kwargs, params)``: ``UpsampleConv(**kwargs, name=name)`` inside ``hk.transform``, applied
    with ``params``, equals the PyTorch pair on channels-first arrays (``kwargs["layout"]`` is
    ``NCW``, ``NCHW`` or ``NCDHW``; replace it for channels-last).
  """
  config = layers.torch_upsample_conv_config(upsample, conv)
  n = len(config["kernel_size"])
  kwargs = dict(
      output_channels=config["features"], kernel_size=config["kernel_size"],
      factor=config["factor"], padding=config["padding"], dilation=config["dilation"],
      groups=config["groups"], with_bias=config["use_bias"],
      layout={1: "NCW", 2: "NCHW", 3: "NCDHW"}[n])
  params = {"w": config["kernel"]}
  if config["use_bias"]:
    params["b"] = config["bias"]
  return kwargs, {name: params}
