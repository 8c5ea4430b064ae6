"""Converters between max pooling index formats: PyTorch's (jaxup's), TensorFlow's, ONNX's.

jaxup's format (PyTorch's) is, for every (batch, channel) plane, the flat row-major offset
``p`` of the maximum inside the plane's unpadded spatial extent ``S = (D, H, W)``:
``p = (z * H + y) * W + x``. The other formats number the whole input tensor:

* TensorFlow ``tf.nn.max_pool_with_argmax`` (NHWC): ``(p * C + c)``, or with
  ``include_batch_in_index=True``, ``((b * prod(S) + p) * C + c)``.
* ONNX ``MaxPool`` ``Indices`` (NCHW): ``(b * C + c) * prod(S) + q``, where ``q`` is ``p``
  for ``storage_order=0`` (row-major) and the column-major offset (first spatial axis
  fastest: ``(x * H + y) * D + z``) for ``storage_order=1``.

The converters change the numbers only: the array keeps its shape and layout (transpose it to
NCHW yourself before handing ONNX indices to a runtime that expects that layout).
"""

from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxup._src import checks
from jaxup._src import geometry
from jaxup._src.layout import parse_layout, spatial_ranks
from jaxup._src.max_pool import check_index_range, plane_strides


def _prepare(indices, input_size, dtype, layout, largest):
  """Validates the common arguments; returns the indices, parsed layout, spatial input sizes,
  result dtype, batch and channel coordinates (arrays, or 0 when the axis is absent) and the
  channel count. ``largest(batch, channels, plane)`` is the largest index of the result."""
  indices = checks.array(indices, "indices", kind="integer")
  spec = parse_layout(layout, indices.ndim, require_channels=False,
                      num_spatial=spatial_ranks(layout, indices.ndim, input_size))
  sizes = checks.ints(input_size, spec.num_spatial, "input_size")
  check_index_range(sizes, "input_size")
  if dtype is None:
    dtype = indices.dtype
  else:
    dtype = jax.dtypes.canonicalize_dtype(checks.dtype(dtype, "dtype", kind="integer"))
  batch = 1 if spec.batch_axis is None else indices.shape[spec.batch_axis]
  channels = spec.channels(indices.shape) or 1
  top = largest(batch, channels, math.prod(sizes))
  if top > jnp.iinfo(dtype).max:
    raise ValueError(
        f"dtype={np.dtype(dtype).name} cannot hold indices up to {top} (batch {batch}, "
        f"channels {channels}, input_size {sizes}); pass dtype=jnp.int64 with x64 enabled"
    )
  coordinate = lambda axis: 0 if axis is None else lax.broadcasted_iota(
      dtype, indices.shape, axis)
  return (indices.astype(dtype), spec, sizes, dtype, coordinate(spec.batch_axis),
          coordinate(spec.channel_axis), channels)


def _storage_order(value) -> int:
  """ONNX's ``storage_order`` attribute: the int 0 (row-major) or 1 (column-major)."""
  value = checks.integer(value, "storage_order")
  if value not in (0, 1):
    raise ValueError(
        f"storage_order must be 0 (row-major) or 1 (column-major), got {value!r}")
  return value


def _reorder(flat, sizes, from_strides, to_strides):
  """Re-flattens offsets ``flat`` of a plane of ``sizes`` from one set of strides to another."""
  out = jnp.zeros_like(flat)
  for n, src, dst in zip(sizes, from_strides, to_strides):
    out = out + (flat // src) % n * dst
  return out


def _column_strides(sizes) -> tuple[int, ...]:
  return tuple(math.prod(sizes[:a]) for a in range(len(sizes)))


def indices_to_tf(
    indices: jax.typing.ArrayLike,
    input_size: geometry.IntOrSeq,
    *,
    include_batch_in_index: bool = False,
    dtype=None,
    layout: Optional[str] = None,
) -> jax.Array:
  """PyTorch-format max pooling indices to ``tf.nn.max_pool_with_argmax``'s format.

  ``[N, *O, C] -> [N, *O, C]``: each plane offset ``p`` (of the pooled input's spatial size
  ``S``) becomes ``p * C + c``, or ``(b * prod(S) + p) * C + c`` with
  ``include_batch_in_index``, where ``b`` and ``c`` are the element's batch and channel and
  ``C`` the channel count. For 1-D and 3-D this is the same flattening of ``[N, *S, C]``.

  Args:
    indices: integer indices from ``jaxup.max_pool`` (or PyTorch), ``[N, *O, C]`` or as
      ``layout`` says.
    input_size: the spatial size ``S`` of the input that was pooled, an int or one per axis.
    include_batch_in_index: TensorFlow's flag of the same name (default ``False``, as there).
    dtype: the result's integer dtype; ``None`` keeps the dtype of ``indices``. TensorFlow's
      default is int64.
    layout: the layout of ``indices``; ``None`` is channels-last by rank.

  Returns:
    The TensorFlow indices, same shape as ``indices``.

  Raises:
    TypeError: if ``indices`` are not integers, ``dtype`` is not a dtype or
      ``include_batch_in_index`` is not a bool.
    ValueError: if ``dtype`` is not an integer dtype or is too narrow, or the layout or
      ``input_size`` does not fit.

  Example:
    >>> import jax.numpy as jnp
    >>> indices = jnp.array([[[5, 0], [2, 3]], [[9, 12], [14, 15]]])[None]  # [1, 2, 2, 2]
    >>> print(indices_to_tf(indices, (4, 4)).ravel().tolist())
    [10, 1, 4, 7, 18, 25, 28, 31]
  """
  include_batch_in_index = checks.boolean(include_batch_in_index, "include_batch_in_index")
  largest = lambda n, c, s: (n if include_batch_in_index else 1) * s * c - 1
  indices, _, sizes, _, batch, channel, channels = _prepare(
      indices, input_size, dtype, layout, largest)
  if include_batch_in_index:
    indices = batch * math.prod(sizes) + indices
  return indices * channels + channel


def indices_from_tf(
    indices: jax.typing.ArrayLike,
    input_size: geometry.IntOrSeq,
    *,
    include_batch_in_index: bool = False,
    dtype=None,
    layout: Optional[str] = None,
) -> jax.Array:
  """``tf.nn.max_pool_with_argmax`` indices to PyTorch's (jaxup's) format.

  ``[N, *O, C] -> [N, *O, C]``: the inverse of :func:`indices_to_tf`, ``p = t // C`` less
  ``b * prod(S)`` when ``include_batch_in_index``. TensorFlow clamps indices of windows that
  reach into padding to the input, so they are valid plane offsets here too.

  Args:
    indices: TensorFlow argmax indices, ``[N, *O, C]`` or as ``layout`` says.
    input_size: the spatial size ``S`` of the input that was pooled, an int or one per axis.
    include_batch_in_index: whether ``indices`` include the batch (TensorFlow's flag).
    dtype: the result's integer dtype; ``None`` keeps the dtype of ``indices``.
    layout: the layout of ``indices``; ``None`` is channels-last by rank.

  Returns:
    Plane offsets for ``jaxup.max_unpool``, same shape as ``indices``.

  Raises:
    TypeError: if ``indices`` are not integers, ``dtype`` is not a dtype or
      ``include_batch_in_index`` is not a bool.
    ValueError: if ``dtype`` is not an integer dtype or is too narrow, or the layout or
      ``input_size`` does not fit.

  Example:
    >>> import jax.numpy as jnp
    >>> tf_indices = jnp.array([[[10, 1], [4, 7]], [[18, 25], [28, 31]]])[None]
    >>> print(indices_from_tf(tf_indices, (4, 4)).ravel().tolist())
    [5, 0, 2, 3, 9, 12, 14, 15]
  """
  include_batch_in_index = checks.boolean(include_batch_in_index, "include_batch_in_index")
  indices, _, sizes, _, batch, _, channels = _prepare(
      indices, input_size, dtype, layout, lambda n, c, s: s - 1)
  plane = indices // channels
  if include_batch_in_index:
    plane = plane - batch * math.prod(sizes)
  return plane


def indices_to_onnx(
    indices: jax.typing.ArrayLike,
    input_size: geometry.IntOrSeq,
    *,
    storage_order: int = 0,
    dtype=None,
    layout: Optional[str] = None,
) -> jax.Array:
  """PyTorch-format max pooling indices to ONNX ``MaxPool``'s ``Indices``.

  ``[N, *O, C] -> [N, *O, C]``: each plane offset ``p`` becomes ``(b * C + c) * prod(S) + q``
  with ``q = p`` for ``storage_order=0`` and, for ``storage_order=1``, the column-major
  offset of the same position (first spatial axis fastest), as ONNX Runtime computes it.

  Args:
    indices: integer indices from ``jaxup.max_pool`` (or PyTorch), ``[N, *O, C]`` or as
      ``layout`` says.
    input_size: the spatial size ``S`` of the input that was pooled, an int or one per axis.
    storage_order: ONNX's attribute: 0 row-major, 1 column-major.
    dtype: the result's integer dtype; ``None`` keeps the dtype of ``indices``. ONNX's is
      int64.
    layout: the layout of ``indices``; ``None`` is channels-last by rank. The result keeps it.

  Returns:
    The ONNX indices, same shape and layout as ``indices``.

  Raises:
    TypeError: if ``indices`` are not integers, ``dtype`` is not a dtype or
      ``storage_order`` is not an int (``True`` included).
    ValueError: if ``dtype`` is not an integer dtype or is too narrow, ``storage_order`` is
      not 0 or 1, or the layout or ``input_size`` does not fit.

  Example:
    >>> import jax.numpy as jnp
    >>> indices = jnp.array([[[5, 2], [9, 14]], [[0, 3], [12, 15]]])  # two planes, NHW
    >>> print(indices_to_onnx(indices, (4, 4), layout="NHW").tolist())
    [[[5, 2], [9, 14]], [[16, 19], [28, 31]]]
    >>> print(indices_to_onnx(indices, (4, 4), storage_order=1, layout="NHW").tolist())
    [[[5, 8], [6, 11]], [[16, 28], [19, 31]]]
  """
  storage_order = _storage_order(storage_order)
  indices, _, sizes, _, batch, channel, channels = _prepare(
      indices, input_size, dtype, layout, lambda n, c, s: n * c * s - 1)
  if storage_order == 1:
    indices = _reorder(indices, sizes, plane_strides(sizes), _column_strides(sizes))
  return (batch * channels + channel) * math.prod(sizes) + indices


def indices_from_onnx(
    indices: jax.typing.ArrayLike,
    input_size: geometry.IntOrSeq,
    *,
    storage_order: int = 0,
    dtype=None,
    layout: Optional[str] = None,
) -> jax.Array:
  """ONNX ``MaxPool`` ``Indices`` to PyTorch's (jaxup's) format.

  ``[N, *O, C] -> [N, *O, C]``: the inverse of :func:`indices_to_onnx`: ``q = i % prod(S)``,
  re-flattened row-major when ``storage_order=1``.

  Args:
    indices: ONNX indices, ``[N, *O, C]`` or as ``layout`` says (ONNX's own layout is
      ``"NCHW"``: pass it).
    input_size: the spatial size ``S`` of the input that was pooled, an int or one per axis.
    storage_order: ONNX's attribute: 0 row-major, 1 column-major.
    dtype: the result's integer dtype; ``None`` keeps the dtype of ``indices``.
    layout: the layout of ``indices``; ``None`` is channels-last by rank.

  Returns:
    Plane offsets for ``jaxup.max_unpool``, same shape as ``indices``.

  Raises:
    TypeError: if ``indices`` are not integers, ``dtype`` is not a dtype or
      ``storage_order`` is not an int (``True`` included).
    ValueError: if ``dtype`` is not an integer dtype or is too narrow, ``storage_order`` is
      not 0 or 1, or the layout or ``input_size`` does not fit.

  Example:
    >>> import jax.numpy as jnp
    >>> onnx_indices = jnp.array([[[5, 8], [6, 11]], [[16, 28], [19, 31]]])
    >>> print(indices_from_onnx(onnx_indices, (4, 4), storage_order=1, layout="NHW").tolist())
    [[[5, 2], [9, 14]], [[0, 3], [12, 15]]]
  """
  storage_order = _storage_order(storage_order)
  indices, _, sizes, _, _, _, _ = _prepare(
      indices, input_size, dtype, layout, lambda n, c, s: s - 1)
  plane = indices % math.prod(sizes)
  if storage_order == 1:
    plane = _reorder(plane, sizes, _column_strides(sizes), plane_strides(sizes))
  return plane
