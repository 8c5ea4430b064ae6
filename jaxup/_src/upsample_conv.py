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

import math
from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxup._src import checks, geometry
from jaxup._src.conv import _check_inputs, conv
from jaxup._src.lowering import LOWERINGS
from jaxup._src.nearest import upsample_nearest
from jaxup._src.pixel_shuffle import pixel_shuffle


# "auto" takes the polyphase form when the low-resolution convolution has at least this many
# positions (batch times spatial sizes). Below it, building the phase kernels (prod(factor) *
# prod(T) * C_in * C_out values per call) costs more than the taps they save. Measured on 2
# shared cores with a 3x3 kernel at factor 2, polyphase / unfused time: 6.7 at (1, 2, 2, 512),
# 1.7 at (1, 4, 4, 512), 1.25 at (1, 8, 8, 256); 0.34 at (1, 16, 16, 256), 0.36 at
# (1, 32, 32, 128), 0.23 at (8, 8, 8, 128), 0.51 at (2, 16, 16, 128), 0.45 at (8, 32, 32, 64).
POLYPHASE_MIN_POSITIONS = 128


def _taps(kernel_size: int, factor: int, dilation: int) -> int:
  """``T``, the taps per axis of the polyphase kernel: the low-resolution samples one output
  position reads, ``floor((factor - 1 + dilation (K - 1)) / factor) + 1``."""
  return (factor - 1 + dilation * (kernel_size - 1)) // factor + 1


def polyphase_kernel(kernel: jax.Array, factors: Sequence[int],
                     dilations: Sequence[int]) -> jax.Array:
  """The kernel ``[*K, I, O]`` summed per phase: ``[*factors, *T, I, O]``.

  Along an axis with kernel size ``K``, factor ``f`` and dilation ``d``, output phase ``r``
  reads low-resolution sample ``q + floor((r + k d) / f)`` through tap ``k``. The taps with
  ``floor((r + k d) / f) = t`` form the contiguous range ``ceil((t f - r) / d) <= k <
  ceil(((t + 1) f - r) / d)``, so entry ``t`` of phase ``r`` is a sum of whole ``[..., I, O]``
  slices of the kernel. The phase and tap axes are built in front of ``[I, O]``, which stay
  contiguous: XLA:CPU is slow at sums and stacks that interleave a small axis with them.
  """
  out = kernel  # [R_0 .. R_{a-1}, T_0 .. T_{a-1}, K_a .. K_{n-1}, I, O] before axis a
  for a, (f, d) in enumerate(zip(factors, dilations)):
    axis = 2 * a
    size = out.shape[axis]
    num_taps = _taps(size, f, d)
    zero = jnp.zeros_like(lax.index_in_dim(out, 0, axis, keepdims=False))
    phases = []
    for r in range(f):
      taps = []
      for t in range(num_taps):
        lo = min(max(-(-(t * f - r) // d), 0), size)
        hi = max(min(-(-((t + 1) * f - r) // d), size), lo)
        part = zero  # no tap lands on this sample
        for k in range(lo, hi):
          tap = lax.index_in_dim(out, k, axis, keepdims=False)
          part = tap if k == lo else part + tap
        taps.append(part)
      phases.append(jnp.stack(taps, axis=axis))
    out = jnp.stack(phases, axis=a)
  return out


def _polyphase_pays(batch: int, sizes, kernel_sizes, factors, dilations) -> bool:
  """The "auto" rule: polyphase when it reads fewer taps and the input is not tiny."""
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
  ``fused="auto"`` (the default) picks the polyphase form when it reads fewer taps per output
  and the input has at least ``POLYPHASE_MIN_POSITIONS`` (128) positions (batch times spatial
  sizes). On XLA:CPU with a 3x3 kernel at factor 2 the polyphase form is 2-4x faster from 256
  positions on (``(1, 16, 16, C)``, ``(8, 8, 8, C)``, ``(8, 32, 32, C)``) and slower on tiny
  inputs (``(1, 2..8, 2..8, C)``), where building its ``prod(factor)`` phase kernels costs
  more than the convolution. On GPUs ``"auto"`` runs the unfused pair: on an H100 the
  polyphase training step at ``(1, 32, 32, 512)`` took 0.87 ms against 0.47 ms unfused, and
  its forward pass at ``(8, 32, 32, 64)`` 0.155 ms against 0.136 ms.

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
      ``"auto"`` (any case) to choose from the shapes as above; the result is the same up to
      float rounding.
    lowering: how the convolution itself is computed, ``"auto"``, ``"xla"`` or ``"matmul"``, as
      in :func:`jaxup.conv`. With ``"auto"`` on CPU the polyphase convolution's gradients
      use matrix products (it is padded beyond its kernel's span, where XLA:CPU's kernel
      gradient is 25-100x slower) and its forward pass XLA's convolution.

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
  if fused == "auto":
    # Off the CPU, XLA fuses the unfused pair well and the polyphase form lost (see above).
    fused = (jax.default_backend() == "cpu"
             and _polyphase_pays(batch, sizes, kernel_sizes, factors, dilations))
  if not fused:
    return conv(upsample_nearest(x, factors, layout=layout), kernel, padding=pads,
                dilation=dilations, groups=groups, layout=layout, precision=precision,
                lowering=lowering)

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
  y = pixel_shuffle(y, factors, order=order, layout=layout)
  start = [0] * y.ndim
  limit = list(y.shape)
  for axis, (lo, _), f, a, o in zip(lay.spatial_axes, pads, factors, q0, outs):
    start[axis] = -lo - a * f
    limit[axis] = start[axis] + o
  return lax.slice(y, start, limit)
