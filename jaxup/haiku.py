"""Haiku modules over jaxup's functions (needs ``pip install jaxup[haiku]``).

The same layers as :mod:`jaxup.flax`, as ``hk.Module``s for use inside ``hk.transform``.

Loading PyTorch weights: ``from_torch(module, *, layout=None) -> (transformed, params, state)``
gives what ``hk.transform_with_state`` and ``init`` would, with PyTorch's weights
(``layout=None`` is channels-last, ``NHWC``; pass ``"NCHW"`` to keep PyTorch's arrays), and
``load_state_dict((params, state), state_dict)`` fills a whole model whose modules carry
PyTorch's names.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence, Union

import haiku as hk
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


class Conv(hk.Module):
  """Convolution with PyTorch semantics: :func:`jaxup.conv` plus a bias and a padding mode.

  Shapes, channels-last: ``[N, *S, C_in] -> [N, *S_out, output_channels]`` with
  ``S_out = 1 + (S + 2 padding - dilation (K - 1) - 1) // stride``. The parameter ``w`` is
  ``[*K, C_in // groups, output_channels]`` (HWIO, as ``hk.ConvND``) and ``b`` is
  ``[output_channels]``. Unlike ``hk.Conv2D``, ``padding`` defaults to ``0`` (PyTorch's
  default; Haiku's is ``"SAME"``).

  Example:
    >>> import haiku as hk, jax, jax.numpy as jnp
    >>> f = hk.transform(lambda x: Conv(4, 3, padding=1, padding_mode="replicate")(x))
    >>> x = jnp.ones((1, 8, 8, 2))
    >>> params = f.init(jax.random.key(0), x)
    >>> f.apply(params, None, x).shape
    (1, 8, 8, 4)
  """

  def __init__(
      self,
      output_channels: int,
      kernel_size: IntOrSeq,
      *,
      stride: IntOrSeq = 1,
      padding: Padding = 0,
      dilation: IntOrSeq = 1,
      groups: int = 1,
      padding_mode: str = "zeros",
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
    self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
    self.padding_mode = layers.check_padding_mode(padding_mode)
    self.with_bias, self.layout, self.precision = with_bias, layout, precision
    self.w_init = w_init or layers.default_conv_kernel_init()
    self.b_init = b_init

  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the module."""
    shape, lay = layers.conv_kernel_shape(
        jnp.shape(x), self.layout, self.output_channels, self.kernel_size, self.groups)
    w = hk.get_parameter("w", shape, jnp.result_type(x),
                         init=lambda shape, dtype: self.w_init(hk.next_rng_key(), shape, dtype))
    y = layers.padded_conv(
        x, w, stride=self.stride, padding=self.padding, dilation=self.dilation,
        groups=self.groups, padding_mode=self.padding_mode, layout=self.layout,
        precision=self.precision)
    if self.with_bias:
      b = hk.get_parameter("b", (self.output_channels,), jnp.result_type(x), init=self.b_init)
      y = layers.add_bias(y, b, lay)
    return y


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


def _data_format(layout: Optional[str]) -> str:
  if layout is None or porting.channel_axis(layout) == -1:
    return "channels_last"
  if porting.channel_axis(layout) == 1 - len(layout):
    return "channels_first"
  raise ValueError(f"layout={layout!r}: Haiku's norms take channels first or last")


def from_torch(module: Any, *, layout: Optional[str] = None,
               name: Optional[str] = None) -> tuple[Any, dict, dict]:
  """What ``hk.transform_with_state`` and ``init`` give for a PyTorch module, with its weights.

  ``transformed.apply(params, state, x)`` returns ``(y, state)`` with ``y`` equal to
  ``module(x)`` (in eval mode) for ``x`` in ``layout``. ``Conv{1,2,3}d`` becomes :class:`Conv`,
  ``ConvTranspose{1,2,3}d`` :class:`ConvTranspose`,
  ``Sequential(Upsample(scale_factor=s, mode="nearest"), Conv{1,2,3}d)`` (``s`` an integer)
  :class:`UpsampleConv`; ``Upsample``, ``PixelShuffle``,
  ``PixelUnshuffle``, ``MaxPool{1,2,3}d`` and ``MaxUnpool{1,2,3}d`` the stateless jaxup layers;
  ``BatchNorm{1,2,3}d`` ``hk.BatchNorm(decay_rate=1 - m, eps=eps)`` called with
  ``is_training=False`` (its running statistics in ``state``), ``GroupNorm`` ``hk.GroupNorm``,
  ``LayerNorm`` ``hk.LayerNorm`` and ``Linear`` ``hk.Linear``, with PyTorch's epsilon (Haiku's
  ``GroupNorm`` and ``LayerNorm`` default to 1e-5 and 1e-5 too; ``BatchNorm`` has no default).

  Args:
    module: a supported ``torch.nn`` module.
    layout: the layout of the arrays the module will take, e.g. ``"NCHW"``; ``None`` is
      channels-last with a batch axis (``NWC``, ``NHWC``, ``NDHWC``).
    name: the Haiku module name; by default the layer's own (``"conv"``, ``"batch_norm"``...).

  Returns:
    ``(transformed, params, state)``; ``transformed`` takes no random key.

  Raises:
    TypeError: for an unsupported module.
    ValueError: for a configuration the module cannot reproduce.

  Example:
    >>> import torch
    >>> import jax.numpy as jnp
    >>> f, params, state = from_torch(torch.nn.Conv2d(3, 8, 3), layout="NCHW")
    >>> y, _ = f.apply(params, state, jnp.ones((1, 3, 16, 16)))
    >>> y.shape
    (1, 8, 14, 14)
  """
  spec = porting.describe(module)
  o, w = dict(spec.options), spec.weights
  kind = spec.kind
  if kind in STATELESS_LAYERS:
    if layout is not None:
      o["layout"] = layout
    layer = getattr(layers, kind)(**o)
    return hk.without_apply_rng(hk.transform_with_state(layer)), {}, {}
  default = {"Conv": "conv", "ConvTranspose": "conv_transpose",
             "UpsampleConv": "upsample_conv", "Linear": "linear",
             "BatchNorm": "batch_norm", "GroupNorm": "group_norm", "LayerNorm": "layer_norm"}
  name = name or default[kind]
  if kind in ("Conv", "ConvTranspose", "UpsampleConv"):
    o.pop("in_features")
    cls = {"Conv": Conv, "ConvTranspose": ConvTranspose, "UpsampleConv": UpsampleConv}[kind]
    kwargs = dict(output_channels=o.pop("features"), with_bias=o.pop("use_bias"), **o)
    make = lambda: cls(**kwargs, layout=layout, name=name)
    call = lambda x: make()(x)
    params = {name: {"w": w["kernel"], **({"b": w["bias"]} if "bias" in w else {})}}
    return hk.without_apply_rng(hk.transform_with_state(call)), params, {}
  if kind == "Linear":
    call = lambda x: hk.Linear(o["features"], with_bias=o["use_bias"], name=name)(x)
    params = {name: {"w": w["kernel"], **({"b": w["bias"]} if "bias" in w else {})}}
    return hk.without_apply_rng(hk.transform_with_state(call)), params, {}
  if kind == "BatchNorm":
    make = lambda: hk.BatchNorm(o["use_scale"], o["use_bias"], 1 - o["momentum"], eps=o["eps"],
                                data_format=_data_format(layout), name=name)
    call = lambda x, is_training=False: make()(x, is_training=is_training)
    rank = len(layout) if layout else int(type(module).__name__[-2]) + 2
    channels = o["num_features"]
  elif kind == "GroupNorm":
    call = lambda x: hk.GroupNorm(o["num_groups"], eps=o["eps"], create_scale=o["use_scale"],
                                  create_offset=o["use_bias"], data_format=_data_format(layout),
                                  name=name)(x)
    rank = len(layout) if layout else 4
    channels = o["num_features"]
  else:
    axes = tuple(range(-len(o["normalized_shape"]), 0))
    call = lambda x: hk.LayerNorm(axes, o["use_scale"], o["use_bias"], eps=o["eps"],
                                  param_axis=axes, name=name)(x)
    rank, channels = None, None
  transformed = hk.without_apply_rng(hk.transform_with_state(call))
  if rank is None:
    dummy = jnp.zeros((1, *o["normalized_shape"]))
  else:
    shape = [2] * rank
    shape[porting.channel_axis(layout) if layout else -1] = channels
    dummy = jnp.zeros(shape)
  init_args = (dummy, True) if kind == "BatchNorm" else (dummy,)
  params, state = transformed.init(None, *init_args)
  torch_names = {"scale": "weight", "bias": "bias", "mean": "running_mean",
                 "var": "running_var"}
  # The norms' weights are PyTorch's own (1-D), so the state_dict loader places them.
  return (transformed, *load_state_dict(
      (params, state), {f"{name}.{torch_names[k]}": v for k, v in w.items()}))


def load_state_dict(variables, state_dict: Mapping[str, Any], *, strict: bool = True):
  """``params`` (or ``(params, state)``) with every weight replaced by PyTorch's.

  Modules are matched by name: PyTorch's ``"up1.conv.weight"`` fills the Haiku module
  ``up1/~/conv`` (``w``), under whatever single top-level module holds them all; Haiku names
  must be identifiers, so PyTorch's ``"3"`` (a ``Sequential``'s fourth layer) is ``layers_3``. Each weight is
  converted for the leaf it fills: convolution weights to HWIO ``w`` (no flip), ``Linear``
  weights transposed, norm weights to ``scale`` and ``offset`` (reshaped to Haiku's broadcast
  shapes), running statistics to the ``average`` of ``hk.BatchNorm``'s ``mean_ema`` and
  ``var_ema`` states (their ``hidden`` and ``counter``, which only training reads, are kept);
  ``num_batches_tracked`` is ignored. Values keep PyTorch's dtype.

  Args:
    variables: ``params``, or ``(params, state)`` from ``transform_with_state(...).init``
      (initialise ``hk.BatchNorm`` with ``is_training=True``: Haiku creates its statistics
      there).
    state_dict: ``torch_model.state_dict()``.
    strict: raise if an entry has no place in the model or a leaf gets no value.

  Returns:
    The same kind as ``variables``, new (the input is not modified).

  Raises:
    ValueError: for a mismatch of names or shapes; the message names the keys.

  Example:
    >>> import torch, haiku as hk, jax, jax.numpy as jnp
    >>> torch_model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(4, 2, 1))
    >>> f = hk.transform(lambda x: Conv(2, 1, name="layers_1")(Conv(4, 3, name="layers_0")(x)))
    >>> x = jnp.ones((1, 8, 8, 3))
    >>> params = load_state_dict(f.init(jax.random.key(0), x), torch_model.state_dict())
    >>> f.apply(params, None, x).shape
    (1, 6, 6, 2)
  """
  with_state = isinstance(variables, tuple)
  params, state = variables if with_state else (variables, {})
  flat = {}
  for kind, tree in (("params", params), ("state", state)):
    for module_name, leaves in tree.items():
      for leaf_name, leaf in leaves.items():
        flat[(kind, module_name, leaf_name)] = leaf
  modules = {tuple(p for p in m.split("/") if p != "~") for _, m, _ in flat}
  roots = {m[0] for m in modules if len(m) > 1}
  torch_roots = {k.split(".")[0] for k in state_dict}
  strip = len(roots) == 1 and all(len(m) > 1 for m in modules) and not roots & torch_roots

  def locate(raw):
    kind, module_name, leaf_name = raw
    parts = [p for p in module_name.split("/") if p != "~"]
    if strip:
      parts = parts[1:]
    if kind == "state":
      if parts[-1] not in ("mean_ema", "var_ema") or leaf_name != "average":
        return None
      parts, leaf_name = parts[:-1], parts[-1]
    return porting.normalize_path(parts), leaf_name

  loaded = porting.load_flat(flat, state_dict, locate, strict=strict)
  out = {"params": {}, "state": {}}
  for (kind, module_name, leaf_name), leaf in loaded.items():
    out[kind].setdefault(module_name, {})[leaf_name] = leaf
  return (out["params"], out["state"]) if with_state else out["params"]


class UpsampleConv(hk.Module):
  """Nearest upsampling then a stride-1 convolution, fused: :func:`jaxup.upsample_conv` plus a
  bias. PyTorch's ``nn.Upsample(scale_factor=factor)`` followed by ``nn.Conv{1,2,3}d``;
  :func:`from_torch` of ``nn.Sequential(nn.Upsample(...), nn.Conv2d(...))`` builds it with
  the weights.

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
    with_bias = checks.boolean(with_bias, "with_bias")
    output_channels = checks.integer(output_channels, "output_channels", minimum=1)
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
