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
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxup._src import layers
from jaxup._src import porting
from jaxup._src.layers import STATELESS_LAYERS

eqx = layers.import_framework("equinox", "equinox", "equinox")

__all__ = ["Conv", "ConvTranspose", "UpsampleConv", "from_torch", "load_state_dict", *STATELESS_LAYERS]

_HOST = layers.Host(
    names={"features": "out_features"}, eager=True, keyword_only=True,
    dtypes=(layers.Option("dtype", jnp.float32, "the parameters' dtype."),),
    trailing=(layers.Option("key", layers.REQUIRED, "the random key for the initialisation."),),
)


def _uniform(key, shape, fan_in, dtype):
  """PyTorch's (and ``eqx.nn.Conv``'s) default: uniform in ``+-1 / sqrt(fan_in)``."""
  bound = 1 / math.sqrt(fan_in)
  return jax.random.uniform(key, shape, dtype, -bound, bound)


class _Layer(eqx.Module):
  """A jaxup layer with parameters as an Equinox module: a ``kernel`` (HWIO, jaxup's order,
  not ``eqx.nn.Conv``'s OIHW ``weight``) and a ``bias`` (or ``None``), initialised as PyTorch
  and ``eqx.nn.Conv`` do (uniform in ``+-1 / sqrt(fan_in)``), its options static. Its
  description, checks and forward pass are the layer kind's
  (:data:`jaxup._src.layers.SPECS`)."""

  kernel: jax.Array
  bias: Optional[jax.Array]

  def __init__(self, *args, **kwargs):
    spec = self._spec
    o = spec.bind(_HOST, args, kwargs)
    shape = spec.kernel_shape(o, len(o["kernel_size"]), o["in_features"], _HOST.name)
    fan_in = int(np.prod(shape[:-1]))
    wkey, bkey = jax.random.split(o["key"])
    self.kernel = _uniform(wkey, shape, fan_in, o["dtype"])
    self.bias = _uniform(bkey, (o["features"],), fan_in, o["dtype"]) if o["use_bias"] else None
    for name, value in spec.own(_HOST, o).items():
      setattr(self, name, value)

  def __call__(self, x: jax.Array, *args, key: Optional[jax.Array] = None, **kwargs):
    """Applies the layer (``ConvTranspose`` also takes ``output_size``); ``key`` is ignored."""
    options = {name: getattr(self, name) for name in self._spec.own_names(_HOST)}
    return self._spec.apply(options, x, self.kernel, self.bias, *args, **kwargs)


_CLASSES = {}  # layer kind -> this module's class, for from_torch


def _layer(spec: layers.LayerSpec, example: str) -> type:
  names = spec.own_names(_HOST)
  _CLASSES[spec.name] = type(spec.name, (_Layer,), {
      "__annotations__": {name: Any for name in names},
      **{name: eqx.field(static=True) for name in names},
      "_spec": spec, "__module__": __name__, "__init__": spec.init_function(_HOST, _Layer.__init__),
      "__doc__": spec.docstring(_HOST, {"kernel": "kernel", "bias": "bias"}, example)})
  return _CLASSES[spec.name]


Conv = _layer(layers.CONV, """\
  >>> import jax, jax.numpy as jnp
  >>> layer = Conv(2, 4, (3, 3), padding=1, layout="CHW", key=jax.random.key(0))
  >>> jax.vmap(layer)(jnp.ones((5, 2, 8, 8))).shape
  (5, 4, 8, 8)""")

ConvTranspose = _layer(layers.CONV_TRANSPOSE, """\
  >>> import jax, jax.numpy as jnp
  >>> layer = ConvTranspose(8, 3, (4, 4), stride=2, padding=1, key=jax.random.key(0))
  >>> layer(jnp.ones((1, 16, 16, 8))).shape
  (1, 32, 32, 3)""")

UpsampleConv = _layer(layers.UPSAMPLE_CONV, """\
  >>> import jax, jax.numpy as jnp
  >>> layer = UpsampleConv(16, 4, (3, 3), 2, padding=1, key=jax.random.key(0))
  >>> layer(jnp.ones((1, 8, 8, 16))).shape
  (1, 16, 16, 4)""")


class _Stateless(eqx.Module):
  """A stateless jaxup layer as an Equinox module (its options are static)."""

  layer: layers.StatelessLayer = eqx.field(static=True)
  _base = None

  def __init__(self, *args, **kwargs):
    self.layer = self._base(*args, **kwargs)

  def __call__(self, *arrays: jax.Array, key: Optional[jax.Array] = None) -> Any:
    """Applies the layer; ``key`` is ignored."""
    return self.layer(*arrays)


_STATELESS = {}  # name -> this module's class, for from_torch


def _stateless(name: str) -> type:
  base = getattr(layers, name)
  doc = (f"The stateless layer :class:`jaxup.flax.{name}` as an ``eqx.Module``: the same "
         "arguments, options static, and a keyword ``key`` that is ignored.")
  _STATELESS[name] = type(name, (_Stateless,), {"_base": base, "__doc__": doc,
                                                "__module__": __name__})
  return _STATELESS[name]


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

  ``nn.Sequential`` (also of activations, ``Identity``, ``Dropout``, ``AdaptiveAvgPool``,
  ``Flatten``) gives an ``eqx.nn.Sequential``; diffusers' ``Upsample2D`` an ``UpsampleConv``.

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
  return porting.build(module, layout=layout, layer=_jaxup_layer, native=_native_layer,
                       stateless=_stateless_module, sequential=_sequential)


def _stateless_module(layer) -> eqx.Module:
  if isinstance(layer, layers.StatelessLayer):
    return _STATELESS[type(layer).__name__](*layer.args, **layer.kwargs)
  return eqx.nn.Lambda(layer)


def _sequential(children: list) -> eqx.nn.Sequential:
  if any(isinstance(child, tuple) for child in children):
    raise ValueError("a Sequential holding a BatchNorm: Equinox keeps its statistics in a "
                     "state apart; build the model in Equinox and fill it with "
                     "load_state_dict((model, state), torch_model.state_dict())")
  return eqx.nn.Sequential(children)


def _jaxup_layer(spec: layers.LayerSpec, options: dict, weights: dict) -> eqx.Module:
  layer = _CLASSES[spec.name](**spec.keywords(_HOST, options), dtype=weights["kernel"].dtype,
                              key=jax.random.key(0))
  return eqx.tree_at(lambda m: (m.kernel, m.bias), layer,
                     (weights["kernel"], weights.get("bias")), is_leaf=lambda v: v is None)


def _native_layer(spec: porting.TorchLayer, layout: Optional[str]):
  """Equinox's own layer for a PyTorch norm or Linear (see :func:`from_torch`)."""
  o, w = spec.options, spec.weights
  dtype = porting.weights_dtype(w)
  key = jax.random.key(0)
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
