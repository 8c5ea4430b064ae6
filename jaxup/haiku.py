"""Haiku modules over jaxup's functions (needs ``pip install jaxup[haiku]``).

The same layers as :mod:`jaxup.flax`, as ``hk.Module``s for use inside ``hk.transform``.

Loading PyTorch weights: ``from_torch(module, *, layout=None) -> (transformed, params, state)``
gives what ``hk.transform_with_state`` and ``init`` would, with PyTorch's weights
(``layout=None`` is channels-last, ``NHWC``; pass ``"NCHW"`` to keep PyTorch's arrays), and
``load_state_dict((params, state), state_dict)`` fills a whole model whose modules carry
PyTorch's names.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

import jax
import jax.numpy as jnp

from jaxup._src import layers
from jaxup._src import porting
from jaxup._src.layers import STATELESS_LAYERS
from jaxup._src.layers import BedOfNails as BedOfNails
from jaxup._src.layers import MaxPool as MaxPool
from jaxup._src.layers import MaxUnpool as MaxUnpool
from jaxup._src.layers import PixelShuffle as PixelShuffle
from jaxup._src.layers import PixelUnshuffle as PixelUnshuffle
from jaxup._src.layers import Resize as Resize
from jaxup._src.layers import UpsampleNearest as UpsampleNearest

hk = layers.import_framework("haiku", "haiku", "haiku")

__all__ = ["Conv", "ConvTranspose", "UpsampleConv", "from_torch", "load_state_dict", *STATELESS_LAYERS]

_HOST = layers.Host(
    names={"features": "output_channels", "use_bias": "with_bias", "kernel_init": "w_init",
           "bias_init": "b_init"},
    eager=False, keyword_only=True,
    inits=(layers.Option("kernel_init", None, "the initialiser of ``w``; ``None`` is LeCun normal "
                         "(not PyTorch's uniform one)."),
           layers.Option("bias_init", jnp.zeros, "the initialiser of ``b``.")),
    trailing=(layers.Option("name", None, "the module's name; by default the class name in "
                            "snake case (``conv``, ``conv_transpose``, ``upsample_conv``)."),),
)


class _Layer(hk.Module):
  """A jaxup layer with parameters as a Haiku module: parameters ``w`` (HWIO, as
  ``hk.ConvND``) and ``b``, made at the first call in the input's dtype. Its description,
  checks and forward pass are the layer kind's (:data:`jaxup._src.layers.SPECS`)."""

  _spec: layers.LayerSpec

  def __new__(cls, *args, **kwargs):
    # Before Haiku's own binding of the arguments (for the module's repr).
    cls._spec.refuse_foreign(_HOST, kwargs)
    return super().__new__(cls)

  def __init__(self, *args, **kwargs):
    o = self._spec.bind(_HOST, args, kwargs)
    super().__init__(name=o["name"])
    self.options = self._spec.own(_HOST, o)
    self.w_init = o["kernel_init"] or self._spec.default_kernel_init()
    self.b_init = o["bias_init"]

  def __call__(self, x: jax.Array, *args, **kwargs) -> jax.Array:
    """Applies the module (``ConvTranspose`` also takes ``output_size``)."""
    shape, _ = self._spec.input_shape(self.options, jnp.shape(x), _HOST.name)
    dtype = jnp.result_type(x)
    w = hk.get_parameter("w", shape, dtype,
                         init=lambda shape, dtype: self.w_init(hk.next_rng_key(), shape, dtype))
    b = None
    if self.options["use_bias"]:
      b = hk.get_parameter("b", (self.options["features"],), dtype, init=self.b_init)
    return self._spec.apply(self.options, x, w, b, *args, **kwargs)


_CLASSES = {}  # layer kind -> this module's class, for from_torch


def _layer(spec: layers.LayerSpec, example: str) -> type:
  _CLASSES[spec.name] = type(spec.name, (_Layer,), {
      "_spec": spec, "__module__": __name__, "__init__": spec.init_function(_HOST, _Layer.__init__),
      "__doc__": spec.docstring(_HOST, {"kernel": "w", "bias": "b"}, example)})
  return _CLASSES[spec.name]


Conv = _layer(layers.CONV, """\
  >>> import haiku as hk, jax, jax.numpy as jnp
  >>> f = hk.transform(lambda x: Conv(4, 3, padding=1, padding_mode="replicate")(x))
  >>> x = jnp.ones((1, 8, 8, 2))
  >>> params = f.init(jax.random.key(0), x)
  >>> f.apply(params, None, x).shape
  (1, 8, 8, 4)""")

ConvTranspose = _layer(layers.CONV_TRANSPOSE, """\
  >>> import haiku as hk, jax, jax.numpy as jnp
  >>> f = hk.transform(lambda x: ConvTranspose(4, 3, stride=2, padding=1, output_padding=1)(x))
  >>> x = jnp.ones((1, 8, 8, 16))
  >>> params = f.init(jax.random.key(0), x)
  >>> f.apply(params, None, x).shape
  (1, 16, 16, 4)""")

UpsampleConv = _layer(layers.UPSAMPLE_CONV, """\
  >>> import haiku as hk, jax, jax.numpy as jnp
  >>> f = hk.transform(lambda x: UpsampleConv(4, 3, 2, padding=1)(x))
  >>> x = jnp.ones((1, 8, 8, 16))
  >>> params = f.init(jax.random.key(0), x)
  >>> f.apply(params, None, x).shape
  (1, 16, 16, 4)""")


def _data_format(layout: Optional[str]) -> str:
  if layout is None or porting.channel_axis(layout) == -1:
    return "channels_last"
  if porting.channel_axis(layout) == 1 - len(layout):
    return "channels_first"
  raise ValueError(f"layout={layout!r}: Haiku's norms take channels first or last")


def from_torch(module: Any, *, layout: Optional[str] = None, name: Optional[str] = None,
               transform: bool = True) -> Any:
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

  ``nn.Sequential`` (also of activations, ``Identity``, ``Dropout``, ``AdaptiveAvgPool``,
  ``Flatten``) gives its layers in order, named ``layers_i``; diffusers' ``Upsample2D`` an ``UpsampleConv``.

  Args:
    module: a supported ``torch.nn`` module.
    layout: the layout of the arrays the module will take, e.g. ``"NCHW"``; ``None`` is
      channels-last with a batch axis (``NWC``, ``NHWC``, ``NDHWC``).
    name: the Haiku module name; by default the layer's own (``"conv"``, ``"batch_norm"``...).

    transform: ``False`` for the module form: a function to call inside a larger
      ``hk.transform`` (the modules it creates there start as PyTorch's weights: ``init``
      gives them), instead of a transformed function of its own; for modules without
      BatchNorm.

  Returns:
    ``(transformed, params, state)``; ``transformed`` takes no random key. With
    ``transform=False``, the function.

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
  port = porting.build(module, layout=layout, layer=_jaxup_layer,
                       stateless=lambda layer: lambda name: (layer, {}, {}),
                       native=lambda spec, layout: lambda name: _native_layer(
                           spec, layout, name or _DEFAULT_NAMES[spec.kind]),
                       sequential=_sequential)
  call, params, state = port(name)
  if not transform:
    return _with_weights(call, params, state)
  return hk.without_apply_rng(hk.transform_with_state(call)), params, state


def _with_weights(call: Callable, params: dict, state: dict) -> Callable:
  """``call`` for use inside a larger ``hk.transform``: what it creates starts as PyTorch's
  weights (``params``, keyed by module names relative to where it runs)."""
  if state:
    raise ValueError("from_torch(..., transform=False) of a module with BatchNorm: Haiku reads "
                     "running statistics only from an initialised state, which the module form "
                     "cannot create; use the transformed form, or build the model in Haiku and "
                     "fill it with load_state_dict((params, state), torch_model.state_dict())")

  def run(*args, **kwargs):
    scope = hk.experimental.current_name()
    prefix = "" if scope == "~" else scope + "/"

    def creator(table):
      def create(next_creator, shape, dtype, init, context):
        relative = context.module_name
        if prefix and relative.startswith(prefix):
          relative = relative[len(prefix):]
        value = table.get(relative, {}).get(context.name)
        if value is not None:
          init = lambda shape, dtype: jnp.asarray(value, dtype)
        return next_creator(shape, dtype, init)
      return create

    with hk.custom_creator(creator(params), params=True, state=False):
      return call(*args, **kwargs)

  return run


# Haiku module names of what from_torch builds, by layer kind.
_DEFAULT_NAMES = {"Conv": "conv", "ConvTranspose": "conv_transpose",
                  "UpsampleConv": "upsample_conv", "Linear": "linear",
                  "BatchNorm": "batch_norm", "GroupNorm": "group_norm", "LayerNorm": "layer_norm"}


class _Sequence(hk.Module):
  """The children of a PyTorch ``Sequential`` under one module name, named ``layers_i``."""

  def __init__(self, ports, name):
    super().__init__(name=name)
    self.ports = ports

  def __call__(self, x):
    return _run(self.ports, x)


def _run(ports, x):
  for i, port in enumerate(ports):
    x = port(f"layers_{i}")[0](x)
  return x


def _sequential(ports: list) -> Callable:
  """``port(name)``: a top-level Sequential's children are ``layers_i``; a named one's
  ``name/layers_i``."""

  def port(name):
    params, state = {}, {}
    for i, child in enumerate(ports):
      _, p, s = child(f"layers_{i}")
      prefix = f"{name}/" if name else ""
      params.update({prefix + k: v for k, v in p.items()})
      state.update({prefix + k: v for k, v in s.items()})
    if name:
      return (lambda x: _Sequence(ports, name)(x)), params, state
    return (lambda x: _run(ports, x)), params, state
  return port


def _jaxup_layer(spec: layers.LayerSpec, options: dict, weights: dict) -> Callable:
  """``port(name) -> (call, params, state)``: ``call`` makes the module (inside a transform),
  ``params`` holds PyTorch's weights under ``name``."""
  keywords = spec.keywords(_HOST, options)
  spec.bind(_HOST, (), keywords)  # checked now, though the module is made in a transform

  def port(name):
    name = name or _DEFAULT_NAMES[spec.name]
    call = lambda x, *args, **kwargs: _CLASSES[spec.name](**keywords, name=name)(
        x, *args, **kwargs)
    b = {"b": weights["bias"]} if "bias" in weights else {}
    return call, {name: {"w": weights["kernel"], **b}}, {}
  return port


def _native_layer(spec: porting.TorchLayer, layout: Optional[str], name: str):
  """Haiku's own layer for a PyTorch norm or Linear: ``(call, params, state)``."""
  o, w = spec.options, spec.weights
  kind = spec.kind
  if kind == "Linear":
    call = lambda x: hk.Linear(o["features"], with_bias=o["use_bias"], name=name)(x)
    params = {name: {"w": w["kernel"], **({"b": w["bias"]} if "bias" in w else {})}}
    return call, params, {}
  if kind == "BatchNorm":
    make = lambda: hk.BatchNorm(o["use_scale"], o["use_bias"], 1 - o["momentum"], eps=o["eps"],
                                data_format=_data_format(layout), name=name)
    call = lambda x, is_training=False: make()(x, is_training=is_training)
    rank = len(layout) if layout else o["num_spatial"] + 2
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
  return (call, *load_state_dict(
      (params, state),
      {f"{porting.normalize_path([name])}.{torch_names[k]}": v for k, v in w.items()}))


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
  state_dict = porting.as_state_dict(state_dict)
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
