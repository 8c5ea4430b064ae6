"""Layout strings: which axis of an array is batch, channels and space.

Every operator in jaxup takes a keyword-only ``layout`` string and parses it here, so that
no operator re-derives its spatial axes on its own.

A layout is a string with one letter per array axis: ``N`` is the batch axis, ``C`` the
channel axis, and every other letter a spatial axis, in order. ``None`` picks the
channels-last default by rank (``NWC``, ``NHWC``, ``NDHWC``), as Flax and Haiku do.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from jax import lax

DEFAULT_LAYOUTS = {3: "NWC", 4: "NHWC", 5: "NDHWC"}


@dataclasses.dataclass(frozen=True)
class Layout:
  """A parsed layout string.

  Attributes:
    spec: the layout string, e.g. ``"NHWC"``.
    batch_axis: the axis of ``N``, or ``None`` for an unbatched layout.
    channel_axis: the axis of ``C``, or ``None`` for a layout without channels.
    spatial_axes: the spatial axes, in the order they appear.
  """

  spec: str
  batch_axis: Optional[int]
  channel_axis: Optional[int]
  spatial_axes: tuple[int, ...]

  @property
  def ndim(self) -> int:
    return len(self.spec)

  @property
  def num_spatial(self) -> int:
    return len(self.spatial_axes)

  @property
  def channels_last(self) -> bool:
    return self.channel_axis == self.ndim - 1

  def spatial_shape(self, shape) -> tuple[int, ...]:
    """The sizes of the spatial axes of ``shape``."""
    return tuple(int(shape[a]) for a in self.spatial_axes)

  def channels(self, shape) -> Optional[int]:
    """The size of the channel axis of ``shape``, or ``None`` without one."""
    return None if self.channel_axis is None else int(shape[self.channel_axis])

  def replace_spatial(self, shape, spatial) -> tuple[int, ...]:
    """``shape`` with its spatial sizes replaced by ``spatial``."""
    out = list(shape)
    for axis, size in zip(self.spatial_axes, spatial):
      out[axis] = int(size)
    return tuple(out)

  def with_batch(self) -> "Layout":
    """This layout with a leading batch axis added, if it had none."""
    if self.batch_axis is not None:
      return self
    return _parse("N" + self.spec)

  def conv_dimension_numbers(self) -> lax.ConvDimensionNumbers:
    """Dimension numbers for ``lax.conv_general_dilated`` with an HWIO kernel.

    The kernel is ``(*spatial, in_channels // groups, out_channels)`` and the output has
    this same layout. The layout must have a batch and a channel axis.
    """
    if self.batch_axis is None or self.channel_axis is None:
      raise ValueError(
          f"layout {self.spec!r} needs both a batch axis 'N' and a channel axis 'C' for a "
          "convolution; add the batch axis with with_batch()"
      )
    n = self.num_spatial
    lhs = (self.batch_axis, self.channel_axis) + self.spatial_axes
    rhs = (n + 1, n) + tuple(range(n))
    return lax.ConvDimensionNumbers(lhs_spec=lhs, rhs_spec=rhs, out_spec=lhs)


def _parse(spec: str) -> Layout:
  spatial = tuple(i for i, c in enumerate(spec) if c not in "NC")
  batch = spec.index("N") if "N" in spec else None
  channel = spec.index("C") if "C" in spec else None
  return Layout(spec, batch, channel, spatial)


def parse_layout(
    layout: Optional[str],
    ndim: int,
    *,
    name: str = "layout",
    require_batch: bool = False,
    require_channels: bool = True,
    num_spatial: Optional[tuple[int, ...]] = (1, 2, 3),
) -> Layout:
  """Parses and validates a layout string for an array of rank ``ndim``.

  Args:
    layout: the layout string, or ``None`` for the channels-last default of rank ``ndim``
      (rank 3 ``NWC``, rank 4 ``NHWC``, rank 5 ``NDHWC``).
    ndim: the rank of the array the layout describes.
    name: the argument name used in error messages.
    require_batch: whether an ``N`` axis is required.
    require_channels: whether a ``C`` axis is required.
    num_spatial: the allowed numbers of spatial axes, or ``None`` for any positive number.

  Returns:
    The parsed :class:`Layout`.

  Raises:
    TypeError: if ``layout`` is not a string or ``None``.
    ValueError: if the string is malformed or does not match ``ndim``.

  Example:
    >>> import jaxup
    >>> lay = jaxup.parse_layout("NCHW", 4)
    >>> lay.batch_axis, lay.channel_axis, lay.spatial_axes
    (0, 1, (2, 3))
    >>> jaxup.parse_layout(None, 5).spec
    'NDHWC'
  """
  if layout is None:
    if ndim not in DEFAULT_LAYOUTS:
      raise ValueError(
          f"{name}=None has no default for an input of rank {ndim}; the defaults are "
          f"{DEFAULT_LAYOUTS} (channels-last with one batch axis); pass a layout string "
          "such as 'NCHW' or 'HWC'"
      )
    layout = DEFAULT_LAYOUTS[ndim]
  if not isinstance(layout, str):
    raise TypeError(f"{name} must be a string such as 'NHWC' or None, got {layout!r}")
  if not layout.isalpha() or not layout.isupper() or not layout.isascii():
    raise ValueError(
        f"{name}={layout!r} must be upper-case ASCII letters: 'N' for batch, 'C' for "
        "channels, any other letter for a spatial axis"
    )
  if len(set(layout)) != len(layout):
    raise ValueError(f"{name}={layout!r} repeats a letter; each axis needs its own letter")
  if len(layout) != ndim:
    raise ValueError(
        f"{name}={layout!r} has {len(layout)} letters but the input has rank {ndim}"
    )
  parsed = _parse(layout)
  if require_batch and parsed.batch_axis is None:
    raise ValueError(f"{name}={layout!r} must contain a batch axis 'N'")
  if require_channels and parsed.channel_axis is None:
    raise ValueError(f"{name}={layout!r} must contain a channel axis 'C'")
  if num_spatial is not None and parsed.num_spatial not in num_spatial:
    raise ValueError(
        f"{name}={layout!r} has {parsed.num_spatial} spatial axes; expected one of "
        f"{tuple(num_spatial)}"
    )
  if parsed.num_spatial == 0:
    raise ValueError(f"{name}={layout!r} has no spatial axis")
  return parsed
