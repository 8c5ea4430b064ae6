"""Equinox modules over jaxup's functions (needs ``pip install jaxup[equinox]``).

The same layers as :mod:`jaxup.flax`, as ``eqx.Module``s: ``Conv``, ``ConvTranspose`` and
``UpsampleConv`` hold
their ``kernel`` (HWIO, jaxup's order, not ``eqx.nn.Conv``'s OIHW ``weight``) and ``bias``;
the stateless layers (``Resize``, ``UpsampleNearest``, ``BedOfNails``, ``PixelShuffle``,
``PixelUnshuffle``, ``MaxPool``, ``MaxUnpool``) hold only static options. Every module takes a
keyword ``key`` it ignores, so all of them chain in ``eqx.nn.Sequential``, and
``MaxPool(..., return_indices=True)`` feeds ``MaxUnpool`` there.

Layouts are jaxup's: ``layout=None`` is channels-last with a batch axis (``NHWC``). Equinox
code that works on one example at a time passes an unbatched layout such as ``"CHW"`` (as
``eqx.nn.Conv2d`` takes) or ``"HWC"`` and maps with ``jax.vmap``.

Loading PyTorch weights: ``from_torch(module, *, layout=None)`` returns the module with
PyTorch's weights (with its ``eqx.nn.State`` too for ``BatchNorm``, whose statistics Equinox
keeps apart), and ``load_state_dict(model, state_dict)`` (or ``((model, state), ...)``) fills a
whole model whose fields carry PyTorch's submodule names.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxup._src import checks
from jaxup._src import geometry
from jaxup._src import layers
from jaxup._src import porting
from jaxup._src.conv import conv_transpose
from jaxup._src.upsample_conv import upsample_conv
from jaxup._src.geometry import Padding
from jaxup._src.layers import STATELESS_LAYERS
from jaxup._src.layout import parse_layout

__all__ = ["Conv", "ConvTranspose", "UpsampleConv", "from_torch", "load_state_dict", *STATELESS_LAYERS]

IntOrSeq = Union[int, Sequence[int]]


def _kernel_size(kernel_size) -> tuple[int, ...]:
  if isinstance(kernel_size, str) or not isinstance(kernel_size, Sequence):
    raise TypeError(
        f"kernel_size must be a tuple with one size per spatial axis, such as (3, 3) (its "
        f"length sets the spatial rank), got {checks.describe(kernel_size)}")
  return tuple(kernel_size)


def _uniform(key, shape, fan_in, dtype):
  """PyTorch's (and ``eqx.nn.Conv``'s) default: uniform in ``+-1 / sqrt(fan_in)``."""
  bound = 1 / math.sqrt(fan_in)
  return jax.random.uniform(key, shape, dtype, -bound, bound)


class Conv(eqx.Module):
  """Convolution with PyTorch semantics: :func:`jaxup.conv` plus a bias and a padding mode.

  Shapes, channels-last: ``[N, *S, in_features] -> [N, *S_out, out_features]`` with
  ``S_out = 1 + (S + 2 padding - dilation (K - 1) - 1) // stride``. ``kernel`` is
  ``[*K, in_features // groups, out_features]`` and ``bias`` ``[out_features]``, initialised
  as PyTorch and ``eqx.nn.Conv`` do (uniform in ``+-1 / sqrt(fan_in)``).

  Args:
    in_features: input channels.
    out_features: output channels.
    kernel_size: one int per spatial axis (a tuple: its length sets the spatial rank).
    stride, dilation, groups: as in :func:`jaxup.conv`.
    padding: an int, one per axis, ``(lo, hi)`` pairs, ``"same"`` or ``"valid"`` (any case).
    padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``, as PyTorch.
    use_bias: whether to add a bias.
    layout: the input layout; ``None`` is channels-last with a batch axis.
    dtype: the parameters' dtype.
    key: the random key for the initialisation.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> layer = Conv(2, 4, (3, 3), padding=1, layout="CHW", key=jax.random.key(0))
    >>> jax.vmap(layer)(jnp.ones((5, 2, 8, 8))).shape
    (5, 4, 8, 8)
  """

  kernel: jax.Array
  bias: Optional[jax.Array]
  stride: IntOrSeq = eqx.field(static=True)
  padding: Padding = eqx.field(static=True)
  dilation: IntOrSeq = eqx.field(static=True)
  groups: int = eqx.field(static=True)
  padding_mode: str = eqx.field(static=True)
  layout: Optional[str] = eqx.field(static=True)

  def __init__(self, in_features: int, out_features: int, kernel_size: Sequence[int], *,
               stride: IntOrSeq = 1, padding: Padding = 0, dilation: IntOrSeq = 1,
               groups: int = 1, padding_mode: str = "zeros", use_bias: bool = True,
               layout: Optional[str] = None, dtype: Any = jnp.float32, key: jax.Array):
    kernel_size = _kernel_size(kernel_size)
    if layout is not None:
      parse_layout(layout, len(layout))
    shape = layers.conv_kernel_shape_for(len(kernel_size), in_features, out_features,
                                         kernel_size, groups)
    fan_in = int(np.prod(shape[:-1]))
    wkey, bkey = jax.random.split(key)
    self.kernel = _uniform(wkey, shape, fan_in, dtype)
    self.bias = _uniform(bkey, (out_features,), fan_in, dtype) if use_bias else None
    self.stride, self.padding, self.dilation, self.groups = stride, _hashable(padding), dilation, groups
    self.padding_mode = layers.check_padding_mode(padding_mode)
    self.layout = layout

  def __call__(self, x: jax.Array, *, key: Optional[jax.Array] = None) -> jax.Array:
    """Applies the layer; ``key`` is ignored."""
    y = layers.padded_conv(
        x, self.kernel, stride=self.stride, padding=self.padding, dilation=self.dilation,
        groups=self.groups, padding_mode=self.padding_mode, layout=self.layout, precision=None)
    if self.bias is not None:
      y = layers.add_bias(y, self.bias, parse_layout(self.layout, y.ndim))
    return y


class ConvTranspose(eqx.Module):
  """Transposed convolution with PyTorch semantics: :func:`jaxup.conv_transpose` plus a bias.

  The true transpose (the VJP) of :class:`Conv` with the same kernel. Shapes, channels-last:
  ``[N, *S, in_features] -> [N, *S_out, out_features]`` with
  ``S_out = (S - 1) stride - 2 padding + dilation (K - 1) + output_padding + 1``. ``kernel`` is
  ``[*K, out_features // groups, in_features]``, the kernel of the convolution being
  transposed (:func:`jaxup.kernel_from_torch` of a PyTorch ``ConvTranspose*d.weight``).

  Args:
    in_features, out_features, kernel_size: as :class:`Conv`.
    stride, padding, output_padding, dilation, groups: as in :func:`jaxup.conv_transpose`.
    use_bias, layout, dtype, key: as :class:`Conv`.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> layer = ConvTranspose(8, 3, (4, 4), stride=2, padding=1, key=jax.random.key(0))
    >>> layer(jnp.ones((1, 16, 16, 8))).shape
    (1, 32, 32, 3)
  """

  kernel: jax.Array
  bias: Optional[jax.Array]
  stride: IntOrSeq = eqx.field(static=True)
  padding: Padding = eqx.field(static=True)
  output_padding: IntOrSeq = eqx.field(static=True)
  dilation: IntOrSeq = eqx.field(static=True)
  groups: int = eqx.field(static=True)
  layout: Optional[str] = eqx.field(static=True)

  def __init__(self, in_features: int, out_features: int, kernel_size: Sequence[int], *,
               stride: IntOrSeq = 1, padding: Padding = 0, output_padding: IntOrSeq = 0,
               dilation: IntOrSeq = 1, groups: int = 1, use_bias: bool = True,
               layout: Optional[str] = None, dtype: Any = jnp.float32, key: jax.Array):
    kernel_size = _kernel_size(kernel_size)
    if layout is not None:
      parse_layout(layout, len(layout))
    shape = layers.conv_transpose_kernel_shape_for(len(kernel_size), in_features, out_features,
                                                   kernel_size, groups)
    fan_in = int(np.prod(shape[:-1]))
    wkey, bkey = jax.random.split(key)
    self.kernel = _uniform(wkey, shape, fan_in, dtype)
    self.bias = _uniform(bkey, (out_features,), fan_in, dtype) if use_bias else None
    self.stride, self.padding, self.output_padding = stride, _hashable(padding), output_padding
    self.dilation, self.groups, self.layout = dilation, groups, layout

  def __call__(self, x: jax.Array, output_size: Optional[IntOrSeq] = None, *,
               key: Optional[jax.Array] = None) -> jax.Array:
    """Applies the layer; ``output_size`` picks among the valid output sizes."""
    y = conv_transpose(
        x, self.kernel, stride=self.stride, padding=self.padding,
        output_padding=0 if output_size is not None else self.output_padding,
        output_size=output_size, dilation=self.dilation, groups=self.groups,
        layout=self.layout)
    if self.bias is not None:
      y = layers.add_bias(y, self.bias, parse_layout(self.layout, y.ndim))
    return y


class UpsampleConv(eqx.Module):
  """Nearest upsampling then a stride-1 convolution, fused: :func:`jaxup.upsample_conv` plus a
  bias. PyTorch's ``nn.Upsample(scale_factor=factor)`` followed by ``nn.Conv{1,2,3}d``;
  :func:`from_torch` of ``nn.Sequential(nn.Upsample(...), nn.Conv2d(...))`` builds it with
  the weights.

  Shapes, channels-last: ``[N, *S, in_features] -> [N, *S_out, out_features]`` with
  ``S_out = factor S + 2 padding - dilation (K - 1)`` (``"same"``: ``factor S``). ``kernel`` is
  ``[*K, in_features // groups, out_features]`` and ``bias`` ``[out_features]``, initialised
  as :class:`Conv`.

  Args:
    in_features, out_features, kernel_size: as :class:`Conv`.
    factor: the upsampling factor, an int or one per spatial axis.
    padding, dilation, groups, fused, lowering: as in :func:`jaxup.upsample_conv`
      (``padding`` is the padding of the convolution of the upsampled image).
    use_bias, layout, dtype, key: as :class:`Conv`.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> layer = UpsampleConv(16, 4, (3, 3), 2, padding=1, key=jax.random.key(0))
    >>> layer(jnp.ones((1, 8, 8, 16))).shape
    (1, 16, 16, 4)
  """

  kernel: jax.Array
  bias: Optional[jax.Array]
  factor: IntOrSeq = eqx.field(static=True)
  padding: Padding = eqx.field(static=True)
  dilation: IntOrSeq = eqx.field(static=True)
  groups: int = eqx.field(static=True)
  layout: Optional[str] = eqx.field(static=True)
  fused: Union[bool, str] = eqx.field(static=True)
  lowering: str = eqx.field(static=True)

  def __init__(self, in_features: int, out_features: int, kernel_size: Sequence[int],
               factor: IntOrSeq, *, padding: Padding = 0, dilation: IntOrSeq = 1,
               groups: int = 1, use_bias: bool = True, layout: Optional[str] = None,
               fused: Union[bool, str] = "auto", lowering: str = "auto",
               dtype: Any = jnp.float32, key: jax.Array):
    kernel_size = _kernel_size(kernel_size)
    n = len(kernel_size)
    use_bias = checks.boolean(use_bias, "use_bias")
    in_features = checks.integer(in_features, "in_features", minimum=1)
    out_features = checks.integer(out_features, "out_features", minimum=1)
    if layout is not None:
      if not isinstance(layout, str):
        raise TypeError(f"layout must be a string such as 'NHWC' or None, got "
                        f"{checks.describe(layout)}")
      parse_layout(layout, len(layout), num_spatial=(n,))
    # Static fields hold plain ints, checked here (upsample_conv checks them again, cheaply).
    factor, dilation = checks.ints(factor, n, "factor"), checks.ints(dilation, n, "dilation")
    geometry.normalize_padding(padding, n)
    shape = layers.conv_kernel_shape_for(len(kernel_size), in_features, out_features,
                                         kernel_size, groups)
    fan_in = int(np.prod(shape[:-1]))
    wkey, bkey = jax.random.split(key)
    self.kernel = _uniform(wkey, shape, fan_in, dtype)
    self.bias = _uniform(bkey, (out_features,), fan_in, dtype) if use_bias else None
    self.factor, self.padding = factor, _hashable(padding)
    self.dilation, self.groups, self.layout = dilation, groups, layout
    self.fused, self.lowering = fused, lowering

  def __call__(self, x: jax.Array, *, key: Optional[jax.Array] = None) -> jax.Array:
    """Applies the layer; ``key`` is ignored."""
    y = upsample_conv(
        x, self.kernel, self.factor, padding=self.padding, dilation=self.dilation,
        groups=self.groups, layout=self.layout, fused=self.fused, lowering=self.lowering)
    if self.bias is not None:
      y = layers.add_bias(y, self.bias, parse_layout(self.layout, y.ndim))
    return y


def _hashable(value):
  """Nested lists as tuples, so that static fields hash."""
  if isinstance(value, (list, tuple)):
    return tuple(_hashable(v) for v in value)
  return value


class _Stateless(eqx.Module):
  """A stateless jaxup layer as an Equinox module (its options are static)."""

  layer: layers.StatelessLayer = eqx.field(static=True)
  _base = None

  def __init__(self, *args, **kwargs):
    self.layer = self._base(*args, **kwargs)

  def __call__(self, *arrays: jax.Array, key: Optional[jax.Array] = None) -> Any:
    """Applies the layer; ``key`` is ignored."""
    return self.layer(*arrays)


def _stateless(name: str) -> type:
  base = getattr(layers, name)
  doc = (f"The stateless layer :class:`jaxup.flax.{name}` as an ``eqx.Module``: the same "
         "arguments, options static, and a keyword ``key`` that is ignored.")
  return type(name, (_Stateless,), {"_base": base, "__doc__": doc, "__module__": __name__})


Resize = _stateless("Resize")
UpsampleNearest = _stateless("UpsampleNearest")
BedOfNails = _stateless("BedOfNails")
PixelShuffle = _stateless("PixelShuffle")
PixelUnshuffle = _stateless("PixelUnshuffle")
MaxPool = _stateless("MaxPool")
MaxUnpool = _stateless("MaxUnpool")


def _channels_first_only(layout: Optional[str], what: str) -> None:
  upper = layout.upper() if isinstance(layout, str) else ""
  if layout is not None and upper.find("C") != (1 if upper.startswith("N") else 0):
    raise ValueError(f"{what} with layout={layout!r}: Equinox's {what} takes one example with "
                     "its channels first, (C, ...); map it over the batch with jax.vmap")


def from_torch(module: Any, *, layout: Optional[str] = None):
  """The Equinox module equal to a PyTorch module, with PyTorch's weights inside.

  ``Conv{1,2,3}d`` gives :class:`Conv`, ``ConvTranspose{1,2,3}d`` :class:`ConvTranspose`,
  ``Sequential(Upsample(scale_factor=s, mode="nearest"), Conv{1,2,3}d)`` (``s`` an integer)
  :class:`UpsampleConv`, ``Upsample``, ``PixelShuffle``, ``PixelUnshuffle``, ``MaxPool{1,2,3}d`` and
  ``MaxUnpool{1,2,3}d`` the stateless modules, all taking ``layout``. PyTorch's norms and
  ``Linear`` give Equinox's own layers, which take one example, channels first (map them over
  the batch with ``jax.vmap``): ``BatchNorm{1,2,3}d`` gives ``(eqx.nn.BatchNorm(momentum=1 - m,
  eps=eps, inference=True), state)``, ``GroupNorm`` ``eqx.nn.GroupNorm(eps=eps)``,
  ``LayerNorm`` ``eqx.nn.LayerNorm(eps=eps)``, ``Linear`` ``eqx.nn.Linear``. Equinox's norms
  default to PyTorch's epsilon (1e-5); its ``BatchNorm`` momentum 0.99 is PyTorch's ``0.01``.

  Args:
    module: a supported ``torch.nn`` module.
    layout: for jaxup's layers, the layout they take (``None``: channels-last with a batch
      axis, ``"NCHW"`` for PyTorch's arrays, ``"CHW"`` for one example).

  Returns:
    The module; for ``BatchNorm`` the pair ``(module, state)``.

  Raises:
    TypeError: for an unsupported module.
    ValueError: for a configuration the module cannot reproduce.

  Example:
    >>> import torch
    >>> import jax.numpy as jnp
    >>> layer = from_torch(torch.nn.Conv2d(3, 8, 3, padding=1), layout="NCHW")
    >>> layer(jnp.ones((1, 3, 16, 16))).shape
    (1, 8, 16, 16)
  """
  spec = porting.describe(module)
  o, w = dict(spec.options), spec.weights
  if spec.kind in STATELESS_LAYERS:
    if layout is not None:
      o["layout"] = layout
    return globals()[spec.kind](**o)
  dtype = next(iter(w.values())).dtype if w else jnp.float32
  key = jax.random.key(0)
  if spec.kind in ("Conv", "ConvTranspose", "UpsampleConv"):
    cls = {"Conv": Conv, "ConvTranspose": ConvTranspose, "UpsampleConv": UpsampleConv}[spec.kind]
    args = [o.pop("in_features"), o.pop("features"), o.pop("kernel_size")]
    if spec.kind == "UpsampleConv":
      args.append(o.pop("factor"))
    layer = cls(*args, **o, layout=layout, dtype=dtype, key=key)
    return eqx.tree_at(lambda m: (m.kernel, m.bias), layer, (w["kernel"], w.get("bias")),
                       is_leaf=lambda v: v is None)
  if spec.kind == "Linear":
    layer = eqx.nn.Linear(o["in_features"], o["features"], use_bias=o["use_bias"],
                          dtype=dtype, key=key)
    torch_weights = {"weight": w["kernel"].T, **({"bias": w["bias"]} if "bias" in w else {})}
    return load_state_dict(layer, torch_weights)
  torch_weights = {{"scale": "weight", "bias": "bias", "mean": "running_mean",
                    "var": "running_var"}[k]: v for k, v in w.items()}
  if spec.kind == "BatchNorm":
    _channels_first_only(layout, "BatchNorm")
    if not (o["use_scale"] and o["use_bias"]):
      raise ValueError("BatchNorm(affine=False): eqx.nn.BatchNorm has a scale and a bias or "
                       "neither; load it as affine with weight 1 and bias 0")
    layer, state = eqx.nn.make_with_state(eqx.nn.BatchNorm)(
        o["num_features"], "batch", eps=o["eps"], momentum=1 - o["momentum"], inference=True,
        mode="ema", dtype=dtype)
    return load_state_dict((layer, state), torch_weights)
  if spec.kind == "GroupNorm":
    _channels_first_only(layout, "GroupNorm")
    if o["use_scale"] != o["use_bias"]:
      raise ValueError("GroupNorm: eqx.nn.GroupNorm has a scale and a bias or neither")
    layer = eqx.nn.GroupNorm(o["num_groups"], o["num_features"], eps=o["eps"],
                             channelwise_affine=o["use_scale"], dtype=dtype)
  else:
    layer = eqx.nn.LayerNorm(o["normalized_shape"], eps=o["eps"], use_weight=o["use_scale"],
                             use_bias=o["use_bias"], dtype=dtype)
  return load_state_dict(layer, torch_weights)


def _key_name(k) -> str:
  for attr in ("name", "idx", "key"):
    if hasattr(k, attr):
      return str(getattr(k, attr))
  return str(k)


def load_state_dict(model, state_dict: Mapping[str, Any], *, strict: bool = True):
  """``model`` (or ``(model, state)``) with every weight replaced by PyTorch's.

  Fields are matched by name: PyTorch's ``"up1.conv.weight"`` fills ``model.up1.conv``
  (``eqx.nn.Sequential``'s ``layers[3]`` answers to PyTorch's ``"3"``). A jaxup layer's
  ``kernel`` takes a convolution weight moved to HWIO (no flip); Equinox's own layers keep
  PyTorch's order (``eqx.nn.Conv``'s and ``eqx.nn.Linear``'s ``weight`` take the tensor as it
  is, biases are reshaped to ``(C, 1, 1)`` where Equinox keeps them so). An
  ``eqx.nn.BatchNorm``'s running statistics go to ``state``. Values keep PyTorch's dtype.

  Args:
    model: an Equinox module, or ``(module, state)`` when it holds ``eqx.nn.BatchNorm``; only
      shapes are read, so ``eqx.filter_eval_shape`` of the constructor is a template that
      initialises nothing.
    state_dict: ``torch_model.state_dict()``.
    strict: raise if an entry has no place in the model or a leaf gets no value.

  Returns:
    The same kind as ``model``, new (the input is not modified).

  Raises:
    ValueError: for a mismatch of names or shapes; the message names the keys.

  Example:
    >>> import torch, jax, jax.numpy as jnp, equinox as eqx
    >>> torch_model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(4, 2, 1))
    >>> keys = jax.random.split(jax.random.key(0))
    >>> model = eqx.nn.Sequential([Conv(3, 4, (3, 3), key=keys[0]),
    ...                            eqx.nn.Conv2d(4, 2, 1, key=keys[1])])
    >>> model = load_state_dict(model, torch_model.state_dict())
    >>> model.layers[1].weight.shape
    (2, 4, 1, 1)
  """
  with_state = isinstance(model, tuple)
  module, state = model if with_state else (model, None)
  if state is not None:  # a copy: Equinox's State may be set only once
    state = jax.tree_util.tree_unflatten(*reversed(jax.tree_util.tree_flatten(state)))
  leaves, treedef = jax.tree_util.tree_flatten_with_path(module)
  flat = {tuple(_key_name(k) for k in path): leaf for path, leaf in leaves
          if eqx.is_array(leaf) or isinstance(leaf, jax.ShapeDtypeStruct)}
  norms = {}
  for path, sub in jax.tree_util.tree_flatten_with_path(
      module, is_leaf=lambda v: isinstance(v, eqx.nn.BatchNorm))[0]:
    if isinstance(sub, eqx.nn.BatchNorm):
      name = tuple(_key_name(k) for k in path)
      norms[name] = sub
      if state is None:
        raise ValueError(f"the model holds an eqx.nn.BatchNorm at {'.'.join(name)!r}; pass "
                         "(model, state) to load its running statistics")
      mean, var = state.get(sub.ema_state_index)
      flat[name + ("mean",)] = mean
      flat[name + ("var",)] = var
  loaded = porting.load_flat(
      flat, state_dict, lambda raw: (porting.normalize_path(raw[:-1]), raw[-1]), strict=strict)
  new_leaves = []
  for path, leaf in leaves:
    raw = tuple(_key_name(k) for k in path)
    new_leaves.append(loaded[raw] if raw in loaded else leaf)
  module = jax.tree_util.tree_unflatten(treedef, new_leaves)
  if not with_state:
    return module
  for name, sub in norms.items():
    if loaded[name + ("mean",)] is flat[name + ("mean",)]:
      continue  # not in the state_dict (strict=False)
    state = state.set(sub.ema_state_index, (loaded[name + ("mean",)], loaded[name + ("var",)]))
    state = state.set(sub.ema_first_time_index, jnp.array(False))
  return module, state
