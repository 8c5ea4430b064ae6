"""What every framework's PyTorch loader shares: reading a ``torch.nn`` module into a plain
description (which jaxup layer, its options, its weights as JAX arrays), PyTorch's
``interpolate`` options in jaxup's spelling, and matching a ``state_dict`` to a model's weights
by name.

Nothing here imports torch: a module is recognised by its class name and read through its
attributes, so torch stays an optional dependency.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxup._src import checks
from jaxup._src import layers

# torch.nn class name -> the jaxup layer that reproduces it.
_JAXUP_LAYERS = {
    **{f"Conv{n}d": "Conv" for n in (1, 2, 3)},
    **{f"ConvTranspose{n}d": "ConvTranspose" for n in (1, 2, 3)},
    "Upsample": "Resize", "UpsamplingNearest2d": "Resize", "UpsamplingBilinear2d": "Resize",
    "PixelShuffle": "PixelShuffle", "PixelUnshuffle": "PixelUnshuffle",
    **{f"MaxPool{n}d": "MaxPool" for n in (1, 2, 3)},
    **{f"MaxUnpool{n}d": "MaxUnpool" for n in (1, 2, 3)},
}
# torch.nn class name -> the host framework's own layer.
_HOST_LAYERS = {
    **{f"BatchNorm{n}d": "BatchNorm" for n in (1, 2, 3)},
    "GroupNorm": "GroupNorm", "LayerNorm": "LayerNorm", "Linear": "Linear",
}
SUPPORTED = tuple(sorted({**_JAXUP_LAYERS, **_HOST_LAYERS}))
# Read as one fused layer: Sequential(Upsample(scale_factor=<int>, mode="nearest"), Conv{1,2,3}d).
UPSAMPLE_CONV = "Sequential(Upsample, Conv{1,2,3}d)"

# PyTorch's interpolate modes: (jaxup method, the input rank the mode requires or None).
_INTERPOLATE_MODES = {
    "nearest": ("nearest", None),
    "nearest-exact": ("nearest-exact", None),
    "linear": ("linear", 3),
    "bilinear": ("linear", 4),
    "trilinear": ("linear", 5),
    "bicubic": ("cubic", 4),
    "area": ("area", None),
}


def to_array(tensor: Any, name: str = "tensor") -> jax.Array:
  """A ``torch.Tensor`` (any device, any float dtype incl. bfloat16) or array as a JAX array.

  NumPy has no bfloat16, so a bfloat16 tensor goes through float32 (exactly) and back.
  """
  if checks.is_torch_module(tensor):
    raise TypeError(
        f"{name} must be a tensor or an array, got a {type(tensor).__name__} module; pass "
        "module.weight, or build the whole layer with from_torch(module) from jaxup.flax, "
        "jaxup.nnx, jaxup.haiku or jaxup.equinox")
  if checks.is_torch_tensor(tensor):
    return checks.from_torch(tensor, name)
  return checks.array(tensor, name, kind="any")


@dataclasses.dataclass
class TorchLayer:
  """A ``torch.nn`` module read into framework-free terms.

  Attributes:
    kind: the layer that reproduces it: a jaxup layer (``"Conv"``, ``"ConvTranspose"``,
      ``"UpsampleConv"``, ``"Resize"``, ``"PixelShuffle"``, ``"PixelUnshuffle"``,
      ``"MaxPool"``, ``"MaxUnpool"``) or
      a host framework's own (``"BatchNorm"``, ``"GroupNorm"``, ``"LayerNorm"``, ``"Linear"``).
    options: the layer's options in jaxup's spelling (for norms: ``num_features``, ``eps``,
      ``momentum`` as PyTorch gives them, ``num_groups``, ``normalized_shape``).
    weights: PyTorch's tensors as JAX arrays, under jaxup's names: ``kernel`` (already a jaxup
      kernel for convolutions, ``[in, out]`` for ``Linear``), ``bias``, ``scale``, ``mean``,
      ``var``. Absent weights are left out.
  """

  kind: str
  options: dict
  weights: dict


def describe(module: Any) -> TorchLayer:
  """Reads a supported ``torch.nn`` module (see :data:`SUPPORTED`), or a
  ``Sequential(Upsample, Conv{1,2,3}d)`` as one ``UpsampleConv``.

  Raises:
    TypeError: for anything else, listing what is supported.
    ValueError: for a configuration jaxup cannot reproduce (a BatchNorm without running
      statistics or with a cumulative average, an upsampling before a convolution that is not
      nearest by an integer factor).
  """
  name = type(module).__name__
  if name == "Sequential" and checks.is_torch_module(module) and _is_upsample_conv(module):
    return _describe_upsample_conv(*module)
  if name == "Upsample2D" and checks.is_torch_module(module):
    return _describe_upsample_2d(module)
  if not checks.is_torch_module(module) or name not in SUPPORTED:
    if checks.is_torch_tensor(module):
      raise TypeError("from_torch takes a torch.nn module, got a torch.Tensor; for a bare "
                      "weight use jaxup.kernel_from_torch(weight)")
    raise TypeError(
        f"module must be one of torch.nn.{', '.join(SUPPORTED)}, a torch.nn.Sequential of "
        f"these and of the parameter-free torch.nn.{', '.join(_parameter_free())}, "
        f"{UPSAMPLE_CONV} (one UpsampleConv) or diffusers' Upsample2D, got "
        f"{checks.describe(module)}")
  if name.startswith(("Conv", "ConvTranspose")):
    return _describe_conv(module)
  if name.startswith("Upsampl"):
    return TorchLayer("Resize", interpolate_options(
        module.size, module.scale_factor, module.mode, module.align_corners,
        getattr(module, "recompute_scale_factor", None), False, None), {})
  if name == "PixelShuffle":
    return TorchLayer("PixelShuffle", dict(factor=module.upscale_factor), {})
  if name == "PixelUnshuffle":
    return TorchLayer("PixelUnshuffle", dict(factor=module.downscale_factor), {})
  if name.startswith("MaxPool"):
    return TorchLayer("MaxPool", dict(
        window=module.kernel_size, stride=module.stride, padding=module.padding,
        dilation=module.dilation, ceil_mode=module.ceil_mode,
        return_indices=module.return_indices), {})
  if name.startswith("MaxUnpool"):
    return TorchLayer("MaxUnpool", dict(
        window=module.kernel_size, stride=module.stride, padding=module.padding), {})
  return _describe_host_layer(module, name)


def build(module: Any, *, layout: Optional[str], layer: Callable, stateless: Callable,
          native: Callable, sequential: Callable) -> Any:
  """The one reading of a ``torch.nn`` module that every framework's ``from_torch`` shares.

  The module is described (:func:`describe`), and the framework makes what the description
  names with the functions it passes:

  * ``layer(spec, options, weights)``: a jaxup layer with parameters, ``spec`` one of
    :data:`jaxup._src.layers.SPECS`, ``options`` in jaxup's names (``layout`` included);
  * ``stateless(layer)``: a stateless jaxup layer (:class:`~jaxup._src.layers.Resize`, ...);
  * ``native(description, layout)``: the framework's own norm or dense layer;
  * ``sequential(children)``: the framework's sequential form of the children built so.

  Parameter-free modules (activations, ``Identity``, ``Dropout``, ``Flatten``) come to
  ``stateless`` as a :class:`~jaxup._src.layers.Elementwise` or stateless layer.
  """
  layout = layers.check_layout(layout)
  if type(module).__name__ == "Sequential" and checks.is_torch_module(module) and not (
      _is_upsample_conv(module)):
    hooks = dict(layer=layer, stateless=stateless, native=native, sequential=sequential)
    return sequential([build(child, layout=layout, **hooks) for child in module])
  elementwise = _elementwise(module, layout)
  if elementwise is not None:
    return stateless(elementwise)
  spec = describe(module)
  if spec.kind in layers.SPECS:
    return layer(layers.SPECS[spec.kind], dict(spec.options, layout=layout), spec.weights)
  if spec.kind in layers.STATELESS_LAYERS:
    options = dict(spec.options)
    if layout is not None:
      options["layout"] = layout
    return stateless(getattr(layers, spec.kind)(**options))
  return native(spec, layout)


def _elementwise(module: Any, layout: Optional[str]) -> Any:
  """The parameter-free modules of a ``Sequential`` as jaxup layers, or ``None``."""
  name = type(module).__name__
  if not checks.is_torch_module(module):
    return None
  if name in _ACTIVATIONS:
    return layers.Elementwise(name, _ACTIVATIONS[name])
  if name in ("Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout"):
    if name != "Identity" and module.training:
      raise ValueError(f"{name} in training mode drops at random; call module.eval() first "
                       "(from_torch reproduces the module in eval mode)")
    return layers.Elementwise("Identity", lambda x: x)
  if name == "LeakyReLU":
    return layers.Elementwise(name, jax.nn.leaky_relu, negative_slope=module.negative_slope)
  if name == "GELU":
    return layers.Elementwise(name, jax.nn.gelu, approximate=module.approximate == "tanh")
  if name == "Flatten":
    if (module.start_dim, module.end_dim) != (1, -1):
      raise ValueError(f"Flatten(start_dim={module.start_dim}, end_dim={module.end_dim}): "
                       "from_torch reads Flatten() (start_dim=1, end_dim=-1) only")
    return layers.Elementwise("Flatten", layers.flatten, layout=layout)
  if name in ("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"):
    n = int(name[-2])
    size = module.output_size
    size = tuple(size) if isinstance(size, (tuple, list)) else (size,) * n
    if any(s is None for s in size):
      raise ValueError(f"{name}(output_size={module.output_size!r}): a None size (keep the "
                       "input's) is not read; give every output size")
    return layers.Resize(size=size, method="area", **({} if layout is None else
                                                      {"layout": layout}))
  return None


def _parameter_free() -> list[str]:
  """The parameter-free ``torch.nn`` modules that :func:`build` reads inside a Sequential."""
  return sorted([*_ACTIVATIONS, "LeakyReLU", "GELU", "Identity", "Dropout", "Dropout1d",
                 "Dropout2d", "Dropout3d", "AlphaDropout", "Flatten", "AdaptiveAvgPool1d",
                 "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"])


_ACTIVATIONS = {"ReLU": jax.nn.relu, "SiLU": jax.nn.silu, "Tanh": jnp.tanh,
                "Sigmoid": jax.nn.sigmoid, "ReLU6": jax.nn.relu6,
                "Mish": jax.nn.mish, "Hardswish": jax.nn.hard_swish}


def weights_dtype(weights: Mapping[str, Any]):
  """The dtype of a layer's PyTorch weights (float32 for a layer without any)."""
  return next(iter(weights.values())).dtype if weights else jnp.float32


def _describe_conv(module) -> TorchLayer:
  transposed = bool(module.transposed)
  padding = module.padding
  if isinstance(padding, str):
    padding = padding.upper()
  options = dict(
      in_features=module.in_channels, features=module.out_channels,
      kernel_size=tuple(module.kernel_size), stride=tuple(module.stride), padding=padding,
      dilation=tuple(module.dilation), groups=module.groups, use_bias=module.bias is not None)
  if transposed:
    if module.padding_mode != "zeros":
      raise ValueError(f"padding_mode={module.padding_mode!r}: PyTorch's transposed "
                       "convolutions only use 'zeros'")
    options["output_padding"] = tuple(module.output_padding)
  else:
    options["padding_mode"] = module.padding_mode
  weights = {"kernel": kernel_from_torch_weight(module.weight)}
  if module.bias is not None:
    weights["bias"] = to_array(module.bias, "bias")
  return TorchLayer("ConvTranspose" if transposed else "Conv", options, weights)


def _is_upsample_conv(module) -> bool:
  """Whether ``module`` is a ``Sequential`` of an upsampling and a convolution (the pair
  :func:`_describe_upsample_conv` reads, or refuses with a reason)."""
  children = list(module)
  return (len(children) == 2
          and type(children[0]).__name__ in ("Upsample", "UpsamplingNearest2d",
                                             "UpsamplingBilinear2d")
          and type(children[1]).__name__ in ("Conv1d", "Conv2d", "Conv3d"))


def _describe_upsample_conv(upsample, conv) -> TorchLayer:
  """``Sequential(Upsample(scale_factor=s, mode="nearest"), Conv{1,2,3}d)`` as an
  ``UpsampleConv``: the convolution's weights, the upsampling's integer factor."""
  n = len(conv.kernel_size)
  what = f"{UPSAMPLE_CONV} as an UpsampleConv"
  if upsample.mode != "nearest" or upsample.scale_factor is None:
    raise ValueError(
        f"{what} needs Upsample(scale_factor=<int>, mode='nearest'), got "
        f"mode={upsample.mode!r}, size={upsample.size!r}, "
        f"scale_factor={upsample.scale_factor!r}; load the two modules one by one instead")
  scale = upsample.scale_factor
  scale = tuple(scale) if isinstance(scale, (tuple, list)) else (scale,) * n
  if len(scale) != n or any(float(s) != int(s) or int(s) < 1 for s in scale):
    raise ValueError(f"{what} needs an integer scale_factor per spatial axis, got "
                     f"scale_factor={upsample.scale_factor!r}; load the two modules one by one "
                     "instead")
  if any(s != 1 for s in conv.stride):
    raise ValueError(f"{what} needs a convolution with stride 1, got "
                     f"stride={tuple(conv.stride)}; load the two modules one by one instead")
  if conv.padding_mode != "zeros":
    raise ValueError(f"{what} needs padding_mode='zeros', got {conv.padding_mode!r}; load the "
                     "two modules one by one instead")
  spec = _describe_conv(conv)
  options = spec.options
  options.pop("stride")
  options.pop("padding_mode")
  if not isinstance(options["padding"], str):
    options["padding"] = tuple(options["padding"])
  options["factor"] = tuple(int(s) for s in scale)
  return TorchLayer("UpsampleConv", options, spec.weights)


def _describe_upsample_2d(module) -> TorchLayer:
  """diffusers' ``Upsample2D``, whose ``forward`` calls ``F.interpolate(scale_factor=2.0,
  mode="nearest")`` and then ``self.conv``: an ``UpsampleConv`` with factor 2."""
  reasons = []
  if getattr(module, "norm", None) is not None:
    reasons.append("a norm before the upsampling")
  if getattr(module, "use_conv_transpose", False):
    reasons.append("use_conv_transpose=True (load module.conv alone)")
  if not getattr(module, "interpolate", True):
    reasons.append("interpolate=False")
  if not getattr(module, "use_conv", False) or not hasattr(module, "conv"):
    reasons.append("use_conv=False (it is then nn.Upsample(scale_factor=2))")
  elif type(module.conv).__name__ != "Conv2d":
    reasons.append(f"a {type(module.conv).__name__} where a Conv2d belongs")
  if reasons:
    raise ValueError("Upsample2D is read as an UpsampleConv (nearest upsampling by 2, then its "
                     f"conv); this one has {', '.join(reasons)}: load its parts one by one")
  nearest = Upsample2DInterpolation(mode="nearest", size=None, scale_factor=2.0)
  return _describe_upsample_conv(nearest, module.conv)


@dataclasses.dataclass(frozen=True)
class Upsample2DInterpolation:
  """The ``F.interpolate`` call inside diffusers' ``Upsample2D.forward``, as ``nn.Upsample``
  would hold it."""

  mode: str
  size: Any
  scale_factor: float


def _describe_host_layer(module, name) -> TorchLayer:
  kind = _HOST_LAYERS[name]
  weights = {}
  if kind == "Linear":
    weights["kernel"] = to_array(module.weight, "weight").T
    if module.bias is not None:
      weights["bias"] = to_array(module.bias, "bias")
    return TorchLayer(kind, dict(in_features=module.in_features,
                                 features=module.out_features,
                                 use_bias=module.bias is not None), weights)
  affine = getattr(module, "affine", getattr(module, "elementwise_affine", True))
  if affine and module.weight is not None:
    weights["scale"] = to_array(module.weight, "weight")
  if affine and module.bias is not None:
    weights["bias"] = to_array(module.bias, "bias")
  options = dict(eps=float(module.eps), use_scale="scale" in weights, use_bias="bias" in weights)
  if kind == "BatchNorm":
    if not module.track_running_stats or module.running_mean is None:
      raise ValueError(f"{name}(track_running_stats=False) normalises with the statistics of "
                       "each batch, also in eval mode; the host frameworks' BatchNorm layers "
                       "need running statistics")
    if module.momentum is None:
      raise ValueError(f"{name}(momentum=None) keeps a cumulative average, which the host "
                       "frameworks' BatchNorm layers do not; give PyTorch a momentum")
    weights["mean"] = to_array(module.running_mean, "running_mean")
    weights["var"] = to_array(module.running_var, "running_var")
    options.update(num_features=module.num_features, momentum=float(module.momentum),
                   num_spatial=int(name[-2]))
  elif kind == "GroupNorm":
    options.update(num_features=module.num_channels, num_groups=module.num_groups)
  else:
    options.update(normalized_shape=tuple(module.normalized_shape))
  return TorchLayer(kind, options, weights)


def kernel_from_torch_weight(weight: Any) -> jax.Array:
  """``[C_out, C_in // g, *K]`` or ``[C_in, C_out // g, *K]`` -> ``[*K, ., .]``, no flip."""
  from jaxup._src.conv import kernel_from_torch  # pylint: disable=g-import-not-at-top

  return kernel_from_torch(weight)


def channels_first_layout(num_spatial: int) -> str:
  """PyTorch's batched layout for ``num_spatial`` spatial axes: ``NCW``, ``NCHW``, ``NCDHW``."""
  return {1: "NCW", 2: "NCHW", 3: "NCDHW"}[num_spatial]


def interpolate_options(size, scale_factor, mode, align_corners, recompute_scale_factor,
                        antialias, ndim: Optional[int]) -> dict:
  """``torch.nn.functional.interpolate``'s arguments as :func:`jaxup.resize` keywords.

  PyTorch's ``antialias=True`` is jaxup's ``antialias=True, exclude_outside=True``, and for
  ``bicubic`` also ``cubic_coeff_a=-0.5`` (PyTorch's antialiased kernel is Keys' -0.5, its
  plain bicubic -0.75).
  """
  mode = checks.choice(mode, "mode", tuple(_INTERPOLATE_MODES))
  method, rank = _INTERPOLATE_MODES[mode]
  if ndim is not None and rank is not None and ndim != rank:
    raise ValueError(f"mode={mode!r} needs a {rank}-D input as in PyTorch, got {ndim}-D; "
                     "'linear' is for 3-D, 'bilinear' and 'bicubic' 4-D, 'trilinear' 5-D")
  if (size is None) == (scale_factor is None):
    raise ValueError("give exactly one of size and scale_factor, got "
                     f"size={size!r}, scale_factor={scale_factor!r}")
  antialias = checks.boolean(antialias, "antialias")
  options = dict(method=method)
  if size is not None:
    options["size"] = size
  else:
    options["scale"] = scale_factor
  if method.startswith("nearest") or method == "area":
    if align_corners is not None:
      raise ValueError(f"align_corners applies to linear and cubic modes, not mode={mode!r} "
                       "(as in PyTorch); leave it None")
    if antialias:
      raise ValueError(f"antialias=True applies to 'bilinear' and 'bicubic', not mode={mode!r}")
  else:
    options["align_corners"] = (False if align_corners is None
                                else checks.boolean(align_corners, "align_corners"))
  if antialias:
    if mode not in ("bilinear", "bicubic"):
      raise ValueError(f"antialias=True applies to 'bilinear' and 'bicubic', not mode={mode!r} "
                       "(as in PyTorch)")
    options.update(antialias=True, exclude_outside=True)
    if method == "cubic":
      options["cubic_coeff_a"] = -0.5
  if recompute_scale_factor is not None and checks.boolean(
      recompute_scale_factor, "recompute_scale_factor"):
    if scale_factor is None:
      raise ValueError("recompute_scale_factor=True needs scale_factor, not size (as in PyTorch)")
    options["recompute_scale"] = True
  return options


# ---------------------------------------------------------------------------------------------
# state_dict loading


def split_key(key: str) -> tuple[str, str]:
  """``"decoder.conv1.weight"`` -> ``("decoder.conv1", "weight")``."""
  path, _, attr = key.rpartition(".")
  return path, attr


def normalize_path(parts) -> str:
  """A model's module path as PyTorch would spell it: parts joined by dots, a Flax
  ``Sequential``'s ``layers_3`` or nnx's ``layers.3`` read as ``3``."""
  text = ".".join(str(p) for p in parts)
  return re.sub(r"(^|\.)layers[_.](\d+)(?=\.|$)", r"\1\2", text)


def path_spellings(path: str) -> tuple[str, ...]:
  """The PyTorch paths a model path may stand for: itself, and with list indices spelled as
  PyTorch does (``blocks_0`` in linen and Haiku, ``blocks.0`` in nnx and Equinox, or Haiku's
  ``blocks/0``, are all PyTorch's ``blocks.0``)."""
  indexed = re.sub(r"(^|\.)([A-Za-z]\w*?)_(\d+)(?=\.|$)", r"\1\2.\3", path)
  return (path,) if indexed == path else (path, indexed)


def as_state_dict(state_dict: Any) -> dict:
  """A ``state_dict`` as a dict: any mapping, or an iterable of ``(key, tensor)`` pairs."""
  if isinstance(state_dict, Mapping):
    return dict(state_dict)
  if isinstance(state_dict, (str, bytes)) or not hasattr(state_dict, "__iter__"):
    raise TypeError(f"state_dict must be a mapping such as module.state_dict() or an iterable "
                    f"of (key, tensor) pairs, got {checks.describe(state_dict)}")
  out = {}
  for item in state_dict:
    if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
      raise TypeError(f"state_dict must be a mapping such as module.state_dict() or an "
                      f"iterable of (key, tensor) pairs, got an item {checks.describe(item)}")
    out[item[0]] = item[1]
  return out


# torch attribute -> the target leaf names it may fill, first that exists wins.
TORCH_ATTRS = {
    "weight": ("kernel", "w", "scale", "weight"),
    "bias": ("bias", "b", "offset"),
    "running_mean": ("mean", "mean_ema"),
    "running_var": ("var", "var_ema"),
}
IGNORED_ATTRS = ("num_batches_tracked",)
KERNEL_NAMES = ("kernel", "w")


def convert_for(leaf_name: str, value: jax.Array, target_shape, key: str) -> jax.Array:
  """A PyTorch tensor converted for the target leaf ``leaf_name`` of ``target_shape``.

  A ``kernel``/``w`` leaf takes a convolution weight (moved to ``[*K, ., .]``) or a Linear
  weight (transposed); every other leaf (norm scales and statistics, biases, Equinox's own
  PyTorch-ordered ``weight``) takes the tensor as is, reshaped where the framework keeps
  broadcast axes (Haiku's ``(1, C, 1, 1)``).
  """
  given = tuple(value.shape)
  if leaf_name in KERNEL_NAMES and value.ndim >= 3:
    value = kernel_from_torch_weight(value)
  elif leaf_name in KERNEL_NAMES and value.ndim == 2:
    value = value.T
  target_shape = tuple(target_shape)
  if value.shape != target_shape:
    # Only unit axes are added: Haiku's norms keep (1, C, 1, 1), Equinox's biases (C, 1, 1).
    # A flattened kernel has the right size too, but no single order to come back in.
    broadcast = sum(d != 1 for d in target_shape) <= 1
    if value.ndim <= 1 and broadcast and value.size == int(np.prod(target_shape)):
      value = value.reshape(target_shape)
    else:
      raise ValueError(f"state_dict[{key!r}] (shape {given}) gives {leaf_name!r} the shape "
                       f"{tuple(value.shape)}, but the model's {leaf_name!r} has shape "
                       f"{target_shape}")
  return value


def fused_path(path: str, targets: Mapping[str, Any]) -> str:
  """The model path a PyTorch module path fills: itself, or for ``"up.1"`` absent from the
  model, ``"up"`` where the model has it.

  An ``UpsampleConv`` named ``up`` holds what PyTorch spells
  ``up = Sequential(Upsample(...), Conv2d(...))``: the convolution's weights are
  ``up.1.weight`` and ``up.1.bias`` (the upsampling has none).
  """
  if path in targets:
    return path
  parent, _, last = path.rpartition(".")
  if last == "1" and parent in targets:
    return parent
  return path


def match_state_dict(
    state_dict: Mapping[str, Any],
    targets: Mapping[str, Mapping[str, Any]],
    *,
    strict: bool = True,
) -> dict:
  """Pairs every ``state_dict`` entry with a model leaf.

  Args:
    state_dict: PyTorch's ``{"a.b.weight": tensor}``.
    targets: the model's leaves, ``{module path (PyTorch spelling): {leaf name: shape}}``.
    strict: raise on unmatched entries either way (as ``torch.nn.Module.load_state_dict``).

  Returns:
    ``{(module path, leaf name): converted array}``.

  Raises:
    ValueError: for a state_dict entry with no leaf to go to, a leaf left without a value, or a
      shape that does not fit (each names the key).
  """
  state_dict = as_state_dict(state_dict)
  spelled = {}  # PyTorch's spelling of each model path -> the model path
  for path in targets:
    for spelling in path_spellings(path):
      spelled.setdefault(spelling, path)
  for path in targets:  # a path spelled exactly wins over a re-spelled one
    spelled[path] = path
  filled, sources, unused, misshapen = {}, {}, [], []
  for key, tensor in state_dict.items():
    path, attr = split_key(key)
    if attr in IGNORED_ATTRS:
      continue
    path = fused_path(path, spelled)
    path = spelled.get(path, path)
    leaves = targets.get(path, {})
    leaf = next((n for n in TORCH_ATTRS.get(attr, ()) if n in leaves), None)
    if leaf is None:
      unused.append(key)
      continue
    if (path, leaf) in sources:
      raise ValueError(f"state_dict[{sources[(path, leaf)]!r}] and state_dict[{key!r}] both "
                       f"fill {f'{path}.{leaf}' if path else leaf!r}")
    sources[(path, leaf)] = key
    try:
      filled[(path, leaf)] = convert_for(leaf, to_array(tensor, key), leaves[leaf], key)
    except ValueError as e:
      misshapen.append(str(e))
  missing = [f"{p}.{n}" if p else n for p, names in targets.items() for n in names
             if (p, n) not in filled and (p, n) not in sources]
  if misshapen or (strict and (unused or missing)):
    have = ", ".join(sorted(targets)) or "none"
    raise ValueError(
        "the state_dict does not match the model: "
        + "".join(f"{m}; " for m in misshapen)
        + (f"no place in the model for {unused}; " if strict and unused else "")
        + (f"no value in the state_dict for {missing}; " if strict and missing else "")
        + f"the model's modules are: {have}. Name each submodule as in PyTorch "
        "(a list's blocks.0 may be spelled blocks_0, blocks/0 or blocks.0; a Flax "
        "Sequential's layers_3 and nnx's layers[3] read as '3')")
  return filled


def flatten_tree(tree: Mapping) -> dict:
  """``{path: leaf}`` of a nested dict, the path a tuple of keys."""
  out = {}

  def walk(node, path):
    if isinstance(node, Mapping):
      for k, v in node.items():
        walk(v, path + (k,))
    else:
      out[path] = node

  walk(tree, ())
  return out


def load_flat(flat: Mapping, state_dict: Mapping[str, Any], locate, *, strict: bool = True) -> dict:
  """A model's flat leaves ``{raw path: array}`` with ``state_dict``'s values put in.

  Args:
    flat: the model's leaves under the framework's own paths.
    state_dict: PyTorch's ``state_dict()``.
    locate: maps a raw path to ``(module path in PyTorch spelling, leaf name)``, or ``None`` for
      a leaf PyTorch has no counterpart of (Haiku's EMA counters).
    strict: see :func:`match_state_dict`.

  Returns:
    The leaves, those PyTorch provides replaced, in PyTorch's dtype (Flax keeps batch statistics
    in float32 whatever the model's dtype; a float64 port needs float64 statistics).
  """
  targets, where = {}, {}
  for raw, leaf in flat.items():
    located = locate(raw)
    if located is None:
      continue
    targets.setdefault(located[0], {})[located[1]] = jnp.shape(leaf)
    where[located] = raw
  out = dict(flat)
  for located, value in match_state_dict(state_dict, targets, strict=strict).items():
    raw = where[located]
    out[raw] = value
  return out


def unflatten(flat: Mapping[tuple, Any]) -> dict:
  """The nested dict of ``{path tuple: leaf}``."""
  out: dict = {}
  for path, leaf in flat.items():
    node = out
    for k in path[:-1]:
      node = node.setdefault(k, {})
    node[path[-1]] = leaf
  return out


def channel_axis(layout: str) -> int:
  """The channel axis of a layout string (negative, so it holds for any batch rank)."""
  if not isinstance(layout, str) or layout.upper().count("C") != 1:
    raise ValueError(f"layout must be a string with one 'C', got {layout!r}")
  upper = layout.upper()
  return upper.index("C") - len(upper)


def require_channels_last(layout: Optional[str], what: str, host: str) -> None:
  """Raises unless ``layout`` is ``None`` or has its channels last."""
  if layout is not None and channel_axis(layout) != -1:
    raise ValueError(
        f"{what} with layout={layout!r}: {host} normalises the last axis only; use a "
        "channels-last layout, or move the channels last around it")
