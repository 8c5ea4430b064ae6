"""Nearest-neighbour upsampling by an integer factor: every value repeated into a block.

Also called "K-nearest neighbours" upsampling: with factor ``s`` each input value fills
an ``s x s`` block of the output. It is pure data movement, one ``broadcast_in_dim`` and one
reshape, so its transpose is non-overlapping sum pooling: each block of the cotangent is
summed back onto the value it came from.
"""

from __future__ import annotations

from typing import Optional

import jax
from jax import lax

from jaxup._src import checks
from jaxup._src.geometry import IntOrSeq
from jaxup._src.layout import parse_layout, spatial_ranks


def upsample_nearest(
    x: jax.typing.ArrayLike, factor: IntOrSeq, *, layout: Optional[str] = None
) -> jax.Array:
  r"""Repeats every value of ``x`` into a block of ``factor`` copies along each spatial axis.

  ``[N, H, W, C] -> [N, H*s_H, W*s_W, C]`` for the default layout, where ``N`` is the batch,
  ``H, W`` the spatial sizes, ``C`` the channels and ``s_H, s_W`` the factors; 1-D (``NWC``)
  and 3-D (``NDHWC``) work alike, and ``layout`` puts the axes anywhere. Output element
  :math:`y[\ldots, i, j, \ldots] = x[\ldots, \lfloor i / s_H \rfloor, \lfloor j / s_W \rfloor,
  \ldots]`.

  Conventions: this equals ``torch.nn.functional.interpolate(mode="nearest")`` and
  ``mode="nearest-exact"`` at integer scales, ``jax.image.resize(method="nearest")`` to
  ``size * factor``, and ``einops.repeat(x, "n h w c -> n (h s1) (w s2) c")``. Any dtype
  (float, integer, bool, complex) is accepted and kept: values are copied, never computed.
  The transpose (``jax.linear_transpose``, the VJP) is non-overlapping sum pooling with window
  and stride ``factor``.

  Args:
    x: the input ``[N, *spatial, C]`` (or as ``layout`` says).
    factor: a positive int for every spatial axis, or one per spatial axis.
    layout: the layout string, e.g. ``"NCHW"`` or ``"HW"``; ``None`` is channels-last with a
      batch axis by rank (``NWC``, ``NHWC``, ``NDHWC``). The channel axis is optional here.

  Returns:
    ``x`` with each spatial size multiplied by its factor, in ``x``'s dtype and layout.

  Raises:
    TypeError: if ``factor`` is not an int or a sequence of ints, or ``layout`` not a string.
    ValueError: if a factor is not positive, the number of factors differs from the number of
      spatial axes, or ``layout`` does not fit ``x``.

  Example:
    Each value of a 2x2 image becomes a 2x2 block:

    >>> import jax.numpy as jnp
    >>> x = jnp.array([[1, 2], [3, 4]])
    >>> print(upsample_nearest(x, 2, layout="HW"))
    [[1 1 2 2]
     [1 1 2 2]
     [3 3 4 4]
     [3 3 4 4]]
  """
  x = checks.array(x, "x", kind="any", allow_complex=True)
  parsed = parse_layout(layout, x.ndim, require_channels=False,
                        num_spatial=spatial_ranks(layout, x.ndim, factor))
  factors = checks.ints(factor, parsed.num_spatial, "factor")
  factor_of = dict(zip(parsed.spatial_axes, factors))
  # Give every spatial axis a new axis of the factor's size right after it, broadcast into
  # it, and merge the pairs: [N, H, W, C] -> [N, H, s_H, W, s_W, C] -> [N, H*s_H, W*s_W, C].
  expanded, dims = [], []
  for axis, size in enumerate(x.shape):
    dims.append(len(expanded))
    expanded.append(size)
    if axis in factor_of:
      expanded.append(factor_of[axis])
  repeated = lax.broadcast_in_dim(x, tuple(expanded), tuple(dims))
  return lax.reshape(repeated, parsed.replace_spatial(
      x.shape, [n * s for n, s in zip(parsed.spatial_shape(x.shape), factors)]))
