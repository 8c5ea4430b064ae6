"""Flax linen layers over jaxup's functions (needs ``pip install jaxup[flax]``).

Every layer takes the same arguments as its function, with the same defaults and meaning, so a
PyTorch model ports layer by layer: ``Conv`` follows ``torch.nn.Conv{1,2,3}d`` (padding modes,
groups, dilation), ``ConvTranspose`` follows ``torch.nn.ConvTranspose{1,2,3}d``.

Loading PyTorch weights:

* ``from_torch(module, *, layout=None) -> (layer, variables)`` builds the layer that equals a
  PyTorch module, ``layer.apply(variables, x)``: what ``layer.init`` would return, with
  PyTorch's weights. ``layout=None`` is Flax's channels-last (``NHWC``); pass ``"NCHW"`` to
  keep PyTorch's arrays.
* ``load_state_dict(variables, state_dict)`` fills a whole model's variables from a PyTorch
  ``state_dict`` whose keys name the same submodules.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
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

__all__ = ["Conv", "ConvTranspose", "UpsampleConv", "from_torch", "load_state_dict", *STATELESS_LAYERS]

IntOrSeq = Union[int, Sequence[int]]


class Conv(nn.Module):
  """Convolution with PyTorch semantics: :func:`jaxup.conv` plus a bias and a padding mode.

  Shapes, channels-last: ``[N, *S, C_in] -> [N, *S_out, features]`` with
  ``S_out = 1 + (S + 2 padding - dilation (K - 1) - 1) // stride``; 1, 2 or 3 spatial axes by
  the input's rank (``layout`` says where the channels are).

  The kernel parameter is ``[*K, C_in // groups, features]`` (HWIO, as ``nn.Conv``), which is
  what :func:`jaxup.kernel_from_torch` makes of a PyTorch ``Conv*d.weight``. Unlike ``nn.Conv``,
  ``padding`` defaults to ``0`` (PyTorch's ``padding=0``; Flax defaults to ``"SAME"``) and takes
  PyTorch's forms.

  Attributes:
    features: output channels.
    kernel_size: an int or one per spatial axis.
    stride, dilation, groups: as in :func:`jaxup.conv`.
    padding: an int, one per axis, ``(lo, hi)`` pairs, ``"same"`` or ``"valid"`` (any case).
    padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``, as PyTorch.
    use_bias: whether to add a bias of shape ``[features]``.
    layout: the input layout; ``None`` is channels-last with a batch axis.
    dtype: the computation dtype (``None``: the promoted dtype of input and parameters).
    param_dtype: the parameters' dtype.
    precision: passed to ``lax.conv_general_dilated``.
    kernel_init, bias_init: initialisers (Flax's defaults, not PyTorch's uniform ones).

  Example:
    >>> import jax, jax.numpy as jnp
    >>> layer = Conv(features=4, kernel_size=3, padding=1, padding_mode="reflect",
    ...              layout="NCHW")
    >>> x = jnp.ones((1, 2, 8, 8))
    >>> variables = layer.init(jax.random.key(0), x)
    >>> layer.apply(variables, x).shape
    (1, 4, 8, 8)
  """

  features: int
  kernel_size: IntOrSeq
  stride: IntOrSeq = 1
  padding: Padding = 0
  dilation: IntOrSeq = 1
  groups: int = 1
  padding_mode: str = "zeros"
  use_bias: bool = True
  layout: Optional[str] = None
  dtype: Optional[Any] = None
  param_dtype: Any = jnp.float32
  precision: lax.PrecisionLike = None
  kernel_init: Callable = dataclasses.field(default_factory=layers.default_conv_kernel_init)
  bias_init: Callable = nn.initializers.zeros

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the layer."""
    checks.boolean(self.use_bias, "use_bias")
    shape, lay = layers.conv_kernel_shape(
        jnp.shape(x), self.layout, self.features, self.kernel_size, self.groups)
    kernel = self.param("kernel", self.kernel_init, shape, self.param_dtype)
    dtype = self.dtype or jnp.result_type(x, kernel)
    y = layers.padded_conv(
        jnp.asarray(x, dtype), kernel.astype(dtype), stride=self.stride, padding=self.padding,
        dilation=self.dilation, groups=self.groups, padding_mode=self.padding_mode,
        layout=self.layout, precision=self.precision)
    if self.use_bias:
      bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
      y = layers.add_bias(y, bias, lay)
    return y


class ConvTranspose(nn.Module):
  """Transposed convolution with PyTorch semantics: :func:`jaxup.conv_transpose` plus a bias.

  Shapes, channels-last: ``[N, *S, C_in] -> [N, *S_out, features]`` with
  ``S_out = (S - 1) stride - 2 padding + dilation (K - 1) + output_padding + 1``.

  The kernel parameter is ``[*K, features // groups, C_in]``: the kernel of the convolution
  being transposed, which is what :func:`jaxup.kernel_from_torch` makes of a PyTorch
  ``ConvTranspose*d.weight`` (see :func:`from_torch`).

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


def from_torch(module: Any, *, layout: Optional[str] = None) -> tuple[nn.Module, dict]:
  """The Flax layer equal to a PyTorch module, and its variables.

  ``layer.apply(variables, x)`` equals ``module(x)`` (in eval mode) for ``x`` in ``layout``.

  ============================================== ==============================================
  PyTorch                                        layer
  ============================================== ==============================================
  ``Conv{1,2,3}d``                               :class:`Conv`
  ``ConvTranspose{1,2,3}d``                      :class:`ConvTranspose`
  ``Sequential(Upsample, Conv{1,2,3}d)``         :class:`UpsampleConv`, fused; the upsampling
                                                 must be ``mode="nearest"`` with an integer
                                                 ``scale_factor`` (others raise)
  ``Upsample``, ``PixelShuffle``,                the stateless jaxup layer (``Resize``, ...),
  ``PixelUnshuffle``, ``MaxPool{1,2,3}d``,       in an ``nn.Sequential`` so that ``apply``
  ``MaxUnpool{1,2,3}d``                          works the same; ``variables`` is ``{}``
  ``BatchNorm{1,2,3}d``                          ``nn.BatchNorm(use_running_average=True,
                                                 momentum=1 - m, epsilon=eps, axis=C)``
  ``GroupNorm``                                  ``nn.GroupNorm(num_groups, epsilon=eps)``
                                                 (channels-last layouts only: Flax normalises
                                                 the last axis)
  ``LayerNorm``                                  ``nn.LayerNorm(epsilon=eps)`` over the same
                                                 trailing axes
  ``Linear``                                     ``nn.Dense`` (kernel ``weight.T``)
  ============================================== ==============================================

  Flax's own defaults differ from PyTorch's (``epsilon`` 1e-6 in ``GroupNorm`` and
  ``LayerNorm``, ``momentum`` 0.99 in ``BatchNorm``, which is PyTorch's ``1 - 0.1``); the layers
  built here carry PyTorch's values.

  Args:
    module: a ``torch.nn`` module of the table.
    layout: the layout of the arrays the layer will take, e.g. ``"NCHW"`` for PyTorch's own;
      ``None`` is channels-last with a batch axis (``NWC``, ``NHWC``, ``NDHWC``), Flax's
      convention. Weights do not depend on it.

  Returns:
    ``(layer, variables)``: a Flax module and its ``{"params": ..., "batch_stats": ...}``.

  Raises:
    TypeError: for a module not in the table.
    ValueError: for a configuration the layer cannot reproduce.

  Example:
    >>> import torch
    >>> import jax.numpy as jnp
    >>> conv = torch.nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect")
    >>> layer, variables = from_torch(conv)  # channels-last
    >>> layer.apply(variables, jnp.ones((1, 16, 16, 3))).shape
    (1, 16, 16, 8)
  """
  spec = porting.describe(module)
  options, weights = dict(spec.options), spec.weights
  kind = spec.kind
  if kind in ("Conv", "ConvTranspose", "UpsampleConv"):
    options.pop("in_features")
    cls = {"Conv": Conv, "ConvTranspose": ConvTranspose, "UpsampleConv": UpsampleConv}[kind]
    layer = cls(**options, layout=layout, param_dtype=weights["kernel"].dtype)
    return layer, {"params": weights}
  if kind in STATELESS_LAYERS:
    if layout is not None:
      options["layout"] = layout
    return nn.Sequential([getattr(layers, kind)(**options)]), {}
  return _host_layer(spec, layout)


def _host_layer(spec: porting.TorchLayer, layout: Optional[str]) -> tuple[nn.Module, dict]:
  """Flax's own layer for a PyTorch norm or Linear (see :func:`from_torch`)."""
  o, w = spec.options, spec.weights
  dtype = next(iter(w.values())).dtype if w else jnp.float32
  if spec.kind == "Linear":
    return nn.Dense(o["features"], use_bias=o["use_bias"], param_dtype=dtype), {"params": w}
  params = {k: w[k] for k in ("scale", "bias") if k in w}
  if spec.kind == "BatchNorm":
    axis = -1 if layout is None else porting.channel_axis(layout)
    layer = nn.BatchNorm(use_running_average=True, axis=axis, momentum=1 - o["momentum"],
                         epsilon=o["eps"], use_bias=o["use_bias"], use_scale=o["use_scale"],
                         param_dtype=dtype)
    return layer, {"params": params, "batch_stats": {"mean": w["mean"], "var": w["var"]}}
  if spec.kind == "GroupNorm":
    porting.require_channels_last(layout, "GroupNorm", "Flax's nn.GroupNorm")
    layer = nn.GroupNorm(num_groups=o["num_groups"], epsilon=o["eps"], use_bias=o["use_bias"],
                         use_scale=o["use_scale"], param_dtype=dtype)
    return layer, {"params": params}
  axes = tuple(range(-len(o["normalized_shape"]), 0))
  layer = nn.LayerNorm(epsilon=o["eps"], reduction_axes=axes, feature_axes=axes,
                       use_bias=o["use_bias"], use_scale=o["use_scale"], param_dtype=dtype)
  return layer, {"params": params}


def load_state_dict(variables: Mapping, state_dict: Mapping[str, Any], *,
                    strict: bool = True) -> dict:
  """``variables`` (from ``model.init``) with every weight replaced by PyTorch's.

  Submodules are matched by name: PyTorch's ``"up1.conv.weight"`` fills the ``up1`` submodule's
  ``conv`` layer (``params/up1/conv/kernel``), so the Flax model must name its submodules as the
  PyTorch model does (a ``nn.Sequential``'s ``layers_3`` answers to PyTorch's ``"3"``). Each
  weight is converted for the leaf it fills: convolution weights to HWIO kernels (no flip),
  ``Linear`` weights transposed, norm weights to ``scale``, running statistics to
  ``batch_stats`` ``mean`` and ``var``; ``num_batches_tracked`` is ignored. Values keep
  PyTorch's dtype. Kernels do not depend on the data layout.

  Args:
    variables: the model's variables, e.g. ``model.init(key, x)``.
    state_dict: ``torch_model.state_dict()``.
    strict: raise if an entry has no place in the model or a leaf gets no value.

  Returns:
    The new variables (the input is not modified).

  Raises:
    ValueError: for a mismatch of names or shapes; the message names the keys.

  Example:
    >>> import torch, jax, jax.numpy as jnp, flax.linen as nn
    >>> torch_model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    >>> model = nn.Sequential([Conv(4, 3), nn.BatchNorm(use_running_average=True,
    ...                                                 momentum=0.9, epsilon=1e-5)])
    >>> x = jnp.ones((1, 8, 8, 3))
    >>> variables = load_state_dict(model.init(jax.random.key(0), x), torch_model.state_dict())
    >>> model.apply(variables, x).shape
    (1, 6, 6, 4)
  """
  flat = {}
  for collection, tree in variables.items():
    for path, leaf in porting.flatten_tree(tree).items():
      flat[(collection, *path)] = leaf
  def locate(raw):
    if raw[0] not in ("params", "batch_stats"):
      return None
    return porting.normalize_path(raw[1:-1]), raw[-1]

  loaded = porting.load_flat(flat, state_dict, locate, strict=strict)
  return porting.unflatten(loaded)


class UpsampleConv(nn.Module):
  """Nearest upsampling then a stride-1 convolution, fused: :func:`jaxup.upsample_conv` plus a
  bias. PyTorch's ``nn.Upsample(scale_factor=factor)`` followed by ``nn.Conv{1,2,3}d``;
  :func:`from_torch` of ``nn.Sequential(nn.Upsample(...), nn.Conv2d(...))`` builds it with
  the weights.

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
    checks.boolean(self.use_bias, "use_bias")
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
