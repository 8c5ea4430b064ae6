"""Strided convolution (the downsampler) and its transpose (the upsampler).

``conv_transpose`` is defined as the VJP of ``conv`` with the same kernel: for every argument
combination, ``conv_transpose(y, kernel, ...)`` equals
``jax.vjp(lambda x: conv(x, kernel, ...), x0)[1](y)[0]`` for an ``x0`` of the output's shape.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jaxup._src import geometry
from jaxup._src import porting
from jaxup._src.layout import Layout, parse_layout


def _check_inputs(x, kernel, groups, layout, *, transpose: bool):
  """Shared static checks of ``conv`` and ``conv_transpose``; returns arrays and layout."""
  x = jnp.asarray(x)
  kernel = jnp.asarray(kernel)
  lay = parse_layout(layout, x.ndim)
  n = lay.num_spatial
  for name, a in (("x", x), ("kernel", kernel)):
    if not jnp.issubdtype(a.dtype, jnp.inexact):
      raise TypeError(f"{name} must have a floating-point dtype, got {a.dtype}")
  expected = ("(*spatial, out_channels // groups, in_channels)" if transpose
              else "(*spatial, in_channels // groups, out_channels)")
  chex.assert_rank(
      kernel, n + 2, exception_type=ValueError,
      custom_message=f"kernel has rank {kernel.ndim} (shape {kernel.shape}) but x has {n} "
      f"spatial axes (layout {lay.spec!r}); expected rank {n + 2}: {expected}")
  if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
    raise ValueError(f"groups={groups!r} must be a positive int")
  channels = lay.channels(x.shape)
  if transpose:
    if kernel.shape[-1] != channels:
      raise ValueError(
          f"x has {channels} channels but the kernel's last axis (the transposed convolution's "
          f"input channels) is {kernel.shape[-1]}; kernel shape {kernel.shape} must be "
          "(*spatial, out_channels // groups, in_channels)"
      )
    if channels % groups:
      raise ValueError(f"groups={groups} must divide the input channels ({channels})")
  else:
    if channels % groups:
      raise ValueError(f"groups={groups} must divide the input channels ({channels})")
    if kernel.shape[-2] * groups != channels:
      raise ValueError(
          f"x has {channels} channels but kernel shape {kernel.shape} expects "
          f"kernel.shape[-2] * groups = {kernel.shape[-2]} * {groups} = "
          f"{kernel.shape[-2] * groups}"
      )
    if kernel.shape[-1] % groups:
      raise ValueError(
          f"groups={groups} must divide the output channels (kernel.shape[-1] = "
          f"{kernel.shape[-1]})"
      )
  dtype = jnp.result_type(x, kernel)
  return x.astype(dtype), kernel.astype(dtype), lay


def _batched(x: jax.Array, lay: Layout) -> tuple[jax.Array, Layout]:
  """Adds a leading batch axis for lax when the layout has none."""
  if lay.batch_axis is None:
    return x[None], lay.with_batch()
  return x, lay


def conv(
    x: ArrayLike,
    kernel: ArrayLike,
    *,
    stride: Union[int, Sequence[int]] = 1,
    padding: geometry.Padding = 0,
    dilation: Union[int, Sequence[int]] = 1,
    groups: int = 1,
    layout: Optional[str] = None,
    precision: lax.PrecisionLike = None,
) -> jax.Array:
  r"""N-d strided cross-correlation: the downsampler that ``conv_transpose`` transposes.

  Shapes, with ``n`` spatial axes in channels-last layout:
  ``x: [N, *S, C_in]``, ``kernel: [*K, C_in // groups, C_out]`` (HWIO, as in Flax and Haiku)
  ``-> [N, *S_out, C_out]`` where along each axis
  ``S_out = 1 + (S + p_lo + p_hi - d (K - 1) - 1) // stride`` (:func:`conv_output_size`).

  This is ``torch.nn.functional.conv{1,2,3}d`` (cross-correlation, no kernel flip) with the
  kernel in HWIO order: a PyTorch ``Conv2d.weight`` ``[C_out, C_in // groups, kH, kW]`` becomes a
  jaxup kernel with ``weight.transpose(2, 3, 1, 0)``.

  Args:
    x: the input, ``[N, *S, C_in]`` or as ``layout`` says.
    kernel: ``[*K, C_in // groups, C_out]``.
    stride: an int or one per spatial axis.
    padding: an int (both sides of every axis), one int per axis, one ``(lo, hi)`` pair per
      axis, ``"VALID"`` (no padding) or ``"SAME"`` (output ``ceil(S / stride)``, the extra
      padding on the high side, as in TensorFlow and ``lax``). Zero padding.
    dilation: the kernel dilation, an int or one per spatial axis.
    groups: the number of channel groups (``feature_group_count``).
    layout: the layout of ``x`` (and of the output), e.g. ``"NCHW"`` or ``"HWC"``; ``None``
      is channels-last with a batch axis by rank (``NWC``, ``NHWC``, ``NDHWC``).
    precision: passed to ``lax.conv_general_dilated``.

  Returns:
    The convolution, in the layout of ``x``, with dtype ``result_type(x, kernel)``.

  Raises:
    TypeError: for non-floating inputs or a non-string layout.
    ValueError: for a kernel whose rank or channels do not fit ``x``, ``groups`` that do not
      divide the channels, non-positive stride or dilation, malformed padding or layout, or a
      dilated kernel larger than the padded input.

  Example:
    The seed's example: a (5, 5, 3) image and a (3, 3, 3) kernel at stride 1 give a 3x3 map.

    >>> import jax.numpy as jnp
    >>> import jaxup
    >>> x = jnp.ones((5, 5, 3))
    >>> kernel = jnp.ones((3, 3, 3, 1))
    >>> y = jaxup.conv(x, kernel, layout="HWC")
    >>> y.shape
    (3, 3, 1)
    >>> print(y[..., 0])
    [[27. 27. 27.]
     [27. 27. 27.]
     [27. 27. 27.]]
  """
  x, kernel, lay = _check_inputs(x, kernel, groups, layout, transpose=False)
  n = lay.num_spatial
  strides = geometry.normalize_ints(stride, n, "stride")
  dilations = geometry.normalize_ints(dilation, n, "dilation")
  pads = geometry.resolve_padding(
      geometry.normalize_padding(padding, n), lay.spatial_shape(x.shape),
      kernel.shape[:n], strides, dilations)
  # Validates that every axis has at least one output position.
  geometry.conv_output_size(lay.spatial_shape(x.shape), kernel.shape[:n], stride=strides,
                            padding=pads, dilation=dilations)
  xb, lay_b = _batched(x, lay)
  y = lax.conv_general_dilated(
      xb, kernel, window_strides=strides, padding=pads, rhs_dilation=dilations,
      dimension_numbers=lay_b.conv_dimension_numbers(), feature_group_count=groups,
      precision=precision)
  return y if lay.batch_axis is not None else y[0]


def _transpose_geometry(sizes, kernel_sizes, strides, dilations, padding, output_padding,
                        output_size):
  """Per axis, the output size ``O`` and the forward convolution's low padding ``lo``.

  ``O`` is one of the input sizes that the forward convolution maps to ``sizes``.
  """
  n = len(sizes)
  out_pads = geometry.normalize_ints(output_padding, n, "output_padding", minimum=0)
  requested = output_size
  if output_size is not None:
    if any(out_pads):
      raise ValueError(
          f"give output_size={output_size!r} or output_padding={output_padding!r}, not both")
    output_size = geometry.normalize_ints(output_size, n, "output_size")

  if padding == "SAME":
    if any(out_pads):
      raise ValueError(
          f"output_padding={output_padding!r} cannot be used with padding='SAME', whose output "
          "is size * stride; use output_size to pick a smaller valid size")
    outs = output_size or tuple(i * s for i, s in zip(sizes, strides))
    for i, o, s in zip(sizes, outs, strides):
      if -(-o // s) != i:
        raise ValueError(
            f"output_size={requested!r} is unreachable with padding='SAME': a 'SAME' "
            f"convolution at stride {s} maps an input of size {o} to {-(-o // s)}, not {i}; "
            f"valid sizes are {(i - 1) * s + 1}..{i * s}")
    lows = tuple(geometry.same_padding(o, k, s, d)[0]
                 for o, k, s, d in zip(outs, kernel_sizes, strides, dilations))
    return outs, lows

  pads = geometry.resolve_padding(padding, sizes, kernel_sizes, strides, dilations)
  for op, s, d in zip(out_pads, strides, dilations):
    if op >= max(s, d):
      raise ValueError(
          f"output_padding={output_padding!r} must be smaller than the stride ({strides}) or "
          f"the dilation ({dilations}) along each axis")
  if output_size is None:
    outs = geometry.conv_transpose_output_size(
        sizes, kernel_sizes, stride=strides, padding=pads, output_padding=out_pads,
        dilation=dilations)
  else:
    for i, o, k, s, d, (lo, hi) in zip(sizes, output_size, kernel_sizes, strides, dilations,
                                       pads):
      smallest = (i - 1) * s - lo - hi + d * (k - 1) + 1
      if not smallest <= o < smallest + s:
        raise ValueError(
            f"output_size={requested!r} is unreachable: along an axis of size {i} with "
            f"stride {s} the valid sizes are {max(smallest, 1)}..{smallest + s - 1}")
    outs = output_size
  return outs, tuple(lo for lo, _ in pads)


def conv_transpose(
    x: ArrayLike,
    kernel: ArrayLike,
    *,
    stride: Union[int, Sequence[int]] = 1,
    padding: geometry.Padding = 0,
    output_padding: Union[int, Sequence[int]] = 0,
    output_size: Optional[Union[int, Sequence[int]]] = None,
    dilation: Union[int, Sequence[int]] = 1,
    groups: int = 1,
    layout: Optional[str] = None,
    precision: lax.PrecisionLike = None,
) -> jax.Array:
  r"""Transposed convolution, defined as the VJP of :func:`conv` with the same kernel.

  Shapes, with ``n`` spatial axes in channels-last layout:
  ``x: [N, *S, C_in]``, ``kernel: [*K, C_out // groups, C_in]`` ``-> [N, *S_out, C_out]``
  where along each axis
  ``S_out = (S - 1) stride - p_lo - p_hi + d (K - 1) + output_padding + 1``
  (:func:`conv_transpose_output_size`).

  The result is exactly what ``jax.vjp(lambda z: conv(z, kernel, stride=..., padding=...,
  dilation=..., groups=...), z0)[1](x)`` returns for ``z0`` of the output's shape: the kernel is
  the kernel *of the convolution being transposed*, ``[*K, C_out // groups, C_in]``, and
  ``padding`` is that convolution's padding. Every convention follows from that definition:

  * ``padding`` (int, per axis, or ``(lo, hi)`` pairs) trims the output as in
    ``torch.nn.functional.conv_transpose{1,2,3}d``.
  * Several input sizes map to the same forward output when ``stride > 1``; the smallest is the
    default, ``output_padding`` adds to it on the high side and ``output_size`` picks one
    directly (it must be among the sizes that map back to ``S``). As in PyTorch,
    ``output_padding`` must be smaller than the stride or the dilation; values at or above the
    stride are the VJP of the convolution with ``p_hi - output_padding``.
  * ``"SAME"`` gives ``S_out = S * stride`` (the gradient of a ``"SAME"`` convolution, as in
    TensorFlow's ``conv2d_transpose``); ``"VALID"`` is padding 0.

  Loading weights:

  * PyTorch ``ConvTranspose{1,2,3}d.weight`` ``[C_in, C_out // groups, *K]`` is already the
    forward convolution's weight: ``weight.permute(2, 3, 1, 0)`` (2-D; move the spatial axes
    first, then ``C_out // groups``, then ``C_in``). No flip. PyTorch's ``padding``,
    ``output_padding``, ``dilation`` and ``groups`` carry over unchanged.
  * Flax ``nn.ConvTranspose`` (``transpose_kernel=False``, the default) kernel
    ``[*K, C_in, C_out]`` is applied unflipped to the dilated input: use
    ``jnp.flip(k, axis=range(n)).swapaxes(-1, -2)``. With ``transpose_kernel=True`` the Flax
    kernel ``[*K, C_out, C_in]`` is already the forward kernel. Flax's string paddings follow
    ``lax.conv_transpose`` (``"VALID"`` gives ``S * stride + max(K - stride, 0)``; reproduce it
    with ``output_padding``).

  Args:
    x: the input, ``[N, *S, C_in]`` or as ``layout`` says.
    kernel: the forward convolution's kernel, ``[*K, C_out // groups, C_in]``.
    stride: the forward stride (the upsampling factor), an int or one per spatial axis.
    padding: the forward convolution's padding: an int, one int per axis, one ``(lo, hi)`` pair
      per axis, ``"SAME"`` or ``"VALID"``.
    output_padding: extra output on the high side of each axis, an int or one per axis.
    output_size: the spatial output size, an int or one per axis; an alternative to
      ``output_padding``.
    dilation: the kernel dilation, an int or one per spatial axis.
    groups: the number of channel groups.
    layout: the layout of ``x`` and of the output; ``None`` is channels-last with a batch axis.
    precision: passed to ``lax.conv_general_dilated``.

  Returns:
    The transposed convolution, in the layout of ``x``, dtype ``result_type(x, kernel)``.

  Raises:
    TypeError: for non-floating inputs or a non-string layout.
    ValueError: for a kernel whose rank or channels do not fit ``x``, ``groups`` that do not
      divide the channels, non-positive stride or dilation, malformed padding or layout, an
      ``output_padding`` not smaller than the stride or the dilation, or an unreachable
      ``output_size``.

  Example:
    The seed's example: a 2x2 input and a 2x2 kernel of fives at stride 1.

    >>> import jax.numpy as jnp
    >>> import jaxup
    >>> x = jnp.array([[1.0, 2.0], [3.0, 4.0]])[:, :, None]  # [H, W, C]
    >>> kernel = jnp.full((2, 2, 1, 1), 5.0)
    >>> print(jaxup.conv_transpose(x, kernel, layout="HWC")[..., 0])
    [[ 5. 15. 10.]
     [20. 50. 30.]
     [15. 35. 20.]]
    >>> jaxup.conv_transpose_output_size((2, 2), 2)
    (3, 3)
  """
  x, kernel, lay = _check_inputs(x, kernel, groups, layout, transpose=True)
  n = lay.num_spatial
  strides = geometry.normalize_ints(stride, n, "stride")
  dilations = geometry.normalize_ints(dilation, n, "dilation")
  padding = geometry.normalize_padding(padding, n)
  sizes = lay.spatial_shape(x.shape)
  kernel_sizes = kernel.shape[:n]
  outs, lows = _transpose_geometry(sizes, kernel_sizes, strides, dilations, padding,
                                   output_padding, output_size)

  y = _subpixel_transpose(_to_channels_last(x, lay), _swap_in_out(kernel, n, groups), sizes,
                          outs, lows, strides, dilations, groups, precision)
  return _from_channels_last(y, lay)


def _to_channels_last(x: jax.Array, lay: Layout) -> jax.Array:
  """``x`` as ``[N, *spatial, C]`` (a batch axis of 1 is added if the layout has none)."""
  if lay.batch_axis is None:
    x, lay = x[None], lay.with_batch()
  return jnp.transpose(x, (lay.batch_axis, *lay.spatial_axes, lay.channel_axis))


def _from_channels_last(y: jax.Array, lay: Layout) -> jax.Array:
  """The inverse of :func:`_to_channels_last`."""
  batched = lay.with_batch()
  order = (batched.batch_axis, *batched.spatial_axes, batched.channel_axis)
  y = jnp.transpose(y, tuple(int(i) for i in np.argsort(order)))
  return y if lay.batch_axis is not None else y[0]


def _swap_in_out(kernel: jax.Array, n: int, groups: int) -> jax.Array:
  """``[*K, C_out // g, C_in]`` forward kernel -> ``[*K, C_in // g, C_out]``, per group."""
  *k, out_per_group, in_channels = kernel.shape
  kernel = kernel.reshape(*k, out_per_group, groups, in_channels // groups)
  kernel = jnp.swapaxes(kernel, n, n + 2)
  return kernel.reshape(*k, in_channels // groups, groups * out_per_group)


def _phase_table(kernel_size: int, stride: int, dilation: int) -> np.ndarray:
  """Which kernel tap feeds each (window position, output phase) of the sub-pixel kernel.

  Output position ``m = q * stride + r`` (padded coordinates) receives ``x[j] * w[k]`` exactly
  when ``j * stride + k * dilation = m``: tap ``k`` feeds phase ``r = k * dilation % stride``
  and reads ``x[q - t]`` with ``t = k * dilation // stride``. As a correlation over a window of
  ``T = t_max + 1`` input positions, window position ``u`` holds tap ``t = t_max - u``.

  Returns:
    An int array ``[T, stride]`` of tap indices, ``kernel_size`` where no tap belongs.
  """
  t_max = (kernel_size - 1) * dilation // stride
  table = np.full((t_max + 1, stride), kernel_size, dtype=np.int32)
  for k in range(kernel_size):
    table[t_max - k * dilation // stride, k * dilation % stride] = k
  return table


def _subpixel_transpose(x, kernel, sizes, outs, lows, strides, dilations, groups, precision):
  """The transposed convolution as one stride-1 convolution and a depth-to-space shuffle.

  ``x`` is ``[N, *S, C_in]`` and ``kernel`` ``[*K, C_in // g, C_out]`` (not flipped). The
  textbook form, a convolution of the stride-dilated input with the flipped kernel, multiplies
  the inserted zeros; here every output phase ``r`` (position modulo the stride) gets its own
  output channels, computed from the kernel taps that reach it, so the work is done at the
  input's resolution and the phases are interleaved afterwards.
  """
  n = len(sizes)
  tables = [_phase_table(k, s, d) for k, s, d in zip(kernel.shape[:n], strides, dilations)]
  # Gather the sub-pixel kernel [*T, *strides, C_in // g, C_out] axis by axis; index K of
  # each axis is a zero tap.
  sub = kernel
  for axis, table in enumerate(tables):
    sub = jnp.pad(sub, [(0, 1) if a == axis else (0, 0) for a in range(sub.ndim)])
    sub = jnp.take(sub, table.reshape(-1), axis=axis)
    sub = sub.reshape(*sub.shape[:axis], *table.shape, *sub.shape[axis + 1:])
    sub = jnp.moveaxis(sub, axis + 1, n + axis)  # the phase axis goes after the window axes
  # [*T, *R, C_in // g, C_out] -> [*T, C_in // g, groups * prod(R) * (C_out // g)].
  c_in_g, c_out = sub.shape[-2:]
  sub = sub.reshape(*sub.shape[:-1], groups, c_out // groups)
  sub = jnp.moveaxis(sub, tuple(range(n, 2 * n)), tuple(range(n + 2, 2 * n + 2)))
  sub = sub.reshape(*sub.shape[:n], c_in_g, -1)

  # Every phase covers the same rows q of the padded output m = q * s + r with
  # m in [lo, lo + out): q in [q0, q0 + qn); row q reads x[q - t_max : q + 1].
  q0 = [lo // s for lo, s in zip(lows, strides)]
  qn = [-(-(lo + o) // s) - a for lo, o, s, a in zip(lows, outs, strides, q0)]
  pads = [(t.shape[0] - 1 - a, a + m - i) for t, a, m, i in zip(tables, q0, qn, sizes)]
  y = lax.conv_general_dilated(
      x, sub, window_strides=(1,) * n, padding=pads,
      dimension_numbers=_CHANNELS_LAST[n],
      feature_group_count=groups, precision=precision)

  # Depth to space: [N, *Q, g, *R, C_out // g] -> [N, Q1 * R1, ..., C_out], then crop.
  batch = y.shape[0]
  y = y.reshape(batch, *qn, groups, *strides, c_out // groups)
  perm = [0]
  for a in range(n):
    perm += [1 + a, 2 + n + a]
  perm += [1 + n, 2 + 2 * n]
  y = jnp.transpose(y, perm).reshape(batch, *(m * s for m, s in zip(qn, strides)), c_out)
  starts = [0] + [lo - a * s for lo, a, s in zip(lows, q0, strides)] + [0]
  return lax.slice(y, starts, [b + e for b, e in zip(starts, y.shape[:1] + tuple(outs) + (c_out,))])


_CHANNELS_LAST = {
    1: ("NWC", "WIO", "NWC"),
    2: ("NHWC", "HWIO", "NHWC"),
    3: ("NDHWC", "DHWIO", "NDHWC"),
}


def kernel_from_torch(weight) -> jax.Array:
  """Converts a PyTorch convolution weight to a jaxup kernel.

  ``[C_out, C_in // groups, *K]`` (``Conv{1,2,3}d.weight``) becomes
  ``[*K, C_in // groups, C_out]`` for :func:`conv`, and ``[C_in, C_out // groups, *K]``
  (``ConvTranspose{1,2,3}d.weight``) becomes ``[*K, C_out // groups, C_in]`` for
  :func:`conv_transpose`: the same move of the two leading axes to the end, no flip. The
  convolution's ``stride``, ``padding``, ``output_padding``, ``dilation`` and ``groups`` carry over
  unchanged.

  Args:
    weight: a ``torch.Tensor`` (any device and float dtype, bfloat16 included; it is detached
      and copied to the host) or an array of rank 3 to 5. A module is refused: pass its
      ``.weight``, or load the whole layer with ``from_torch`` of ``jaxup.flax``, ``jaxup.nnx``,
      ``jaxup.haiku`` or ``jaxup.equinox``.

  Returns:
    The kernel as a ``jax.Array`` of the weight's dtype.

  Raises:
    TypeError: if ``weight`` is a module or not numeric.
    ValueError: if ``weight`` does not have rank 3, 4 or 5.

  Example:
    >>> import numpy as np
    >>> import jaxup
    >>> weight = np.zeros((8, 3, 5, 4))  # Conv2d(3, 8, kernel_size=(5, 4)).weight
    >>> jaxup.kernel_from_torch(weight).shape
    (5, 4, 3, 8)
  """
  return porting.kernel_from_torch_weight(weight)
