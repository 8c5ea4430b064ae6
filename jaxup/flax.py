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
import functools
from typing import Any, Mapping, Optional

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

nn = layers.import_framework("flax.linen", "flax", "flax")

__all__ = ["Conv", "ConvTranspose", "UpsampleConv", "from_torch", "load_state_dict", *STATELESS_LAYERS]

_HOST = layers.Host(
    names={}, eager=False, keyword_only=False, section="Attributes",
    dtypes=(layers.Option("dtype", None, "the computation dtype (``None``: the promoted dtype "
                          "of input and parameters)."),
            layers.Option("param_dtype", jnp.float32, "the parameters' dtype.")),
    inits=(layers.Option("kernel_init", None, "the kernel's initialiser (LeCun normal, Flax's "
                         "default; not PyTorch's uniform one)."),
           layers.Option("bias_init", nn.initializers.zeros, "the bias's initialiser.")),
)


class _Layer(nn.Module):
  """A jaxup layer with parameters as a linen module: parameters ``kernel`` (HWIO, as
  ``nn.Conv``) and ``bias``, made at the first call. Its description, checks and forward pass
  are the layer kind's (:data:`jaxup._src.layers.SPECS`); the attributes are checked when the
  module is built."""

  def _options(self) -> dict:
    values = {o.name: getattr(self, o.name) for o in self._spec.arguments(_HOST)}
    return self._spec.check(_HOST, values)

  def __post_init__(self):
    self._options()
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, *args, **kwargs) -> jax.Array:
    """Applies the layer (``ConvTranspose`` also takes ``output_size``)."""
    options = self._spec.own(_HOST, self._options())
    shape, _ = self._spec.input_shape(options, jnp.shape(x))
    kernel = self.param("kernel", self.kernel_init, shape, self.param_dtype)
    bias = None
    if self.use_bias:
      bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
    dtype = self.dtype or jnp.result_type(x, kernel)
    bias = None if bias is None else bias.astype(dtype)
    return self._spec.apply(options, jnp.asarray(x, dtype), kernel.astype(dtype), bias,
                            *args, **kwargs)


_CLASSES = {}  # layer kind -> this module's class, for from_torch


def _layer(spec: layers.LayerSpec, example: str) -> type:
  annotations, defaults = {}, {}
  for o in spec.arguments(_HOST):
    annotations[o.name] = Any
    if o.name == "kernel_init":
      defaults[o.name] = dataclasses.field(default_factory=spec.default_kernel_init)
    elif o.default is not layers.REQUIRED:
      defaults[o.name] = o.default
  cls = type(spec.name, (_Layer,), {
      "__annotations__": annotations, **defaults, "_spec": spec, "__module__": __name__,
      "__doc__": spec.docstring(_HOST, {"kernel": "kernel", "bias": "bias"}, example)})
  dataclass_init = cls.__init__

  @functools.wraps(dataclass_init)
  def __init__(self, *args, **kwargs):
    spec.refuse_foreign(_HOST, kwargs)
    dataclass_init(self, *args, **kwargs)

  cls.__init__ = __init__
  _CLASSES[spec.name] = cls
  return cls


Conv = _layer(layers.CONV, """\
  >>> import jax, jax.numpy as jnp
  >>> layer = Conv(features=4, kernel_size=3, padding=1, padding_mode="reflect",
  ...              layout="NCHW")
  >>> x = jnp.ones((1, 2, 8, 8))
  >>> variables = layer.init(jax.random.key(0), x)
  >>> layer.apply(variables, x).shape
  (1, 4, 8, 8)""")

ConvTranspose = _layer(layers.CONV_TRANSPOSE, """\
  >>> import jax, jax.numpy as jnp
  >>> layer = ConvTranspose(features=4, kernel_size=3, stride=2, padding=1, output_padding=1)
  >>> x = jnp.ones((1, 8, 8, 16))
  >>> variables = layer.init(jax.random.key(0), x)
  >>> layer.apply(variables, x).shape
  (1, 16, 16, 4)""")

UpsampleConv = _layer(layers.UPSAMPLE_CONV, """\
  >>> import jax, jax.numpy as jnp
  >>> layer = UpsampleConv(features=4, kernel_size=3, factor=2, padding=1)
  >>> x = jnp.ones((1, 8, 8, 16))
  >>> variables = layer.init(jax.random.key(0), x)
  >>> layer.apply(variables, x).shape
  (1, 16, 16, 4)""")


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

  ``nn.Sequential`` (also of activations, ``Identity``, ``Dropout``, ``AdaptiveAvgPool``,
  ``Flatten``) gives an ``nn.Sequential``; diffusers' ``Upsample2D`` an ``UpsampleConv``.

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
  return porting.build(module, layout=layout, layer=_jaxup_layer,
                       stateless=lambda layer: (nn.Sequential([layer]), {}),
                       native=_host_layer, sequential=_sequential)


def _sequential(children: list) -> tuple[nn.Module, dict]:
  """``nn.Sequential`` of the children, their variables under its own names ``layers_i``."""
  variables: dict = {}
  for i, (_, child) in enumerate(children):
    for collection, tree in child.items():
      variables.setdefault(collection, {})[f"layers_{i}"] = tree
  return nn.Sequential([layer for layer, _ in children]), variables


def _jaxup_layer(spec: layers.LayerSpec, options: dict, weights: dict) -> tuple[nn.Module, dict]:
  layer = _CLASSES[spec.name](**spec.keywords(_HOST, options), param_dtype=weights["kernel"].dtype)
  return layer, {"params": weights}


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
