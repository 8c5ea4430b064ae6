"""Pixel shuffle (depth to space) and pixel unshuffle (space to depth).

Pixel shuffle moves groups of channels into blocks of space: ``C * s**k`` channels at size
``H`` become ``C`` channels at size ``H * s`` (``k`` spatial axes). Two channel orders exist:

* ``"CRD"`` (column-row-depth), PyTorch's ``pixel_shuffle`` and ONNX DepthToSpace
  ``mode="CRD"``: input channel ``c * s**2 + i * s + j`` goes to channel ``c`` at offset
  ``(i, j)`` of the block. The output channel varies slowest.
* ``"DCR"`` (depth-column-row), TensorFlow's ``tf.nn.depth_to_space`` and ONNX DepthToSpace's
  default: input channel ``(i * s + j) * C + c`` goes to channel ``c`` at offset ``(i, j)``.
  The output channel varies fastest.

Both are a reshape, a transpose and a reshape. Unshuffle is the inverse permutation, and so
also the transpose (adjoint) of shuffle.
"""

from __future__ import annotations

import math
from typing import Optional

import jax
from jax import lax

from jaxup._src import checks
from jaxup._src.geometry import IntOrSeq
from jaxup._src.layout import Layout, parse_layout, spatial_ranks

ORDERS = ("CRD", "DCR")


def _plan(parsed: Layout, factors: tuple[int, ...], order: str, deep_shape):
  """The reshape and transpose that take the deep (channel-heavy) array to the shuffled one.

  The channel axis of ``deep_shape`` splits into ``(C, s_1, ..., s_k)`` (``CRD``) or
  ``(s_1, ..., s_k, C)`` (``DCR``); the permutation then puts each block offset ``s_i`` right
  after its spatial axis and ``C`` where the channel axis was, ready to merge the pairs.

  Returns:
    ``(split_shape, perm)``: the shape with the channel axis split, and the permutation of
    that split array's axes into the shuffled order.
  """
  k, c = parsed.num_spatial, parsed.channel_axis
  inner = deep_shape[c] // math.prod(factors)
  if order == "CRD":
    split, inner_axis, offset_axes = (inner, *factors), c, range(c + 1, c + 1 + k)
  else:
    split, inner_axis, offset_axes = (*factors, inner), c + k, range(c, c + k)
  offset_of = dict(zip(parsed.spatial_axes, offset_axes))
  perm = []
  for axis in range(parsed.ndim):
    if axis == c:
      perm.append(inner_axis)
      continue
    perm.append(axis if axis < c else axis + k)
    if axis in offset_of:
      perm.append(offset_of[axis])
  return deep_shape[:c] + split + deep_shape[c + 1:], tuple(perm)


def _shallow_shape(parsed: Layout, factors: tuple[int, ...], deep_shape) -> tuple[int, ...]:
  """The shuffled shape of a deep array: spatial sizes times the factors, channels divided."""
  c = parsed.channel_axis
  shape = parsed.replace_spatial(
      deep_shape, [n * s for n, s in zip(parsed.spatial_shape(deep_shape), factors)])
  return shape[:c] + (deep_shape[c] // math.prod(factors),) + shape[c + 1:]


def _parse(x, factor, order, layout):
  x = checks.array(x, "x", kind="any", allow_complex=True)
  parsed = parse_layout(layout, x.ndim, num_spatial=spatial_ranks(layout, x.ndim, factor))
  factors = checks.ints(factor, parsed.num_spatial, "factor")
  return x, parsed, factors, checks.choice(order, "order", ORDERS)


def pixel_shuffle(
    x: jax.typing.ArrayLike,
    factor: IntOrSeq,
    *,
    order: str = "CRD",
    layout: Optional[str] = None,
) -> jax.Array:
  r"""Moves channels into space (depth to space): ``C * s**k`` channels become ``C``.

  ``[N, H, W, C*s_H*s_W] -> [N, H*s_H, W*s_W, C]`` for the default layout, where ``N`` is the
  batch, ``H, W`` the spatial sizes, ``C`` the output channels and ``s_H, s_W`` the factors;
  1-D (``NWC``, ``[N, W, C*s] -> [N, W*s, C]``) and 3-D (``NDHWC``) work alike, and
  ``layout`` puts the axes anywhere (``"NCHW"`` for PyTorch ports).

  With ``order="CRD"`` (default) input channel :math:`c\,s_H s_W + i\,s_W + j` at
  :math:`(h, w)` goes to output channel :math:`c` at :math:`(h s_H + i, w s_W + j)`: this is
  ``torch.nn.functional.pixel_shuffle`` (on ``layout="NCHW"``) and ONNX DepthToSpace
  ``mode="CRD"``. With ``order="DCR"`` it is input channel :math:`(i\,s_W + j) C + c`:
  ``tf.nn.depth_to_space`` (on ``NHWC``) and ONNX DepthToSpace's default ``mode="DCR"``. 1-D
  and 3-D follow the same rule with one offset per spatial axis, the first axis slowest. Any
  dtype is accepted and kept. The transpose (``jax.linear_transpose``) is
  :func:`pixel_unshuffle` with the same arguments, which is also the inverse.

  Args:
    x: the input ``[N, *spatial, C * prod(factor)]`` (or as ``layout`` says).
    factor: a positive int for every spatial axis, or one per spatial axis.
    order: ``"CRD"`` (PyTorch) or ``"DCR"`` (TensorFlow, ONNX default), in any case.
    layout: the layout string, e.g. ``"NCHW"`` or ``"HWC"``; ``None`` is channels-last with a
      batch axis by rank (``NWC``, ``NHWC``, ``NDHWC``). A channel axis is required.

  Returns:
    The shuffled array ``[N, *(spatial * factor), C]`` in ``x``'s dtype and layout.

  Raises:
    TypeError: if ``factor`` is not an int or a sequence of ints, or ``layout`` not a string.
    ValueError: if a factor is not positive, ``order`` is unknown, ``layout`` does not fit
      ``x``, or the channels are not divisible by the product of the factors.

  Example:
    Four channels of one pixel become a 2x2 block of one channel, in PyTorch's order:

    >>> import jax.numpy as jnp
    >>> x = jnp.array([[[1, 2, 3, 4]]])  # [H=1, W=1, C=4]
    >>> print(pixel_shuffle(x, 2, layout="HWC")[..., 0])
    [[1 2]
     [3 4]]
    >>> print(pixel_shuffle(jnp.arange(8).reshape(1, 1, 8), 2, layout="HWC").tolist())
    [[[0, 4], [1, 5]], [[2, 6], [3, 7]]]
    >>> print(pixel_shuffle(jnp.arange(8).reshape(1, 1, 8), 2, order="DCR", layout="HWC").tolist())
    [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]
  """
  x, parsed, factors, order = _parse(x, factor, order, layout)
  channels = parsed.channels(x.shape)
  block = math.prod(factors)
  if channels % block:
    raise ValueError(
        f"pixel_shuffle needs the channels of x to be divisible by the product of the factors "
        f"over its {parsed.num_spatial} spatial axes; channels={channels} (x.shape={x.shape}, "
        f"layout {parsed.spec!r}), factor={factor!r}, product "
        f"{' * '.join(map(str, factors))} = {block}"
    )
  split_shape, perm = _plan(parsed, factors, order, x.shape)
  shuffled = lax.transpose(lax.reshape(x, split_shape), perm)
  return lax.reshape(shuffled, _shallow_shape(parsed, factors, x.shape))


def pixel_unshuffle(
    x: jax.typing.ArrayLike,
    factor: IntOrSeq,
    *,
    order: str = "CRD",
    layout: Optional[str] = None,
) -> jax.Array:
  r"""Moves space into channels (space to depth), the inverse of :func:`pixel_shuffle`.

  ``[N, H*s_H, W*s_W, C] -> [N, H, W, C*s_H*s_W]`` for the default layout, where ``N`` is the
  batch, ``H, W`` the output spatial sizes, ``C`` the input channels and ``s_H, s_W`` the
  factors; 1-D (``NWC``) and 3-D (``NDHWC``) work alike, and ``layout`` puts the axes anywhere.

  With ``order="CRD"`` (default) input channel :math:`c` at :math:`(h s_H + i, w s_W + j)`
  goes to output channel :math:`c\,s_H s_W + i\,s_W + j` at :math:`(h, w)`: this is
  ``torch.nn.functional.pixel_unshuffle`` (on ``layout="NCHW"``). With ``order="DCR"`` it
  goes to channel :math:`(i\,s_W + j) C + c`: ``tf.nn.space_to_depth`` (on ``NHWC``) and ONNX
  SpaceToDepth. Any dtype is accepted and kept. This is the inverse permutation of
  :func:`pixel_shuffle` with the same arguments, and so also its transpose.

  Args:
    x: the input ``[N, *(spatial * factor), C]`` (or as ``layout`` says).
    factor: a positive int for every spatial axis, or one per spatial axis.
    order: ``"CRD"`` (PyTorch) or ``"DCR"`` (TensorFlow, ONNX), in any case.
    layout: the layout string, e.g. ``"NCHW"`` or ``"HWC"``; ``None`` is channels-last with a
      batch axis by rank (``NWC``, ``NHWC``, ``NDHWC``). A channel axis is required.

  Returns:
    The unshuffled array ``[N, *spatial, C * prod(factor)]`` in ``x``'s dtype and layout.

  Raises:
    TypeError: if ``factor`` is not an int or a sequence of ints, or ``layout`` not a string.
    ValueError: if a factor is not positive, ``order`` is unknown, ``layout`` does not fit
      ``x``, or a spatial size is not divisible by its factor.

  Example:
    A 2x2 block of one channel becomes four channels of one pixel:

    >>> import jax.numpy as jnp
    >>> x = jnp.array([[[1], [2]], [[3], [4]]])  # [H=2, W=2, C=1]
    >>> print(pixel_unshuffle(x, 2, layout="HWC").tolist())
    [[[1, 2, 3, 4]]]
  """
  x, parsed, factors, order = _parse(x, factor, order, layout)
  spatial = parsed.spatial_shape(x.shape)
  for axis, n, s in zip(parsed.spatial_axes, spatial, factors):
    if n % s:
      raise ValueError(
          f"pixel_unshuffle needs every spatial size of x to be divisible by its factor; axis "
          f"{axis} ({parsed.spec[axis]!r}) of x.shape={x.shape} has size {n}, not divisible by "
          f"{s} (factor={factor!r})"
      )
  c = parsed.channel_axis
  deep_shape = parsed.replace_spatial(x.shape, [n // s for n, s in zip(spatial, factors)])
  deep_shape = deep_shape[:c] + (x.shape[c] * math.prod(factors),) + deep_shape[c + 1:]
  split_shape, perm = _plan(parsed, factors, order, deep_shape)
  # Viewed with its spatial axes split into (space, offset) pairs, x is the shuffled array
  # before its last reshape; the inverse permutation undoes the shuffle.
  grouped = lax.reshape(x, tuple(split_shape[a] for a in perm))
  inverse = tuple(sorted(range(len(perm)), key=perm.__getitem__))
  return lax.reshape(lax.transpose(grouped, inverse), deep_shape)
