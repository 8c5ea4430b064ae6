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

nnx = layers.import_framework("flax.nnx", "nnx", "flax")

__all__ = ["Conv", "ConvTranspose", "UpsampleConv", "from_torch", "load_state_dict", *STATELESS_LAYERS]

_HOST = layers.Host(
    names={"features": "out_features"}, eager=True, keyword_only=True,
    dtypes=(layers.Option("param_dtype", jnp.float32, "the parameters' dtype."),),
    inits=(layers.Option("kernel_init", None, "the kernel's initialiser; ``None`` is LeCun "
                         "normal, Flax's default (not PyTorch's uniform one)."),
           layers.Option("bias_init", jax.nn.initializers.zeros, "the bias's initialiser.")),
    trailing=(layers.Option("rngs", layers.REQUIRED, "the random streams for the "
                            "initialisers."),),
)


class _Layer(nnx.Module):
  """A jaxup layer with parameters as an nnx module, made in ``__init__`` as ``nnx.Conv``
  makes its own: the input channels and the spatial rank (the length of ``kernel_size``) are
  given up front. Its description, checks and forward pass are the layer kind's
  (:data:`jaxup._src.layers.SPECS`)."""

  _spec: layers.LayerSpec

  def __init__(self, *args, **kwargs):
    o = self._spec.bind(_HOST, args, kwargs)
    shape = self._spec.kernel_shape(o, len(o["kernel_size"]), o["in_features"], _HOST.name)
    init = o["kernel_init"] or self._spec.default_kernel_init()
    rngs, dtype = o["rngs"], o["param_dtype"]
    self.kernel = nnx.Param(init(rngs.params(), shape, dtype))
    self.bias = (nnx.Param(o["bias_init"](rngs.params(), (o["features"],), dtype))
                 if o["use_bias"] else None)
    for name, value in self._spec.own(_HOST, o).items():
      setattr(self, name, value)

  def __call__(self, x: jax.Array, *args, **kwargs) -> jax.Array:
    """Applies the layer (``ConvTranspose`` also takes ``output_size``)."""
    options = {name: getattr(self, name) for name in self._spec.own_names(_HOST)}
    bias = None if self.bias is None else self.bias[...]
    return self._spec.apply(options, x, self.kernel[...], bias, *args, **kwargs)


_CLASSES = {}  # layer kind -> this module's class, for from_torch


def _layer(spec: layers.LayerSpec, example: str) -> type:
  cls = _CLASSES[spec.name] = type(spec.name, (_Layer,), {
      "_spec": spec, "__module__": __name__, "__init__": spec.init_function(_HOST, _Layer.__init__),
      "__doc__": spec.docstring(_HOST, {"kernel": "kernel", "bias": "bias"}, example)})
  signature = spec.signature(_HOST)  # nnx's metaclass hides __init__'s from inspect
  cls.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])
  return cls


Conv = _layer(layers.CONV, """\
  >>> import jax.numpy as jnp
  >>> from flax import nnx
  >>> layer = Conv(2, 4, (3, 3), padding="same", padding_mode="circular", layout="NCHW",
  ...              rngs=nnx.Rngs(0))
  >>> layer(jnp.ones((1, 2, 8, 8))).shape
  (1, 4, 8, 8)""")

ConvTranspose = _layer(layers.CONV_TRANSPOSE, """\
  >>> import jax.numpy as jnp
  >>> from flax import nnx
  >>> layer = ConvTranspose(16, 4, (3, 3), stride=2, padding=1, output_padding=1,
  ...                       rngs=nnx.Rngs(0))
  >>> layer(jnp.ones((1, 8, 8, 16))).shape
  (1, 16, 16, 4)""")

UpsampleConv = _layer(layers.UPSAMPLE_CONV, """\
  >>> import jax.numpy as jnp
  >>> from flax import nnx
  >>> layer = UpsampleConv(16, 4, (3, 3), 2, padding=1, rngs=nnx.Rngs(0))
  >>> layer(jnp.ones((1, 8, 8, 16))).shape
  (1, 16, 16, 4)""")


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

  ``nn.Sequential`` (also of activations, ``Identity``, ``Dropout``, ``AdaptiveAvgPool``,
  ``Flatten``) gives an ``nnx.Sequential``; diffusers' ``Upsample2D`` an ``UpsampleConv``.

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
  return porting.build(module, layout=layout, layer=_jaxup_layer, stateless=lambda layer: layer,
                       native=_native_layer, sequential=lambda children: nnx.Sequential(*children))


def _jaxup_layer(spec: layers.LayerSpec, options: dict, weights: dict) -> nnx.Module:
  cls = _CLASSES[spec.name]
  return _set_weights(cls(**spec.keywords(_HOST, options), param_dtype=weights["kernel"].dtype,
                          rngs=nnx.Rngs(0)), weights)


def _set_weights(layer, weights):
  for name, value in weights.items():  # nnx's layers use jaxup's weight names
    getattr(layer, name).set_value(value)
  return layer


def _native_layer(spec: porting.TorchLayer, layout: Optional[str]) -> nnx.Module:
  """nnx's own layer for a PyTorch norm or Linear (see :func:`from_torch`)."""
  o, w = spec.options, spec.weights
  dtype = porting.weights_dtype(w)
  rngs = nnx.Rngs(0)
  if spec.kind == "Linear":
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
  return _set_weights(layer, w)


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
