"""Flax linen layers over jaxup's functions (needs ``pip install jaxup[flax]``).

Every layer takes the same arguments as its function, with the same defaults and meaning, so a
PyTorch model ports layer by layer: ``ConvTranspose`` follows ``torch.nn.ConvTranspose{1,2,3}d``
(groups, output padding, dilation) and ``conv_transpose_variables`` loads such a module's weights.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence, Union

import flax.linen as nn
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

__all__ = ["ConvTranspose", "UpsampleConv", "conv_transpose_variables",
           "upsample_conv_variables", *STATELESS_LAYERS]

IntOrSeq = Union[int, Sequence[int]]


class ConvTranspose(nn.Module):
  """Transposed convolution with PyTorch semantics: :func:`jaxup.conv_transpose` plus a bias.

  Shapes, channels-last: ``[N, *S, C_in] -> [N, *S_out, features]`` with
  ``S_out = (S - 1) stride - 2 padding + dilation (K - 1) + output_padding + 1``.

  The kernel parameter is ``[*K, features // groups, C_in]``: the kernel of the convolution
  being transposed, which is what :func:`jaxup.kernel_from_torch` makes of a PyTorch
  ``ConvTranspose*d.weight`` (see :func:`conv_transpose_variables`).

  Attributes:
    features: output channels.
    kernel_size: an int or one per spatial axis.
    stride, padding, output_padding, dilation, groups: as in :func:`jaxup.conv_transpose`.
    use_bias: whether to add a bias of shape ``[features]``.
    layout: the input layout; ``None`` is channels-last with a batch axis.
    dtype: the computation dtype (``None``: the promoted dtype of input and parameters).
    param_dtype: the parameters' dtype.
    precision: passed to ``lax.conv_general_dilated``.
    kernel_init, bias_init: initialisers.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> layer = ConvTranspose(features=4, kernel_size=3, stride=2, padding=1, output_padding=1)
    >>> x = jnp.ones((1, 8, 8, 16))
    >>> variables = layer.init(jax.random.key(0), x)
    >>> layer.apply(variables, x).shape
    (1, 16, 16, 4)
  """

  features: int
  kernel_size: IntOrSeq
  stride: IntOrSeq = 1
  padding: Padding = 0
  output_padding: IntOrSeq = 0
  dilation: IntOrSeq = 1
  groups: int = 1
  use_bias: bool = True
  layout: Optional[str] = None
  dtype: Optional[Any] = None
  param_dtype: Any = jnp.float32
  precision: lax.PrecisionLike = None
  kernel_init: Callable = dataclasses.field(default_factory=layers.default_kernel_init)
  bias_init: Callable = nn.initializers.zeros

  @nn.compact
  def __call__(self, x: jax.Array, output_size: Optional[IntOrSeq] = None) -> jax.Array:
    """Applies the layer; ``output_size`` picks among the valid output sizes."""
    checks.boolean(self.use_bias, "use_bias")
    shape, lay = layers.conv_transpose_kernel_shape(
        jnp.shape(x), self.layout, self.features, self.kernel_size, self.groups)
    kernel = self.param("kernel", self.kernel_init, shape, self.param_dtype)
    dtype = self.dtype or jnp.result_type(x, kernel)
    y = conv_transpose(
        jnp.asarray(x, dtype), kernel.astype(dtype), stride=self.stride, padding=self.padding,
        output_padding=0 if output_size is not None else self.output_padding,
        output_size=output_size, dilation=self.dilation, groups=self.groups,
        layout=self.layout, precision=self.precision)
    if self.use_bias:
      bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
      y = layers.add_bias(y, bias, lay)
    return y


def conv_transpose_variables(module: Any) -> tuple[ConvTranspose, dict]:
  """A :class:`ConvTranspose` and its variables, equal to a PyTorch ``ConvTranspose*d``.

  Args:
    module: a ``torch.nn.ConvTranspose1d/2d/3d``.

  Returns:
    ``(layer, variables)``: the layer has channels-first layout (``NCW``, ``NCHW``,
    ``NCDHW``), so ``layer.apply(variables, x)`` takes the same array as the PyTorch module;
    use ``layer.clone(layout=None)`` for channels-last inputs.
  """
  config = layers.torch_conv_transpose_config(module)
  n = len(config["kernel_size"])
  layer = ConvTranspose(
      features=config["features"], kernel_size=config["kernel_size"], stride=config["stride"],
      padding=config["padding"], output_padding=config["output_padding"],
      dilation=config["dilation"], groups=config["groups"], use_bias=config["use_bias"],
      layout={1: "NCW", 2: "NCHW", 3: "NCDHW"}[n], param_dtype=config["kernel"].dtype)
  params = {"kernel": config["kernel"]}
  if config["use_bias"]:
    params["bias"] = config["bias"]
  return layer, {"params": params}


class UpsampleConv(nn.Module):
  """Nearest upsampling then a stride-1 convolution, fused: :func:`jaxup.upsample_conv` plus a
  bias. PyTorch's ``nn.Upsample(scale_factor=factor)`` followed by ``nn.Conv{1,2,3}d``.

  Shapes, channels-last: ``[N, *S, C_in] -> [N, *S_out, features]`` with
  ``S_out = factor S + 2 padding - dilation (K - 1)`` (``"SAME"``: ``factor S``). The kernel
  parameter is ``[*K, C_in // groups, features]`` (HWIO, as in ``nn.Conv``).

  Attributes:
    features: output channels.
    kernel_size: an int or one per spatial axis.
    factor: the upsampling factor, an int or one per spatial axis.
    padding, dilation, groups, fused, lowering: as in :func:`jaxup.upsample_conv`
      (``padding`` is the padding of the convolution of the upsampled image).
    use_bias: whether to add a bias of shape ``[features]``.
    layout: the input layout; ``None`` is channels-last with a batch axis.
    dtype: the computation dtype (``None``: the promoted dtype of input and parameters).
    param_dtype: the parameters' dtype.
    precision: passed to the convolution.
    kernel_init, bias_init: initialisers.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> layer = UpsampleConv(features=4, kernel_size=3, factor=2, padding=1)
    >>> x = jnp.ones((1, 8, 8, 16))
    >>> variables = layer.init(jax.random.key(0), x)
    >>> layer.apply(variables, x).shape
    (1, 16, 16, 4)
  """

  features: int
  kernel_size: IntOrSeq
  factor: IntOrSeq
  padding: Padding = 0
  dilation: IntOrSeq = 1
  groups: int = 1
  use_bias: bool = True
  layout: Optional[str] = None
  dtype: Optional[Any] = None
  param_dtype: Any = jnp.float32
  precision: lax.PrecisionLike = None
  fused: Union[bool, str] = "auto"
  lowering: str = "auto"
  kernel_init: Callable = dataclasses.field(default_factory=layers.default_conv_kernel_init)
  bias_init: Callable = nn.initializers.zeros

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the layer."""
    lay = layers.parse_layout(self.layout, jnp.ndim(x))
    shape = layers.conv_kernel_shape_for(lay.num_spatial, lay.channels(jnp.shape(x)),
                                         self.features, self.kernel_size, self.groups)
    kernel = self.param("kernel", self.kernel_init, shape, self.param_dtype)
    dtype = self.dtype or jnp.result_type(x, kernel)
    y = upsample_conv(
        jnp.asarray(x, dtype), kernel.astype(dtype), self.factor, padding=self.padding,
        dilation=self.dilation, groups=self.groups, layout=self.layout,
        precision=self.precision, fused=self.fused, lowering=self.lowering)
    if self.use_bias:
      bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
      y = layers.add_bias(y, bias, lay)
    return y


def upsample_conv_variables(upsample: Any, conv: Any) -> tuple[UpsampleConv, dict]:
  """An :class:`UpsampleConv` and its variables, equal to PyTorch's ``Upsample`` + ``Conv*d``.

  Args:
    upsample: a ``torch.nn.Upsample(scale_factor=s, mode="nearest")`` with an integer ``s``,
      or the factor.
    conv: the ``torch.nn.Conv1d/2d/3d`` (stride 1) that follows it.

  Returns:
    ``(layer, variables)``: the layer has channels-first layout (``NCW``, ``NCHW``, ``NCDHW``),
    so it takes the same array as the PyTorch pair; ``layer.clone(layout=None)`` takes
    channels-last ones.
  """
  config = layers.torch_upsample_conv_config(upsample, conv)
  n = len(config["kernel_size"])
  layer = UpsampleConv(
      features=config["features"], kernel_size=config["kernel_size"], factor=config["factor"],
      padding=config["padding"], dilation=config["dilation"], groups=config["groups"],
      use_bias=config["use_bias"], layout={1: "NCW", 2: "NCHW", 3: "NCDHW"}[n],
      param_dtype=config["kernel"].dtype)
  params = {"kernel": config["kernel"]}
  if config["use_bias"]:
    params["bias"] = config["bias"]
  return layer, {"params": params}
