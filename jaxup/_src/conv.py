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

from jaxup._src import checks, geometry, lowering as _lowering
from jaxup._src.layout import Layout, parse_layout


def _check_inputs(x, kernel, groups, layout, *, transpose: bool):
  """Shared static checks of ``conv`` and ``conv_transpose``; returns arrays and layout."""
  x = checks.array(x, "x", kind="floating")
  kernel = checks.array(
      kernel, "kernel", kind="floating",
      torch_hint="convert PyTorch weights with jaxup.kernel_from_torch(module.weight)")
  groups = checks.integer(groups, "groups", minimum=1)
  lay = parse_layout(layout, x.ndim, num_spatial=(  # the kernel says NWC or HWC at rank 3
      (kernel.ndim - 2,) if (layout, x.ndim) == (None, 3) and kernel.ndim in (3, 4)
      else (1, 2, 3)))
  n = lay.num_spatial
  expected = ("(*spatial, out_channels // groups, in_channels)" if transpose
              else "(*spatial, in_channels // groups, out_channels)")
  chex.assert_rank(
      kernel, n + 2, exception_type=ValueError,
      custom_message=f"kernel has rank {kernel.ndim} (shape {kernel.shape}) but x has {n} "
      f"spatial axes (layout {lay.spec!r}); expected rank {n + 2}: {expected}")
  channels = lay.channels(x.shape)
  if transpose:
    if kernel.shape[-1] != channels:
      raise ValueError(
          f"x has {channels} channels but the kernel's last axis (the transposed convolution's "
          f"input channels) is {kernel.shape[-1]}; kernel shape {kernel.shape} must be "
          "(*spatial, out_channels // groups, in_channels)"
      )
    if channels % groups:
      raise ValueError(f"groups must divide the input channels ({channels}), got {groups}")
  else:
    if channels % groups:
      raise ValueError(f"groups must divide the input channels ({channels}), got {groups}")
    if kernel.shape[-2] * groups != channels:
      raise ValueError(
          f"x has {channels} channels but kernel shape {kernel.shape} expects "
          f"kernel.shape[-2] * groups = {kernel.shape[-2]} * {groups} = "
          f"{kernel.shape[-2] * groups}"
      )
    if kernel.shape[-1] % groups:
      raise ValueError(
          f"groups must divide the output channels (kernel.shape[-1] = {kernel.shape[-1]}), "
          f"got {groups}")
  dtype = jnp.result_type(x, kernel)
  return x.astype(dtype), kernel.astype(dtype), groups, lay


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
    lowering: str = "auto",
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
    precision: passed to ``lax.conv_general_dilated`` or ``lax.dot_general``.
    lowering: how the convolution and its gradients are computed, ``"auto"`` (per platform
      and shape), ``"xla"`` (XLA's convolution) or ``"matmul"`` (matrix products), any case;
      results differ only by float rounding. The formulations and the rule:
      ``docs/guides/convolution-lowering.md``.

  Returns:
    The convolution, in the layout of ``x``, with dtype ``result_type(x, kernel)``.

  The gradient in ``x`` is :func:`conv_transpose`, the gradient in ``kernel`` a correlation of
  ``x`` with the cotangent, so ``jax.grad``, ``jax.jvp``, ``jax.vmap`` and
  ``jax.linear_transpose`` compose to any order; on the CPU none of them uses an input-dilated
  convolution.

  Raises:
    TypeError: for non-floating inputs or a non-string layout or lowering.
    ValueError: for a kernel whose rank or channels do not fit ``x``, ``groups`` that do not
      divide the channels, non-positive stride or dilation, malformed padding or layout, a
      dilated kernel larger than the padded input, or an unknown lowering.

  Example:
    A worked example: a (5, 5, 3) image and a (3, 3, 3) kernel at stride 1 give a 3x3 map.

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
  x, kernel, groups, lay = _check_inputs(x, kernel, groups, layout, transpose=False)
  n = lay.num_spatial
  strides = geometry.normalize_ints(stride, n, "stride")
  dilations = geometry.normalize_ints(dilation, n, "dilation")
  pads = geometry.resolve_padding(
      geometry.normalize_padding(padding, n), lay.spatial_shape(x.shape),
      kernel.shape[:n], strides, dilations)
  # Validates that every axis has at least one output position.
  outs = geometry.conv_output_size(lay.spatial_shape(x.shape), kernel.shape[:n], stride=strides,
                            padding=pads, dilation=dilations)
  lowering = checks.choice(lowering, "lowering", _lowering.LOWERINGS)
  precision = checks.precision(precision)
  sizes = lay.spatial_shape(x.shape)
  geom = _lowering.Geometry(
      sizes=tuple(sizes), out_sizes=tuple(outs), kernel_sizes=tuple(kernel.shape[:n]),
      strides=strides, lows=tuple(lo for lo, _ in pads), dilations=dilations, groups=groups)
  y = _lowering.correlate(_to_channels_last(x, lay), kernel, geom, lowering=lowering,
                          precision=precision)
  return _from_channels_last(y, lay)


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
  geometry.check_output_padding(out_pads, strides, dilations, output_padding)
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
    lowering: str = "auto",
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
    precision: passed to ``lax.conv_general_dilated`` or ``lax.dot_general``.
    lowering: ``"auto"``, ``"xla"`` or ``"matmul"`` (any case), as in :func:`conv`
      (``docs/guides/convolution-lowering.md``).

  Returns:
    The transposed convolution, in the layout of ``x``, dtype ``result_type(x, kernel)``.

  On the CPU no formulation multiplies an inserted zero or uses an input-dilated convolution:
  every output phase (position modulo the stride) is a stride-1 correlation of ``x`` with the
  kernel taps that reach it, or one matrix product followed by an overlap-add. Its gradients
  are :func:`conv` (in ``x``) and the kernel-gradient correlation (in ``kernel``).

  Raises:
    TypeError: for non-floating inputs or a non-string layout or lowering.
    ValueError: for a kernel whose rank or channels do not fit ``x``, ``groups`` that do not
      divide the channels, non-positive stride or dilation, malformed padding or layout, an
      ``output_padding`` not smaller than the stride or the dilation, an unreachable
      ``output_size``, or an unknown lowering.

  Example:
    A worked example: a 2x2 input and a 2x2 kernel of fives at stride 1.

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
  x, kernel, groups, lay = _check_inputs(x, kernel, groups, layout, transpose=True)
  n = lay.num_spatial
  strides = geometry.normalize_ints(stride, n, "stride")
  dilations = geometry.normalize_ints(dilation, n, "dilation")
  padding = geometry.normalize_padding(padding, n)
  sizes = lay.spatial_shape(x.shape)
  kernel_sizes = kernel.shape[:n]
  outs, lows = _transpose_geometry(sizes, kernel_sizes, strides, dilations, padding,
                                   output_padding, output_size)

  lowering = checks.choice(lowering, "lowering", _lowering.LOWERINGS)
  precision = checks.precision(precision)
  geom = _lowering.Geometry(
      sizes=tuple(outs), out_sizes=tuple(sizes), kernel_sizes=tuple(kernel_sizes),
      strides=strides, lows=tuple(lows), dilations=dilations, groups=groups)
  y = _lowering.correlate_transpose(_to_channels_last(x, lay), kernel, geom,
                                    lowering=lowering, precision=precision)
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


def kernel_from_torch(weight) -> jax.Array:
  """Converts a PyTorch convolution weight to a jaxup kernel.

  ``[C_out, C_in // groups, *K]`` (``Conv{1,2,3}d.weight``) becomes
  ``[*K, C_in // groups, C_out]`` for :func:`conv`, and ``[C_in, C_out // groups, *K]``
  (``ConvTranspose{1,2,3}d.weight``) becomes ``[*K, C_out // groups, C_in]`` for
  :func:`conv_transpose`: the same move of the two leading axes to the end, no flip. The
  convolution's ``stride``, ``padding``, ``output_padding``, ``dilation`` and ``groups`` carry over
  unchanged.

  Args:
    weight: a ``torch.Tensor`` (any device; it is detached and copied to the host; bfloat16
      included) or a floating-point array of rank 3 to 5.

  Returns:
    The kernel as a ``jax.Array`` of the weight's dtype.

  Raises:
    TypeError: if ``weight`` is not a floating-point tensor or array (a PyTorch module instead
      of its ``module.weight`` included).
    ValueError: if ``weight`` does not have rank 3, 4 or 5.

  Example:
    >>> import numpy as np
    >>> import jaxup
    >>> weight = np.zeros((8, 3, 5, 4))  # Conv2d(3, 8, kernel_size=(5, 4)).weight
    >>> jaxup.kernel_from_torch(weight).shape
    (5, 4, 3, 8)
  """
  if checks.is_torch_module(weight):
    raise TypeError(
        f"weight must be a convolution weight tensor, got {checks.describe(weight)}; pass "
        "module.weight, or build the whole layer with from_torch(module) from jaxup.flax, "
        "jaxup.nnx, jaxup.haiku or jaxup.equinox")
  if checks.is_torch_tensor(weight):
    weight = checks.from_torch(weight, "weight")
  weight = checks.array(weight, "weight", kind="floating")
  checks.rank(weight, "weight", (3, 4, 5),
              "a PyTorch convolution weight [C_out, C_in // groups, *K] or "
              "[C_in, C_out // groups, *K]")
  return jnp.moveaxis(weight, (0, 1), (-1, -2))

