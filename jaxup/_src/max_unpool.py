"""Max unpooling: each value back at the position its max pooling index names, zeros elsewhere."""

from __future__ import annotations

import functools
import math
from typing import Optional, Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxup._src import checks
from jaxup._src import geometry
from jaxup._src.layout import Layout, parse_layout, spatial_ranks
from jaxup._src.max_pool import check_index_range, plane_strides


def _requested_sizes(spec: Layout, shape, output_size) -> tuple[int, ...]:
  """The spatial sizes of ``output_size``: spatial sizes, or a full shape (PyTorch allows
  both) whose non-spatial sizes must equal ``shape``'s."""
  if not isinstance(output_size, (str, bytes)) and hasattr(output_size, "__len__") and (
      len(output_size) == spec.ndim != spec.num_spatial):
    full = checks.ints(output_size, spec.ndim, "output_size", minimum=0)
    for axis in range(spec.ndim):
      if axis not in spec.spatial_axes and full[axis] != shape[axis]:
        raise ValueError(
            f"output_size={tuple(output_size)!r} has {full[axis]} on axis {axis} "
            f"({spec.spec[axis]!r}) but x has {shape[axis]}; only spatial sizes may change"
        )
    return spec.spatial_shape(full)
  return checks.ints(output_size, spec.num_spatial, "output_size", minimum=0)


def _check_reachable(sizes, defaults, strides, output_size) -> None:
  """PyTorch's rule: each size strictly within one stride of the default size."""
  for axis, (size, default, s) in enumerate(zip(sizes, defaults, strides)):
    if not default - s < size < default + s:
      raise ValueError(
          f"output_size={tuple(output_size)!r} cannot be reached: spatial axis {axis} must be "
          f"strictly between {default - s} and {default + s} (the default {default} plus or "
          f"minus the stride {s}), got {size}"
      )


def _plane_coordinates(flat, sizes) -> list[jax.Array]:
  """The spatial coordinates of row-major plane offsets ``flat`` in a plane of ``sizes``."""
  return [(flat // p) % n for n, p in zip(sizes, plane_strides(sizes))]


def _unpool_scatter(x, indices, spec: Layout, out_sizes):
  """Any indices: each value goes to its flat offset in its plane; the last of several values
  aimed at one position wins; out-of-range indices are dropped.

  Every (batch, channel) plane is its own scatter: the batch and channel axes are batching
  dimensions of the scatter and of the gather, so nothing mixes planes and a batch-sharded
  input stays sharded. The winner of each output position is the largest row-major ordinal of
  the values aimed at it (a max, so the result does not depend on the order in which the
  scatter applies its updates); the output gathers the winners' values.
  """
  out_shape = spec.replace_spatial(x.shape, out_sizes)
  if x.size == 0 or math.prod(out_shape) == 0:
    return jnp.zeros(out_shape, x.dtype)
  axes, in_sizes = spec.spatial_axes, spec.spatial_shape(x.shape)
  if axes == tuple(range(axes[0], axes[0] + len(axes))) and len(axes) > 1:
    # Adjacent spatial axes (NHWC, NCHW, ...): one flat plane axis, one coordinate per value.
    flat = lambda a, sizes: a.reshape(a.shape[:axes[0]] + (math.prod(sizes),)
                                      + a.shape[axes[-1] + 1:])
    x, indices = flat(x, in_sizes), flat(indices, in_sizes)
    axes, in_sizes, plane_out = (axes[0],), (math.prod(in_sizes),), (math.prod(out_sizes),)
  else:
    plane_out = tuple(out_sizes)
  planes = tuple(a for a in range(x.ndim) if a not in axes)
  in_range = (indices >= 0) & (indices < math.prod(out_sizes))
  target = _plane_coordinates(jnp.where(in_range, indices, 0), plane_out)
  # A dropped index points one past the end of the first spatial axis.
  target[0] = jnp.where(in_range, target[0], plane_out[0])
  target = jnp.stack(target, axis=-1).astype(jnp.int32)
  ordinal = sum(lax.broadcasted_iota(jnp.int32, x.shape, axis) * p
                for axis, p in zip(axes, plane_strides(in_sizes)))
  scatter_dims = lax.ScatterDimensionNumbers(
      update_window_dims=(), inserted_window_dims=axes, scatter_dims_to_operand_dims=axes,
      operand_batching_dims=planes, scatter_indices_batching_dims=planes)
  winner_shape = list(x.shape)
  for axis, n in zip(axes, plane_out):
    winner_shape[axis] = n
  winner = lax.scatter_max(
      jnp.full(winner_shape, -1, jnp.int32), target, ordinal, scatter_dims,
      mode=lax.GatherScatterMode.FILL_OR_DROP)
  source = jnp.stack(_plane_coordinates(jnp.maximum(winner, 0), in_sizes), axis=-1)
  gather_dims = lax.GatherDimensionNumbers(
      offset_dims=(), collapsed_slice_dims=axes, start_index_map=axes,
      operand_batching_dims=planes, start_indices_batching_dims=planes)
  gathered = lax.gather(x, source, gather_dims, (1,) * x.ndim,
                        mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS)
  return jnp.where(winner >= 0, gathered, jnp.zeros((), x.dtype)).reshape(out_shape)


def _window_coordinates(spec: Layout, in_sizes, windows, pads, out_sizes, rank):
  """For each spatial axis, the output coordinate of every (window, offset) pair, times the
  axis' plane stride, shaped ``[in, k]`` at the axis' place in an array of ``rank`` axes
  where every spatial axis of ``spec`` is split into ``(in, k)``."""
  terms = []
  for a, (n, k, (lo, _), p) in enumerate(zip(in_sizes, windows, pads, plane_strides(out_sizes))):
    axis = spec.spatial_axes[a] + a
    shape = [1] * rank
    shape[axis], shape[axis + 1] = n, k
    coord = np.arange(n)[:, None] * k + np.arange(k)[None, :] - lo
    terms.append((coord * p).reshape(shape))
  return terms


def _split_spatial(spec: Layout, shape) -> list[int]:
  """``shape`` with a size-one axis after each spatial axis."""
  split = []
  for axis, size in enumerate(shape):
    split += [size, 1] if axis in spec.spatial_axes else [size]
  return split


def _unpool_tiled(x, indices, spec: Layout, windows, pads, out_sizes):
  """Indices inside their own non-overlapping window: one elementwise pass over the output
  that keeps each window's value where the position's flat offset equals its index."""
  in_sizes = spec.spatial_shape(x.shape)
  split = _split_spatial(spec, x.shape)
  xs, ids = x.reshape(split), indices.reshape(split)
  flat = None
  for term in _window_coordinates(spec, in_sizes, windows, pads, out_sizes, len(split)):
    term = jnp.asarray(term, indices.dtype)
    flat = term if flat is None else flat + term
  tiled = jnp.where(ids == flat, xs, jnp.zeros((), x.dtype))
  tiled = tiled.reshape(spec.replace_spatial(
      x.shape, [n * k for n, k in zip(in_sizes, windows)]))
  config = [(0, 0, 0)] * x.ndim
  for axis, n, k, (lo, _), size in zip(spec.spatial_axes, in_sizes, windows, pads, out_sizes):
    config[axis] = (-lo, size - (n * k - lo), 0)
  return lax.pad(tiled, jnp.zeros((), x.dtype), config)


def max_unpool(
    x: jax.typing.ArrayLike,
    indices: jax.typing.ArrayLike,
    window: geometry.IntOrSeq,
    *,
    stride: Optional[geometry.IntOrSeq] = None,
    padding: geometry.Padding = 0,
    output_size: Optional[Sequence[int]] = None,
    layout: Optional[str] = None,
) -> jax.Array:
  r"""Max unpooling: zeros everywhere except each value of ``x`` at its index.

  ``[N, *I, C] -> [N, *O, C]`` for the default channels-last layout, where ``I`` are the
  pooled spatial sizes and, along each spatial axis, :math:`O = (I - 1) s - p_{lo} - p_{hi} + k`
  for the window ``k``, stride ``s`` and padding ``p`` of the max pooling being undone, or
  ``output_size``, strictly within one stride of it.

  This matches ``torch.nn.functional.max_unpool{1,2,3}d`` and, after
  ``jaxup.indices_from_onnx``, ONNX ``MaxUnpool``. ``indices`` are PyTorch's, as
  ``max_pool(..., return_indices=True)`` returns them: the flat row-major offset in each
  (batch, channel) plane of the output (``y * W_out + x`` in 2-D). With ``stride == window``
  a value lands only inside its own window; with overlapping windows any in-range index is
  honoured and the last of several values with one index wins; an index outside the output is
  dropped (PyTorch raises). Which rule applies depends on the configuration, never on the
  values of ``indices``. Linear in ``x``: the transpose is the gather at ``indices``.

  See ``docs/techniques/max_unpool.md`` for the rules in full and the index formats.

  Args:
    x: the pooled values ``[N, *I, C]`` (or as ``layout`` says), float or integer; the
      output keeps its dtype.
    indices: integer indices with the shape of ``x``.
    window: the pooling window ``k``, an int or one per spatial axis.
    stride: the pooling stride ``s``, an int or one per spatial axis; ``None`` means
      ``window``.
    padding: the pooling padding: an int, one int per axis, per-axis ``(lo, hi)`` pairs or
      ``"VALID"``; ``"SAME"`` with an ``output_size`` resolves TensorFlow's rule for that size.
    output_size: the spatial output sizes ``O``, or a full output shape whose non-spatial
      sizes equal ``x``'s (as ``torch.nn.MaxUnpool2d`` accepts). ``None`` gives the default.
    layout: the layout of ``x`` and ``indices``, e.g. ``"NCHW"``; ``None`` is channels-last by
      rank (``NWC``, ``NHWC``, ``NDHWC``). The channel and batch axes are optional.

  Returns:
    ``[N, *O, C]``: zeros except ``x``'s values at their indices, with ``x``'s dtype.

  Raises:
    TypeError: if ``x`` is not float or integer, ``indices`` are not integers, or an argument
      has the wrong type.
    ValueError: if the shapes of ``x`` and ``indices`` differ, the layout does not fit, the
      window or stride is not positive, or ``output_size`` cannot be reached.

  Example:
    >>> import jax.numpy as jnp
    >>> values = jnp.array([[1, 2], [3, 4]])
    >>> indices = jnp.array([[5, 2], [9, 14]])
    >>> for row in max_unpool(values, indices, 2, layout="HW").tolist():
    ...   print(row)
    [0, 0, 2, 0]
    [0, 1, 0, 0]
    [0, 3, 0, 0]
    [0, 0, 4, 0]
  """
  x = checks.array(x, "x", kind="real")
  indices = checks.array(indices, "indices", kind="integer")
  spec = parse_layout(layout, x.ndim, require_channels=False,
                      num_spatial=spatial_ranks(layout, x.ndim, window, stride))
  chex.assert_equal_shape(
      (x, indices), exception_type=ValueError,
      custom_message=f"indices must have the shape of x {x.shape} (one index per value), got "
      f"{indices.shape}")
  n_sp = spec.num_spatial
  windows = checks.ints(window, n_sp, "window")
  strides = windows if stride is None else checks.ints(stride, n_sp, "stride")
  in_sizes = spec.spatial_shape(x.shape)
  requested = None if output_size is None else _requested_sizes(spec, x.shape, output_size)
  pads = geometry.normalize_padding(padding, n_sp)
  if pads == "SAME":
    if requested is None:
      raise ValueError(
          "padding='SAME' depends on the size before pooling: pass output_size as well, or "
          "explicit (lo, hi) padding"
      )
    pads = geometry.resolve_padding(pads, requested, windows, strides, (1,) * n_sp)
  pads = geometry.resolve_padding(pads, in_sizes, windows, strides, (1,) * n_sp)
  # The unpadded size less the padding: padding may consume it all, which only an
  # output_size can repair (as in PyTorch), so the padding is not passed to the helper.
  unpadded = geometry.conv_transpose_output_size(in_sizes, windows, stride=strides)
  defaults = tuple(m - lo - hi for m, (lo, hi) in zip(unpadded, pads))
  out_sizes = defaults
  if requested is not None:
    _check_reachable(requested, defaults, strides, output_size)
    out_sizes = requested
  elif min(defaults) < 0:
    raise ValueError(
        f"padding={padding!r} is larger than the unpadded output {unpadded}: the output size "
        f"would be {defaults}"
    )
  check_index_range(out_sizes, "the output")

  return _max_unpool(x, indices, spec, windows, strides, pads, out_sizes)


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5, 6))
def _max_unpool(x, indices, spec: Layout, windows, strides, pads, out_sizes):
  """Non-overlapping windows: the elementwise pass; overlapping ones: the per-plane scatter.
  The choice is static, so no value of ``indices`` decides anything. Jitted so that eager
  calls compile once per configuration."""
  indices = indices.astype(jnp.promote_types(indices.dtype, jnp.int32))
  if strides == windows:
    return _unpool_tiled(x, indices, spec, windows, pads, out_sizes)
  return _unpool_scatter(x, indices, spec, out_sizes)
