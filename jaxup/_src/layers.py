"""What the Flax, nnx, Haiku and Equinox layers share: kernel shapes, bias, padding modes,
PyTorch configurations, and the stateless layers, which need no framework at all."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional, Sequence, Union

import jax
import jax.numpy as jnp

from jaxup._src import checks
from jaxup._src import geometry
from jaxup._src.conv import conv, kernel_from_torch
from jaxup._src.layout import Layout, parse_layout
from jaxup._src.bed_of_nails import bed_of_nails
from jaxup._src.max_pool import max_pool
from jaxup._src.max_unpool import max_unpool
from jaxup._src.nearest import upsample_nearest
from jaxup._src.pixel_shuffle import pixel_shuffle, pixel_unshuffle
from jaxup._src.resize import resize


def conv_transpose_kernel_shape(
    x_shape: Sequence[int],
    layout: Optional[str],
    features: int,
    kernel_size: Union[int, Sequence[int]],
    groups: int,
) -> tuple[tuple[int, ...], Layout]:
  """The kernel shape ``[*K, features // groups, C_in]`` for an input of ``x_shape``."""
  lay = parse_layout(layout, len(x_shape))
  return (conv_transpose_kernel_shape_for(lay.num_spatial, lay.channels(x_shape), features,
                                          kernel_size, groups), lay)


def conv_transpose_kernel_shape_for(num_spatial: int, in_features: int, features: int,
                                    kernel_size, groups: int) -> tuple[int, ...]:
  """``[*K, features // groups, in_features]``, checking that ``groups`` divides both."""
  features = checks.integer(features, "features", minimum=1)
  in_features = checks.integer(in_features, "in_features", minimum=1)
  groups = checks.integer(groups, "groups", minimum=1)
  if features % groups:
    raise ValueError(f"groups must divide the output features ({features}), got {groups}")
  if in_features % groups:
    raise ValueError(f"groups must divide the input channels ({in_features}), got {groups}")
  kernel = checks.ints(kernel_size, num_spatial, "kernel_size")
  return (*kernel, features // groups, in_features)


def conv_kernel_shape(
    x_shape: Sequence[int],
    layout: Optional[str],
    features: int,
    kernel_size: Union[int, Sequence[int]],
    groups: int,
) -> tuple[tuple[int, ...], Layout]:
  """The convolution kernel shape ``[*K, C_in // groups, features]`` for an input of ``x_shape``."""
  lay = parse_layout(layout, len(x_shape))
  return (conv_kernel_shape_for(lay.num_spatial, lay.channels(x_shape), features, kernel_size,
                                groups), lay)


def conv_kernel_shape_for(num_spatial: int, in_features: int, features: int, kernel_size,
                          groups: int) -> tuple[int, ...]:
  """``[*K, in_features // groups, features]``, checking that ``groups`` divides both."""
  in_features = checks.integer(in_features, "in_features", minimum=1)
  features = checks.integer(features, "features", minimum=1)
  groups = checks.integer(groups, "groups", minimum=1)
  if features % groups:
    raise ValueError(f"groups must divide the output features ({features}), got {groups}")
  if in_features % groups:
    raise ValueError(f"groups must divide the input channels ({in_features}), got {groups}")
  kernel = checks.ints(kernel_size, num_spatial, "kernel_size")
  return (*kernel, in_features // groups, features)


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_JNP_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def check_padding_mode(padding_mode: str) -> str:
  """PyTorch's ``padding_mode``, one of :data:`PADDING_MODES` (any case)."""
  return checks.choice(padding_mode, "padding_mode", PADDING_MODES)


def padded_conv(x: jax.Array, kernel: jax.Array, *, stride, padding, dilation, groups,
                padding_mode: str, layout: Optional[str], precision) -> jax.Array:
  """:func:`jaxup.conv` with PyTorch's ``padding_mode``.

  ``"zeros"`` is the convolution's own padding. The other modes pad ``x`` first, as PyTorch
  does, with ``jnp.pad`` (``reflect``: mirrored without the edge, ``replicate``: the edge value,
  ``circular``: wrapped around), then convolve with no padding. ``"same"`` pads
  ``dilation * (K - 1)`` in total per axis, the odd one on the high side (PyTorch's rule).
  """
  mode = check_padding_mode(padding_mode)
  if mode == "zeros":
    return conv(x, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
                layout=layout, precision=precision)
  x = checks.array(x, "x")
  lay = parse_layout(layout, x.ndim, num_spatial=(kernel.ndim - 2,))
  n = lay.num_spatial
  strides = checks.ints(stride, n, "stride")
  dilations = checks.ints(dilation, n, "dilation")
  pairs = geometry.resolve_padding(
      geometry.normalize_padding(padding, n), lay.spatial_shape(x.shape),
      kernel.shape[:n], strides, dilations)
  width = [(0, 0)] * x.ndim
  for axis, pair in zip(lay.spatial_axes, pairs):
    width[axis] = tuple(pair)
  x = jnp.pad(x, width, mode=_JNP_PAD_MODES[mode])
  return conv(x, kernel, stride=strides, padding=0, dilation=dilations, groups=groups,
              layout=layout, precision=precision)


def add_bias(y: jax.Array, bias: jax.Array, lay: Layout) -> jax.Array:
  """``y + bias`` with ``bias`` ``[C]`` broadcast along the channel axis of ``lay``."""
  shape = [1] * y.ndim
  shape[lay.channel_axis] = bias.shape[0]
  return y + bias.reshape(shape).astype(y.dtype)


def default_kernel_init():
  """LeCun-normal scaled by the transposed convolution's input channels (the last axis)."""
  return jax.nn.initializers.variance_scaling(
      1.0, "fan_in", "truncated_normal", in_axis=-1, out_axis=-2)


def default_conv_kernel_init():
  """LeCun-normal over a convolution kernel ``[*K, C_in // groups, C_out]`` (Flax's default)."""
  return jax.nn.initializers.variance_scaling(
      1.0, "fan_in", "truncated_normal", in_axis=-2, out_axis=-1)


class StatelessLayer:
  """A jaxup function with its options bound: a layer without parameters.

  Stateless layers need no framework: the same object works inside Flax linen and nnx modules,
  ``hk.transform`` and every ``Sequential``. Arguments are checked against the function's
  signature when the layer is built; values are checked when it is called.
  """

  function: Callable
  num_arrays: int = 1
  # PyTorch's keyword names, answered with jaxup's.
  torch_names: dict = {"kernel_size": "window", "upscale_factor": "factor",
                       "downscale_factor": "factor", "scale_factor": "scale", "mode": "method",
                       "recompute_scale_factor": "recompute_scale"}
  missing_array_hint: str = ""

  def __init__(self, *args, **kwargs):
    for torch_name, name in self.torch_names.items():
      if torch_name in kwargs and name in inspect.signature(self.function).parameters:
        raise TypeError(
            f"{type(self).__name__} got {torch_name}={kwargs[torch_name]!r}, PyTorch's name; "
            f"jaxup spells it {name}= (see docs/guides/porting-pytorch.md, or build the layer "
            "from the PyTorch module with from_torch)")
    try:
      inspect.signature(self.function).bind(*([None] * self.num_arrays), *args, **kwargs)
    except TypeError as e:
      raise TypeError(f"{type(self).__name__}: {e}") from None
    self.args, self.kwargs = args, kwargs

  def __call__(self, *arrays: jax.Array) -> Any:
    if len(arrays) == 1 and isinstance(arrays[0], tuple) and self.num_arrays > 1:
      arrays = arrays[0]  # the tuple a previous layer returned, e.g. (values, indices)
    if len(arrays) != self.num_arrays:
      raise TypeError(
          f"{type(self).__name__} takes {self.num_arrays} array argument(s), got "
          f"{len(arrays)}{self.missing_array_hint}")
    return self.function(*arrays, *self.args, **self.kwargs)

  def __repr__(self) -> str:
    options = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
    return f"{type(self).__name__}({', '.join(options)})"


class Resize(StatelessLayer):
  """:func:`jaxup.resize` as a layer: ``Resize(*, size=None, scale=None, method, ...)``.

  ``size`` (the output size) and ``scale`` (a factor) are keyword-only, so that ``Resize(2)``
  cannot mean a size here and a factor in :class:`UpsampleNearest`. ``method`` is required (PyTorch's
  ``Upsample`` defaults to nearest, other frameworks to linear).

  ``method`` is required, as in :func:`jaxup.resize`; a missing one, or PyTorch's ``mode=`` and
  ``scale_factor=``, fail when the layer is built, with what to write instead.

  Example:
    >>> import jax.numpy as jnp
    >>> Resize(scale=2, method="linear", align_corners=True)(jnp.ones((1, 4, 4, 3))).shape
    (1, 8, 8, 3)
  """

  function = staticmethod(resize)

  def __init__(self, *args, **kwargs):
    if args:
      raise TypeError(
          f"Resize takes size= or scale= by keyword, got the positional {args[0]!r}: "
          f"Resize(size={args[0]!r}, ...) sets the output size, Resize(scale={args[0]!r}, ...) "
          "multiplies the input size")
    # The same answer as resize itself for a missing method or PyTorch's argument names.
    message = resize.argument_hint((None,), kwargs)
    if message is not None:
      raise TypeError(f"Resize: {message}")
    super().__init__(**kwargs)


class UpsampleNearest(StatelessLayer):
  """:func:`jaxup.upsample_nearest` as a layer: ``UpsampleNearest(factor)``.

  Example:
    >>> import jax.numpy as jnp
    >>> UpsampleNearest(2)(jnp.ones((1, 4, 4, 3))).shape
    (1, 8, 8, 3)
  """

  function = staticmethod(upsample_nearest)


class BedOfNails(StatelessLayer):
  """:func:`jaxup.bed_of_nails` as a layer: ``BedOfNails(factor)``.

  Example:
    >>> import jax.numpy as jnp
    >>> BedOfNails(2)(jnp.ones((1, 4, 4, 3))).shape
    (1, 8, 8, 3)
  """

  function = staticmethod(bed_of_nails)


class PixelShuffle(StatelessLayer):
  """:func:`jaxup.pixel_shuffle` as a layer: ``PixelShuffle(factor, *, order="CRD")``.

  Example:
    >>> import jax.numpy as jnp
    >>> PixelShuffle(2)(jnp.ones((1, 4, 4, 12))).shape
    (1, 8, 8, 3)
  """

  function = staticmethod(pixel_shuffle)


class PixelUnshuffle(StatelessLayer):
  """:func:`jaxup.pixel_unshuffle` as a layer: ``PixelUnshuffle(factor, *, order="CRD")``.

  Example:
    >>> import jax.numpy as jnp
    >>> PixelUnshuffle(2)(jnp.ones((1, 8, 8, 3))).shape
    (1, 4, 4, 12)
  """

  function = staticmethod(pixel_unshuffle)


class MaxPool(StatelessLayer):
  """:func:`jaxup.max_pool` as a layer: ``MaxPool(window, *, stride=None, ...,
  return_indices=False)``.

  Example:
    >>> import jax.numpy as jnp
    >>> values, indices = MaxPool(2, return_indices=True)(jnp.ones((1, 4, 4, 3)))
    >>> values.shape, indices.shape
    ((1, 2, 2, 3), (1, 2, 2, 3))
  """

  function = staticmethod(max_pool)


class MaxUnpool(StatelessLayer):
  """:func:`jaxup.max_unpool` as a layer: ``MaxUnpool(window, *, stride=None, padding=0,
  output_size=None)``, called on ``values, indices`` or on the pair ``(values, indices)`` that
  ``MaxPool(..., return_indices=True)`` returns, so the two chain in any ``Sequential``.

  Example:
    >>> import jax.numpy as jnp
    >>> values, indices = MaxPool(2, return_indices=True)(jnp.ones((1, 4, 4, 3)))
    >>> MaxUnpool(2)(values, indices).shape
    (1, 4, 4, 3)
  """

  function = staticmethod(max_unpool)
  num_arrays = 2
  missing_array_hint = (": call it on (values, indices); MaxPool(..., return_indices=True) "
                        "returns that pair")


# The names every framework module re-exports.
STATELESS_LAYERS = ["BedOfNails", "MaxPool", "MaxUnpool", "PixelShuffle", "PixelUnshuffle", "Resize",
                    "UpsampleNearest"]
