"""Max pooling with PyTorch's indices: the downsampler whose indices ``max_unpool`` inverts."""

from __future__ import annotations

import functools
import itertools
import math
from typing import Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxup._src import checks
from jaxup._src import geometry
from jaxup._src.layout import Layout, parse_layout, spatial_ranks

INDEX_DTYPE = jnp.int32


def plane_strides(sizes) -> tuple[int, ...]:
  """Row-major strides of a spatial plane of ``sizes``: the weights of the flat index."""
  return tuple(math.prod(sizes[a + 1:]) for a in range(len(sizes)))


def check_index_range(sizes, name: str) -> None:
  """Raises if a plane of ``sizes`` has offsets that int32 indices cannot hold."""
  if math.prod(sizes) > np.iinfo(np.int32).max:
    raise ValueError(
        f"{name} has {math.prod(sizes)} positions per plane (spatial size {tuple(sizes)}); "
        "int32 indices hold at most 2**31 - 1"
    )


def _pool_geometry(sizes, windows, strides, pads, dilations, ceil_mode):
  """Output sizes and the (lo, hi) padding that the windows actually reach, per axis.

  The output size is PyTorch's: ``floor`` (or ``ceil``) of ``(n + lo + hi - d(k-1) - 1) / s``
  plus one, where in ``ceil_mode`` the last window must start inside the input or the low
  padding. ``hi`` is then trimmed or extended to exactly what the last window covers.
  """
  outs, reach = [], []
  for n, (lo, hi), k, s, d in zip(sizes, pads, windows, strides, dilations):
    extra = s - 1 if ceil_mode else 0
    out = geometry.conv_output_size(n, k, stride=s, padding=(lo, hi + extra), dilation=d)
    if ceil_mode and (out - 1) * s >= n + lo:
      out -= 1
    outs.append(out)
    reach.append((lo, (out - 1) * s + d * (k - 1) + 1 - n - lo))
  return tuple(outs), tuple(reach)


def _axis_validity(n, out, lo, k, s, d):
  """For one axis: ``valid[j, o]`` (offset ``j`` of window ``o`` is inside the input) and
  ``first[o]``, the first valid offset of window ``o``."""
  pos = np.arange(out)[None, :] * s - lo + np.arange(k)[:, None] * d
  valid = (pos >= 0) & (pos < n)
  return valid, valid.argmax(axis=0)


def _broadcast_mask(layout: Layout, per_axis) -> np.ndarray:
  """The outer product (logical and) of per-spatial-axis boolean vectors, shaped to broadcast
  against an array of ``layout`` (size one on the batch and channel axes)."""
  mask = np.ones((1,) * layout.ndim, dtype=bool)
  for axis, vec in zip(layout.spatial_axes, per_axis):
    shape = [1] * layout.ndim
    shape[axis] = vec.shape[0]
    mask = mask & vec.reshape(shape)
  return mask


def max_pool(
    x: jax.typing.ArrayLike,
    window: geometry.IntOrSeq,
    *,
    stride: Optional[geometry.IntOrSeq] = None,
    padding: geometry.Padding = 0,
    dilation: geometry.IntOrSeq = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    layout: Optional[str] = None,
) -> Union[jax.Array, tuple[jax.Array, jax.Array]]:
  r"""Max pooling over 1, 2 or 3 spatial axes, optionally with PyTorch's argmax indices.

  ``[N, *S, C] -> [N, *O, C]`` for the default channels-last layout, where ``S`` are the
  input's spatial sizes and, along each spatial axis,

  .. math::
    O = \left\lfloor \frac{S + p_{lo} + p_{hi} - d (k - 1) - 1}{s} \right\rfloor + 1

  (``ceil`` instead of ``floor`` in ``ceil_mode``, after which a last window that would
  start in the high padding is dropped, as in PyTorch and ONNX). ``k`` is the window, ``s``
  the stride, ``d`` the dilation and ``p`` the padding.

  This matches ``torch.nn.functional.max_pool{1,2,3}d(..., return_indices=True)`` bit for
  bit, including which element wins, and ONNX ``MaxPool`` (with ``jaxup.indices_to_onnx``)
  on inputs without NaN:

  * padded positions never win, even when every real value in the window is ``-inf`` or
    the dtype's minimum;
  * ties go to the first position in window order (row-major over the window offsets);
  * NaN counts as the maximum; with several NaNs in a window the last one in window order
    is chosen, exactly as PyTorch's kernels do.

  Index format: for every (batch, channel) plane, the flat row-major offset of the chosen
  element inside the plane's *unpadded* spatial extent, e.g. ``y * W + x`` in 2-D. Indices
  are int32 (PyTorch returns int64: cast if needed); ``jaxup.indices_to_tf`` and
  ``jaxup.indices_to_onnx`` convert them to TensorFlow's and ONNX's formats.

  Gradients flow to the chosen element of each window (PyTorch's ``max_pool`` backward).

  Args:
    x: the input ``[N, *S, C]`` (or as ``layout`` says), float or integer; the output keeps
      its dtype.
    window: the window size ``k``: an int or one per spatial axis.
    stride: the stride ``s``, an int or one per spatial axis; ``None`` means ``window``
      (PyTorch's default).
    padding: implicit ``-inf`` padding: an int for both sides of every axis, one int per
      axis, per-axis ``(lo, hi)`` pairs, ``"VALID"`` or ``"SAME"`` (TensorFlow's rule). Any
      padding is accepted as long as every window sees at least one input element. That is
      looser than PyTorch's ``padding <= window // 2`` and accepts all it accepts, except a
      dilated window that straddles a tiny input and sees only padding (PyTorch then returns
      ``-inf`` with an index outside the input; this raises).
    dilation: the spacing ``d`` between window elements, an int or one per spatial axis.
    ceil_mode: whether to round the output size up instead of down.
    return_indices: whether to also return the argmax indices.
    layout: the layout of ``x``, e.g. ``"NCHW"``; ``None`` is channels-last by rank
      (``NWC``, ``NHWC``, ``NDHWC``). The channel and batch axes are optional.

  Returns:
    The pooled values ``[N, *O, C]``, or ``(values, indices)`` with int32 ``indices`` of the
    same shape when ``return_indices`` is true.

  Raises:
    TypeError: if ``x`` is not float or integer, or an argument has the wrong type (a flag
      that is not a bool, such as ``ceil_mode="False"``, included).
    ValueError: if the layout does not fit ``x``, the window, stride or dilation is not
      positive, the padding is negative, or some window would see only padding.

  Example:
    >>> import jax.numpy as jnp
    >>> x = jnp.array([[1, 2, 4, 1],
    ...                [3, 4, 2, 3],
    ...                [1, 4, 3, 2],
    ...                [2, 3, 4, 1]])
    >>> values, indices = max_pool(x, 2, return_indices=True, layout="HW")
    >>> print(values.tolist(), indices.tolist())
    [[4, 4], [4, 4]] [[5, 2], [9, 14]]
  """
  x = checks.array(x, "x", kind="real")
  ceil_mode = checks.boolean(ceil_mode, "ceil_mode")
  return_indices = checks.boolean(return_indices, "return_indices")
  spec = parse_layout(layout, x.ndim, require_channels=False,
                      num_spatial=spatial_ranks(layout, x.ndim, window, stride, dilation))
  n_sp = spec.num_spatial
  windows = checks.ints(window, n_sp, "window")
  strides = windows if stride is None else checks.ints(stride, n_sp, "stride")
  dilations = checks.ints(dilation, n_sp, "dilation")
  sizes = spec.spatial_shape(x.shape)
  for axis, size in zip(spec.spatial_axes, sizes):
    if size == 0:
      raise ValueError(
          f"x must have non-empty spatial axes to pool, got shape {tuple(x.shape)} with axis "
          f"{axis} ({spec.spec[axis]!r}) empty (layout {spec.spec!r}); a window needs an element")
  pads = geometry.resolve_padding(
      geometry.normalize_padding(padding, n_sp), sizes, windows, strides, dilations)
  outs, reach = _pool_geometry(sizes, windows, strides, pads, dilations, ceil_mode)
  check_index_range(sizes, "x")

  validity = [_axis_validity(*args) for args in
              zip(sizes, outs, (lo for lo, _ in pads), windows, strides, dilations)]
  for axis, (valid, _) in enumerate(validity):
    if not valid.any(axis=0).all():
      raise ValueError(
          f"padding={padding!r} is too large: along spatial axis {axis} (size {sizes[axis]}, "
          f"window={windows[axis]}, stride={strides[axis]}, dilation={dilations[axis]}, "
          f"padding={pads[axis]}) some window sees only padding; every window needs an input "
          "element (PyTorch requires padding <= window // 2)"
      )

  return _max_pool(x, spec, windows, strides, dilations, tuple(lo for lo, _ in pads), reach,
                   outs, return_indices)


@functools.partial(jax.jit, static_argnums=tuple(range(1, 9)))
def _max_pool(x, spec: Layout, windows, strides, dilations, lows, reach, outs, return_indices):
  """The running (value, window offset) maximum over the window offsets, each a strided slice
  of the padded input: no intermediate larger than the output. Jitted so that eager calls
  compile once per configuration."""
  sizes = spec.spatial_shape(x.shape)
  validity = [_axis_validity(*args) for args in
              zip(sizes, outs, lows, windows, strides, dilations)]
  if jnp.issubdtype(x.dtype, jnp.floating):
    fill = -jnp.inf
  else:
    fill = jnp.iinfo(x.dtype).min
  pad_config = [(0, 0, 0)] * x.ndim
  for axis, (lo, hi) in zip(spec.spatial_axes, reach):
    pad_config[axis] = (lo, hi, 0)
  xp = lax.pad(x, jnp.array(fill, x.dtype), pad_config) if any(
      p != (0, 0, 0) for p in pad_config) else x

  plane = plane_strides(sizes)
  out_shape = spec.replace_spatial(x.shape, outs)
  best = best_offset = None
  for offsets in itertools.product(*(range(k) for k in windows)):
    start, limit, step = [0] * x.ndim, list(xp.shape), [1] * x.ndim
    for axis, k, s, d, o in zip(spec.spatial_axes, offsets, strides, dilations, outs):
      start[axis], limit[axis], step[axis] = k * d, k * d + (o - 1) * s + 1, s
    value = lax.slice(xp, start, limit, step)
    offset = sum(k * d * p for k, d, p in zip(offsets, dilations, plane))
    if best is None:
      best, best_offset = value, jnp.full(out_shape, offset, INDEX_DTYPE)
      continue
    # PyTorch's rule: a larger value or any NaN replaces the best, so ties keep the first
    # position and the last NaN wins. Where the earlier offsets all fell in the padding, the
    # first valid offset replaces what they left; a padded position never replaces anything.
    take = value > best
    if jnp.issubdtype(x.dtype, jnp.floating):
      take = take | jnp.isnan(value)
    valid = [v[k] for (v, _), k in zip(validity, offsets)]
    first = [f == k for (_, f), k in zip(validity, offsets)]
    if all(f.any() for f in first):
      take = take | _broadcast_mask(spec, first)
    if not all(v.all() for v in valid):
      take = take & _broadcast_mask(spec, valid)
    best = jnp.where(take, value, best)
    best_offset = jnp.where(take, jnp.asarray(offset, INDEX_DTYPE), best_offset)
  if not return_indices:
    return best

  corner = jnp.zeros(out_shape, INDEX_DTYPE)
  for axis, s, lo, p, o in zip(spec.spatial_axes, strides, lows, plane, outs):
    shape = [1] * x.ndim
    shape[axis] = o
    start = (np.arange(o, dtype=np.int64) * s - lo) * p
    corner = corner + jnp.asarray(start.reshape(shape), INDEX_DTYPE)
  return best, corner + best_offset
