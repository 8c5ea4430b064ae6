"""Flax nnx layers over jaxup's functions (needs ``pip install jaxup[flax]``).

The same layers as :mod:`jaxup.flax`, in nnx's eager style: parameters are created in
``__init__``, so the number of input channels and the spatial rank (from ``kernel_size``) are
given up front, as in ``nnx.Conv``.

Loading PyTorch weights: ``from_torch(module, *, layout=None) -> layer`` builds the layer that
equals a PyTorch module, its weights inside (``layout=None`` is channels-last, ``NHWC``; pass
``"NCHW"`` to keep PyTorch's arrays), and ``load_state_dict(model, state_dict)`` fills a whole
model whose submodules carry PyTorch's names.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence, Union

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from jaxup._src import checks
from jaxup._src import layers
from jaxup._src import porting
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

__all__ = ["Conv", "ConvTranspose", "UpsampleConv", "from_torch", "load_state_dict", *STATELESS_LAYERS]

IntOrSeq = Union[int, Sequence[int]]


def _check_kernel_size(kernel_size) -> int:
  """The spatial rank a ``kernel_size`` tuple sets."""
  if isinstance(kernel_size, str) or not isinstance(kernel_size, Sequence):
    raise TypeError(
        f"kernel_size must be a tuple with one size per spatial axis, such as (3, 3) (its "
        f"length sets the spatial rank), got {checks.describe(kernel_size)}")
  return len(kernel_size)


def _check_layout(layout, num_spatial: int) -> Optional[str]:
  if layout is None:
    return None
  if not isinstance(layout, str):
    raise TypeError(
        f"layout must be a string such as 'NHWC' or None, got {checks.describe(layout)}")
  return parse_layout(layout, len(layout), num_spatial=(num_spatial,)).spec


class Conv(nnx.Module):
  """Convolution with PyTorch semantics: :func:`jaxup.conv` plus a bias and a padding mode.

  Shapes, channels-last: ``[N, *S, in_features] -> [N, *S_out, out_features]`` with
  ``S_out = 1 + (S + 2 padding - dilation (K - 1) - 1) // stride``. The kernel is
  ``[*K, in_features // groups, out_features]`` (HWIO, as ``nnx.Conv``). Unlike ``nnx.Conv``,
  ``padding`` defaults to ``0`` (PyTorch's default; Flax's is ``"SAME"``).

  Args:
    in_features: input channels.
    out_features: output channels.
    kernel_size: one int per spatial axis (a tuple: its length sets the spatial rank).
    stride, dilation, groups: as in :func:`jaxup.conv`.
    padding: an int, one per axis, ``(lo, hi)`` pairs, ``"same"`` or ``"valid"`` (any case).
    padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``, as PyTorch.
    use_bias: whether to add a bias of shape ``[out_features]``.
    layout: the input layout; ``None`` is channels-last with a batch axis.
    param_dtype: the parameters' dtype.
    precision: passed to ``lax.conv_general_dilated``.
    kernel_init, bias_init: initialisers (Flax's defaults, not PyTorch's).
    rngs: the random streams for the initialisers.

  Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> layer = Conv(2, 4, (3, 3), padding="same", padding_mode="circular", layout="NCHW",
    ...              rngs=nnx.Rngs(0))
    >>> layer(jnp.ones((1, 2, 8, 8))).shape
    (1, 4, 8, 8)
  """

  def __init__(
      self,
      in_features: int,
      out_features: int,
      kernel_size: Sequence[int],
      *,
      stride: IntOrSeq = 1,
      padding: Padding = 0,
      dilation: IntOrSeq = 1,
      groups: int = 1,
      padding_mode: str = "zeros",
      use_bias: bool = True,
      layout: Optional[str] = None,
      param_dtype: Any = jnp.float32,
      precision: lax.PrecisionLike = None,
      kernel_init: Optional[Callable] = None,
      bias_init: Callable = jax.nn.initializers.zeros,
      rngs: nnx.Rngs,
  ):
    n = _check_kernel_size(kernel_size)
    use_bias = checks.boolean(use_bias, "use_bias")
    layout = _check_layout(layout, n)
    shape = layers.conv_kernel_shape_for(n, in_features, out_features, kernel_size, groups)
    kernel_init = kernel_init or layers.default_conv_kernel_init()
    self.kernel = nnx.Param(kernel_init(rngs.params(), shape, param_dtype))
    self.bias = nnx.Param(bias_init(rngs.params(), (out_features,), param_dtype)) if use_bias else None
    self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
    self.padding_mode = layers.check_padding_mode(padding_mode)
    self.layout, self.precision = layout, precision

  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the layer."""
    y = layers.padded_conv(
        x, self.kernel[...], stride=self.stride, padding=self.padding, dilation=self.dilation,
        groups=self.groups, padding_mode=self.padding_mode, layout=self.layout,
        precision=self.precision)
    if self.bias is not None:
      y = layers.add_bias(y, self.bias[...], parse_layout(self.layout, y.ndim))
    return y


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
    n = _check_kernel_size(kernel_size)
    use_bias = checks.boolean(use_bias, "use_bias")
    in_features = checks.integer(in_features, "in_features", minimum=1)
    out_features = checks.integer(out_features, "out_features", minimum=1)
    layout = _check_layout(layout, n)
    shape = layers.conv_transpose_kernel_shape_for(
        n, in_features, out_features, kernel_size, groups)
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


def from_torch(module: Any, *, layout: Optional[str] = None) -> nnx.Module:
  """The nnx layer equal to a PyTorch module, with PyTorch's weights inside.

  ``layer(x)`` equals ``module(x)`` (in eval mode) for ``x`` in ``layout``. ``Conv{1,2,3}d``
  gives :class:`Conv`, ``ConvTranspose{1,2,3}d`` :class:`ConvTranspose`,
  ``Sequential(Upsample(scale_factor=s, mode="nearest"), Conv{1,2,3}d)`` (``s`` an integer)
  :class:`UpsampleConv`; ``Upsample``,
  ``PixelShuffle``, ``PixelUnshuffle``, ``MaxPool{1,2,3}d`` and ``MaxUnpool{1,2,3}d`` the
  stateless jaxup layers; ``BatchNorm{1,2,3}d`` gives
  ``nnx.BatchNorm(use_running_average=True, momentum=1 - m, epsilon=eps, axis=C)``,
  ``GroupNorm`` ``nnx.GroupNorm(epsilon=eps)`` (channels-last layouts only), ``LayerNorm``
  ``nnx.LayerNorm(epsilon=eps)`` (one normalised axis) and ``Linear`` ``nnx.Linear``. The
  layers carry PyTorch's epsilon and momentum, not nnx's defaults (1e-6 for the group and layer
  norms, momentum 0.99 where PyTorch's 0.1 means 0.9).

  Args:
    module: a supported ``torch.nn`` module.
    layout: the layout the layer will take, e.g. ``"NCHW"`` for PyTorch's arrays; ``None`` is
      channels-last with a batch axis (``NWC``, ``NHWC``, ``NDHWC``).

  Returns:
    The layer, its weights loaded.

  Raises:
    TypeError: for an unsupported module.
    ValueError: for a configuration the layer cannot reproduce.

  Example:
    >>> import torch
    >>> import jax.numpy as jnp
    >>> layer = from_torch(torch.nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1))
    >>> layer(jnp.ones((1, 16, 16, 8))).shape
    (1, 32, 32, 3)
  """
  spec = porting.describe(module)
  o, w = dict(spec.options), spec.weights
  if spec.kind in STATELESS_LAYERS:
    if layout is not None:
      o["layout"] = layout
    return getattr(layers, spec.kind)(**o)
  dtype = next(iter(w.values())).dtype if w else jnp.float32
  rngs = nnx.Rngs(0)
  if spec.kind in ("Conv", "ConvTranspose", "UpsampleConv"):
    cls = {"Conv": Conv, "ConvTranspose": ConvTranspose, "UpsampleConv": UpsampleConv}[spec.kind]
    args = [o.pop("in_features"), o.pop("features"), o.pop("kernel_size")]
    if spec.kind == "UpsampleConv":
      args.append(o.pop("factor"))
    layer = cls(*args, **o, layout=layout, param_dtype=dtype, rngs=rngs)
  elif spec.kind == "Linear":
    layer = nnx.Linear(o["in_features"], o["features"], use_bias=o["use_bias"],
                       param_dtype=dtype, rngs=rngs)
  elif spec.kind == "BatchNorm":
    axis = -1 if layout is None else porting.channel_axis(layout)
    layer = nnx.BatchNorm(o["num_features"], use_running_average=True, axis=axis,
                          momentum=1 - o["momentum"], epsilon=o["eps"], use_bias=o["use_bias"],
                          use_scale=o["use_scale"], param_dtype=dtype, rngs=rngs)
  elif spec.kind == "GroupNorm":
    porting.require_channels_last(layout, "GroupNorm", "nnx.GroupNorm")
    layer = nnx.GroupNorm(o["num_features"], num_groups=o["num_groups"], epsilon=o["eps"],
                          use_bias=o["use_bias"], use_scale=o["use_scale"], param_dtype=dtype,
                          rngs=rngs)
  else:
    if len(o["normalized_shape"]) != 1:
      raise ValueError(f"LayerNorm(normalized_shape={o['normalized_shape']}): nnx.LayerNorm "
                       "has one feature axis; normalise one trailing axis")
    layer = nnx.LayerNorm(o["normalized_shape"][0], epsilon=o["eps"], use_bias=o["use_bias"],
                          use_scale=o["use_scale"], param_dtype=dtype, rngs=rngs)
  for name, value in w.items():  # nnx's layers use jaxup's weight names
    getattr(layer, name).set_value(value)
  return layer


def load_state_dict(model: nnx.Module, state_dict: Mapping[str, Any], *,
                    strict: bool = True) -> nnx.Module:
  """Fills ``model``'s parameters and batch statistics from a PyTorch ``state_dict``, in place.

  Submodules are matched by name: PyTorch's ``"up1.conv.weight"`` fills ``model.up1.conv``
  (``nnx.Sequential``'s ``layers[3]`` answers to PyTorch's ``"3"``). Each weight is converted
  for the leaf it fills (convolution weights to HWIO kernels with no flip, ``Linear`` weights
  transposed, norm weights to ``scale``, running statistics to ``mean`` and ``var``);
  ``num_batches_tracked`` is ignored; values keep PyTorch's dtype.

  Args:
    model: an nnx module.
    state_dict: ``torch_model.state_dict()``.
    strict: raise if an entry has no place in the model or a leaf gets no value.

  Returns:
    ``model`` itself, loaded.

  Raises:
    ValueError: for a mismatch of names or shapes; the message names the keys.

  Example:
    >>> import torch, jax.numpy as jnp
    >>> from flax import nnx
    >>> torch_model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(4, 2, 1))
    >>> model = nnx.Sequential(Conv(3, 4, (3, 3), rngs=nnx.Rngs(0)),
    ...                        Conv(4, 2, (1, 1), rngs=nnx.Rngs(0)))
    >>> model = load_state_dict(model, torch_model.state_dict())
    >>> model(jnp.ones((1, 8, 8, 3))).shape
    (1, 6, 6, 2)
  """
  state = nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))
  flat = porting.flatten_tree(nnx.to_pure_dict(state))
  loaded = porting.load_flat(
      flat, state_dict, lambda raw: (porting.normalize_path(raw[:-1]), str(raw[-1])),
      strict=strict)
  nnx.replace_by_pure_dict(state, porting.unflatten(loaded))
  nnx.update(model, state)
  return model


class UpsampleConv(nnx.Module):
  """Nearest upsampling then a stride-1 convolution, fused: :func:`jaxup.upsample_conv` plus a
  bias. PyTorch's ``nn.Upsample(scale_factor=factor)`` followed by ``nn.Conv{1,2,3}d``;
  :func:`from_torch` of ``nn.Sequential(nn.Upsample(...), nn.Conv2d(...))`` builds it with
  the weights.

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
    n = _check_kernel_size(kernel_size)
    use_bias = checks.boolean(use_bias, "use_bias")
    in_features = checks.integer(in_features, "in_features", minimum=1)
    out_features = checks.integer(out_features, "out_features", minimum=1)
    layout = _check_layout(layout, n)
    shape = layers.conv_kernel_shape_for(n, in_features, out_features, kernel_size, groups)
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
