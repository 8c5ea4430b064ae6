"""Layout strings: which axis of an array is batch, channels and space.

Every operator in jaxup takes a keyword-only ``layout`` string and parses it here, so that
no operator re-derives its spatial axes on its own.

A layout is a string with one letter per array axis: ``N`` is the batch axis, ``C`` the
channel axis, and every other letter a spatial axis, in order. ``None`` picks the
channels-last default by rank (``NHWC``, ``NDHWC``), as Flax and Haiku do. Rank 3 reads two
ways, a batch of 1-D signals (``NWC``) or one image (``HWC``, which is what an image becomes
under ``jax.vmap``), so ``None`` there is refused unless the caller knows the spatial rank (a
convolution's kernel does) and only ``NWC`` fits.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from jax import lax

from jaxup._src import checks

DEFAULT_LAYOUTS = {4: "NHWC", 5: "NDHWC"}


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

  def __post_init__(self):
    # A Layout is what parse_layout returns; built by hand, its fields must agree with spec.
    if not isinstance(self.spec, str) or not self.spec.isalpha():
      raise TypeError(f"spec must be a layout string such as 'NHWC', got {checks.describe(self.spec)}")
    expected = _axes(self.spec)
    given = (self.batch_axis, self.channel_axis, self.spatial_axes)
    if given != expected:
      raise ValueError(
          f"batch_axis, channel_axis and spatial_axes must be {expected} for spec "
          f"{self.spec!r}, got {given!r}; build layouts with jaxup.parse_layout")

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


def _axes(spec: str) -> tuple[Optional[int], Optional[int], tuple[int, ...]]:
  spatial = tuple(i for i, c in enumerate(spec) if c not in "NC")
  batch = spec.index("N") if "N" in spec else None
  channel = spec.index("C") if "C" in spec else None
  return batch, channel, spatial


def _parse(spec: str) -> Layout:
  return Layout(spec, *_axes(spec))


def _rank_3_default(name: str, require_batch: bool,
                    num_spatial: Optional[tuple[int, ...]]) -> str:
  """``"NWC"`` where it is the only channels-last reading of a rank-3 input; otherwise raises,
  naming both readings."""
  one_d = num_spatial is None or 1 in num_spatial
  image = not require_batch and (num_spatial is None or 2 in num_spatial)
  if one_d and not image:
    return "NWC"
  if image and not one_d:
    raise ValueError(
        f"{name} must be given for an input of rank 3 with 2 spatial axes: pass "
        f"{name}=\"HWC\" for one image (None reads rank 3 as NWC, a batch of 1-D signals), "
        "got None")
  raise ValueError(
      f"{name} must be given for an input of rank 3, which reads two ways: {name}=\"NWC\" for "
      f"a batch of 1-D signals, {name}=\"HWC\" for one image (what an NHWC image becomes "
      "under jax.vmap), got None")


def spatial_ranks(layout: Optional[str], ndim: int, *per_axis) -> Optional[tuple[int, ...]]:
  """The ``num_spatial`` for :func:`parse_layout` that per-axis options imply: where
  ``layout`` is ``None`` at rank 3, a tuple or list among ``per_axis`` (a window, a factor, a
  size per spatial axis) says how many spatial axes there are; otherwise ``None`` (no
  constraint, the layout string decides)."""
  if layout is not None or ndim != 3:
    return None
  lengths = {len(v) for v in per_axis if isinstance(v, (tuple, list))}
  return tuple(lengths) if len(lengths) == 1 else None


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
      (rank 4 ``NHWC``, rank 5 ``NDHWC``; rank 3 ``NWC`` only where ``num_spatial`` or
      ``require_batch`` rule out one unbatched image, ``HWC``). Like every string option it is
      case-insensitive: ``"nchw"`` is ``"NCHW"``.
    ndim: the rank of the array the layout describes.
    name: the argument name used in error messages.
    require_batch: whether an ``N`` axis is required.
    require_channels: whether a ``C`` axis is required.
    num_spatial: the allowed numbers of spatial axes, or ``None`` for any positive number.

  Returns:
    The parsed :class:`Layout`.

  Raises:
    TypeError: if ``layout`` is not a string or ``None``.
    ValueError: if the string is malformed or does not match ``ndim``, or if ``layout`` is
      ``None`` for a rank-3 input that reads both as ``NWC`` and as ``HWC``.

  Example:
    >>> import jaxup
    >>> lay = jaxup.parse_layout("NCHW", 4)
    >>> lay.batch_axis, lay.channel_axis, lay.spatial_axes
    (0, 1, (2, 3))
    >>> jaxup.parse_layout(None, 5).spec
    'NDHWC'
    >>> jaxup.parse_layout("nchw", 4).spec
    'NCHW'
    >>> jaxup.parse_layout(None, 3, num_spatial=(1,)).spec
    'NWC'
  """
  ndim = checks.integer(ndim, "ndim", minimum=0)
  if not isinstance(name, str):
    raise TypeError(f"name must be a string, got {checks.describe(name)}")
  require_batch = checks.boolean(require_batch, "require_batch")
  require_channels = checks.boolean(require_channels, "require_channels")
  if num_spatial is not None:
    if isinstance(num_spatial, (str, bytes)) or not hasattr(num_spatial, "__iter__"):
      raise TypeError(
          f"num_spatial must be a tuple of ints or None, got {checks.describe(num_spatial)}")
    num_spatial = tuple(checks.integer(k, "num_spatial", minimum=1) for k in num_spatial)
  if layout is None and ndim == 3:
    layout = _rank_3_default(name, require_batch, num_spatial)
  if layout is None:
    if ndim not in DEFAULT_LAYOUTS:
      raise ValueError(
          f"{name} must be a layout string such as 'NCHW' or 'HWC' for an input of rank "
          f"{ndim} (None is the channels-last default of ranks 4 and 5: "
          f"{', '.join(DEFAULT_LAYOUTS.values())}), got None")
    layout = DEFAULT_LAYOUTS[ndim]
  if not isinstance(layout, str):
    raise TypeError(
        f"{name} must be a string such as 'NHWC' or None, got {checks.describe(layout)}")
  given, layout = layout, layout.upper()
  if not layout.isalpha() or not layout.isascii():
    raise ValueError(
        f"{name} must be ASCII letters: 'N' for batch, 'C' for channels, any other letter "
        f"for a spatial axis, got {given!r}")
  if len(set(layout)) != len(layout):
    raise ValueError(f"{name} must use each letter once (one per axis), got {given!r}")
  if len(layout) != ndim:
    raise ValueError(
        f"{name} must have {ndim} letters, one per axis of the input of rank {ndim}, got "
        f"{given!r}")
  parsed = _parse(layout)
  if require_batch and parsed.batch_axis is None:
    raise ValueError(f"{name} must contain a batch axis 'N', got {given!r}")
  if require_channels and parsed.channel_axis is None:
    raise ValueError(f"{name} must contain a channel axis 'C', got {given!r}")
  if parsed.num_spatial == 0:
    raise ValueError(f"{name} must have a spatial axis (a letter other than N and C), got "
                     f"{given!r}")
  if num_spatial is not None and parsed.num_spatial not in num_spatial:
    raise ValueError(
        f"{name} must have {' or '.join(map(str, num_spatial))} spatial axes, got {given!r} "
        f"with {parsed.num_spatial}")
  return parsed
