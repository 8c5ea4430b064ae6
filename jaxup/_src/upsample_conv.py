"""Nearest upsampling followed by a convolution, computed at the input's resolution.

The resize-convolution block of U-Net and diffusion-VAE decoders (Odena et al. 2016,
"Deconvolution and Checkerboard Artifacts") upsamples by repetition and then convolves. Every
output position of that pair reads the low-resolution input through a handful of kernel taps,
and taps that land on the same repeated sample multiply the same value: summing them first
gives, for every output phase (position modulo the factor), a small kernel applied to the
low-resolution input. All phases go into the output channels of one stride-1 convolution,
and a depth-to-space (:func:`jaxup.pixel_shuffle`) interleaves them: the polyphase form.
"""

from __future__ import annotations

import functools
import math
from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jaxup._src import checks, geometry, sharding
from jaxup._src.conv import _check_inputs, _from_channels_last, _to_channels_last, conv
from jaxup._src.lowering import LOWERINGS
from jaxup._src.nearest import upsample_nearest


# Guide (docs/guides/convolution-lowering.md), "upsample_conv": on the CPU the polyphase form
# pays from this many low-resolution positions (batch times spatial sizes) on.
POLYPHASE_MIN_POSITIONS = 128


def _taps(kernel_size: int, factor: int, dilation: int) -> int:
  """``T``, the taps per axis of the polyphase kernel: the low-resolution samples one output
  position reads, ``floor((factor - 1 + dilation (K - 1)) / factor) + 1``."""
  return (factor - 1 + dilation * (kernel_size - 1)) // factor + 1


def _phase_matrix(kernel_size: int, factor: int, dilation: int) -> np.ndarray:
  """``[f, T, K]``: entry ``[r, t, k]`` is 1 where tap ``k`` of phase ``r`` reads sample ``t``,
  ``floor((r + k d) / f) = t``."""
  m = np.zeros((factor, _taps(kernel_size, factor, dilation), kernel_size), np.float32)
  for r in range(factor):
    for k in range(kernel_size):
      m[r, (r + k * dilation) // factor, k] = 1
  return m


def polyphase_kernel(kernel: jax.Array, factors: Sequence[int],
                     dilations: Sequence[int]) -> jax.Array:
  """The kernel ``[*K, I, O]`` summed per phase: ``[*factors, *T, I, O]``.

  Along an axis with kernel size ``K``, factor ``f`` and dilation ``d``, output phase ``r``
  reads low-resolution sample ``q + floor((r + k d) / f)`` through tap ``k``, so entry ``t`` of
  phase ``r`` is the sum of the taps with ``floor((r + k d) / f) = t``: a 0/1 matrix
  ``[f, T, K]`` per axis. Their Kronecker product applied to the kernel's taps is one matrix
  product ``[prod(f) prod(T), prod(K)] x [prod(K), I O]`` whose transpose (the kernel's
  gradient) is one product too: no slab of the kernel's size per tap in either direction.
  """
  n = len(factors)
  *kernel_sizes, i, o = kernel.shape
  mats = [_phase_matrix(k, f, d) for k, f, d in zip(kernel_sizes, factors, dilations)]
  full = functools.reduce(np.multiply.outer, mats)  # [f0, T0, K0, f1, T1, K1, ...]
  perm = [3 * a for a in range(n)] + [3 * a + 1 for a in range(n)] + [3 * a + 2 for a in range(n)]
  full = full.transpose(perm)  # [*R, *T, *K]
  lead = full.shape[:2 * n]
  rows = full.reshape(math.prod(lead), math.prod(kernel_sizes))
  out = lax.dot_general(jnp.asarray(rows, kernel.dtype),
                        kernel.reshape(math.prod(kernel_sizes), i * o),
                        (((1,), (0,)), ((), ())), precision=lax.Precision.HIGHEST)
  return out.reshape(*lead, i, o)


def _polyphase_pays(batch: int, sizes, kernel_sizes, factors, dilations) -> bool:
  """The CPU's ``"auto"`` rule: polyphase when it reads fewer taps and the input is not tiny.
  Other platforms run the unfused pair (guide, "upsample_conv")."""
  taps = math.prod(_taps(k, f, d) for k, f, d in zip(kernel_sizes, factors, dilations))
  return taps < math.prod(kernel_sizes) and batch * math.prod(sizes) >= POLYPHASE_MIN_POSITIONS


def upsample_conv(
    x: ArrayLike,
    kernel: ArrayLike,
    factor: Union[int, Sequence[int]],
    *,
    padding: geometry.Padding = 0,
    dilation: Union[int, Sequence[int]] = 1,
    groups: int = 1,
    layout: Optional[str] = None,
    precision: lax.PrecisionLike = None,
    fused: Union[bool, str] = "auto",
    lowering: str = "auto",
) -> jax.Array:
  r"""Nearest upsampling by an integer factor, then a stride-1 convolution, in one step.

  Shapes, with ``n`` spatial axes in channels-last layout:
  ``x: [N, *S, C_in]``, ``kernel: [*K, C_in // groups, C_out]`` (HWIO) ``-> [N, *S_out, C_out]``
  where along each axis ``S_out = f S + p_lo + p_hi - d (K - 1)``, ``f`` the factor, ``p`` the
  padding and ``d`` the dilation.

  The result equals ``conv(upsample_nearest(x, factor), kernel, padding=padding, ...)``, border
  included, to float rounding: ``padding`` is the padding of the convolution applied to the
  *upsampled* image, so PyTorch's ``nn.Upsample(scale_factor=2)`` followed by
  ``nn.Conv2d(..., padding=1)`` is ``upsample_conv(x, w, 2, padding=1)`` with
  ``w = kernel_from_torch(conv.weight)``, and ``"SAME"`` keeps the size ``f S``.

  With ``fused=True`` (the polyphase form) nothing is computed at the high resolution. Writing
  an output position (in the upsampled, unpadded frame) as ``p = q f + r``, ``0 <= r < f``,

  .. math::

     y[q f + r] = \sum_k w[k]\, x[q + \lfloor (r + k d) / f \rfloor]
               = \sum_{t < T} W_r[t]\, x[q + t],
     \qquad W_r[t] = \sum_{k:\ \lfloor (r + k d) / f \rfloor = t} w[k],

  with ``T = floor((f - 1 + d (K - 1)) / f) + 1`` taps (2 instead of 3 for a 3x3 kernel at
  ``f = 2``; per axis, so 4 instead of 9 in 2-D). Zero padding of the upsampled image is zero
  padding of ``x``, so the borders come out exact. The ``W_r`` are sums of static slices of the
  kernel; one stride-1 convolution of ``x`` computes every phase into its output channels and a
  depth-to-space interleaves them. ``fused=False`` runs the pair as written, and
  ``fused="auto"`` (the default) picks one when the program is lowered for its platform, by
  the rule in ``docs/guides/convolution-lowering.md``.

  The operation is linear in ``x``; its transpose (``jax.linear_transpose``, the VJP in ``x``) is
  :func:`jaxup.conv_transpose` at stride 1 followed by sum pooling over ``factor`` blocks.

  Args:
    x: the input, ``[N, *S, C_in]`` or as ``layout`` says.
    kernel: ``[*K, C_in // groups, C_out]``.
    factor: the upsampling factor, a positive int or one per spatial axis.
    padding: the padding of the convolution of the upsampled image: an int, one int per axis,
      one ``(lo, hi)`` pair per axis, ``"VALID"`` or ``"SAME"`` (output ``f S``). Zero padding.
    dilation: the kernel dilation, an int or one per spatial axis.
    groups: the number of channel groups.
    layout: the layout of ``x`` and of the output, e.g. ``"NCHW"`` or ``"HWC"``; ``None`` is
      channels-last with a batch axis by rank (``NWC``, ``NHWC``, ``NDHWC``).
    precision: passed to the convolution.
    fused: ``True`` for the polyphase form, ``False`` for upsampling then convolving, or
      ``"auto"`` (any case) to choose per platform and shape; the result is the same up to
      float rounding.
    lowering: how the convolution itself is computed, ``"auto"``, ``"xla"`` or ``"matmul"``, as
      in :func:`jaxup.conv`.

  Returns:
    The upsampled convolution in the layout of ``x``, dtype ``result_type(x, kernel)``.

  Raises:
    TypeError: for non-floating or non-array inputs, a non-integer factor, dilation or groups,
      a non-string ``layout`` or ``lowering``, or a ``fused`` that is neither a bool nor a
      string.
    ValueError: for a non-positive factor or dilation, a kernel whose rank or channels do not
      fit ``x``, ``groups`` that do not divide the channels, malformed padding or layout, an
      unknown ``lowering`` or ``fused`` string, or a dilated kernel larger than the padded
      upsampled input.

  Example:
    A 2x upsampling of ``[1, 2]`` (``[1, 1, 2, 2]``) convolved with ``[1, 10]`` and padding 1:

    >>> import jax.numpy as jnp
    >>> import jaxup
    >>> x = jnp.array([1.0, 2.0]).reshape(1, 2, 1)  # [N, W, C]
    >>> kernel = jnp.array([1.0, 10.0]).reshape(2, 1, 1)
    >>> print(jaxup.upsample_conv(x, kernel, 2, padding=1)[0, :, 0])
    [10. 11. 21. 22.  2.]
  """
  # The convolution's own checks: arrays, layout, kernel rank, channels and groups.
  x, kernel, groups, lay = _check_inputs(x, kernel, groups, layout, transpose=False)
  layout = lay.spec  # the kernel's reading of a rank-3 x, for the calls below
  n = lay.num_spatial
  factors = checks.ints(factor, n, "factor")
  dilations = checks.ints(dilation, n, "dilation")
  lowering = checks.choice(lowering, "lowering", LOWERINGS)
  if isinstance(fused, str):
    fused = checks.choice(fused, "fused", ("auto",))
  else:
    fused = checks.boolean(fused, "fused")
  *kernel_sizes, in_per_group, c_out = kernel.shape

  sizes = lay.spatial_shape(x.shape)
  up_sizes = tuple(s * f for s, f in zip(sizes, factors))
  pads = geometry.resolve_padding(
      geometry.normalize_padding(padding, n), up_sizes, kernel_sizes, (1,) * n, dilations)
  outs = geometry.conv_output_size(up_sizes, tuple(kernel_sizes), padding=pads,
                                   dilation=dilations)

  batch = 1 if lay.batch_axis is None else x.shape[lay.batch_axis]
  kw = dict(groups=groups, layout=layout, precision=precision, lowering=lowering)

  def unfused(x, kernel):
    return conv(upsample_nearest(x, factors, layout=layout), kernel, padding=pads,
                dilation=dilations, **kw)

  def polyphase(x, kernel):
    return _polyphase(x, kernel, factors, dilations, pads, outs, lay, **kw)

  if fused == "auto":
    if not _polyphase_pays(batch, sizes, kernel_sizes, factors, dilations):
      return unfused(x, kernel)
    # Decided when the program is lowered for its platform (guide, "upsample_conv").
    return lax.platform_dependent(x, kernel, cpu=polyphase, default=unfused)
  return polyphase(x, kernel) if fused else unfused(x, kernel)


def _polyphase(x, kernel, factors, dilations, pads, outs, lay, *, groups, layout, precision,
               lowering):
  """The polyphase form: one stride-1 convolution of ``x`` with every phase's kernel, then a
  depth-to-space interleave and a crop to the output."""
  n = lay.num_spatial
  *kernel_sizes, in_per_group, c_out = kernel.shape
  sizes = lay.spatial_shape(x.shape)
  # Low-resolution rows q0 <= q < q0 + qn cover the output: p = q f + r for p in
  # [-p_lo, -p_lo + S_out). Row q reads x[q : q + T], so x is padded by -q0 below.
  taps = [_taps(k, f, d) for k, f, d in zip(kernel_sizes, factors, dilations)]
  q0 = [(-lo) // f for (lo, _), f in zip(pads, factors)]
  qn = [-(-(o - lo) // f) - a for o, (lo, _), f, a in zip(outs, pads, factors, q0)]
  low_pads = [(-a, a + m + t - 1 - s) for a, m, t, s in zip(q0, qn, taps, sizes)]

  sub = polyphase_kernel(kernel, factors, dilations)  # [*R, *T, I, O]
  taps_axes, phase_axes = list(range(n, 2 * n)), list(range(n))
  if groups == 1:
    # [*T, I, *R, O]: phases before channels, each phase's channels contiguous (DCR).
    sub = jnp.transpose(sub, (*taps_axes, 2 * n, *phase_axes, 2 * n + 1))
    order = "DCR"
  else:
    # [*T, I, O, *R]: group-major output channels, each group's channels then phases (CRD).
    sub = jnp.transpose(sub, (*taps_axes, 2 * n, 2 * n + 1, *phase_axes))
    order = "CRD"
  sub = sub.reshape(*taps, in_per_group, c_out * math.prod(factors))
  y = conv(x, sub, padding=low_pads, groups=groups, layout=layout, precision=precision,
           lowering=lowering)
  # Depth to space and the crop to the output, each phase's rows taken where they start.
  y = _to_channels_last(y, lay)
  y = y.reshape(*y.shape[:-1], *((*factors, c_out) if order == "DCR" else (c_out, *factors)))
  y = y if order == "DCR" else jnp.moveaxis(y, n + 1, -1)
  starts = [-lo - a * f for (lo, _), f, a in zip(pads, factors, q0)]
  return _from_channels_last(sharding.phases_to_space(y, starts, outs, factors), lay)
