"""How a convolution is lowered: XLA's convolution or matrix products, chosen per shape.

Three bilinear maps share one geometry (the forward convolution's) and are each other's
transposes:

* ``conv``: ``(x [N, *S, C_in], w [*K, C_in // g, C_out]) -> y [N, *O, C_out]``, the strided
  cross-correlation;
* ``conv_transpose``: ``(y, w) -> x``, its transpose in ``x``, computed sub-pixel: one stride-1
  correlation of ``y`` with a kernel re-laid out by static pads, reshapes and flips, then a
  depth-to-space shuffle (no product with an inserted zero, no gather);
* ``kernel_grad``: ``(x, y) -> w``, its transpose in ``w``.

Each is a JAX primitive whose JVP follows from bilinearity and whose transposes are the other
two, so ``jax.grad``, ``jax.jvp``, ``jax.linear_transpose`` and ``jax.vmap`` of any of them, to
any order, produce only these three maps. None of them ever emits an input-dilated convolution
(``lhs_dilation != 1``), which JAX's own transpose rule for a strided convolution would: it is
slow on every backend and XLA:CPU aborts the process on some shapes.

Every array here is channels-last with one batch axis; ``conv.py`` moves layouts.

Lowerings (the ``lowering`` keyword of :func:`jaxup.conv` and :func:`jaxup.conv_transpose`):

* ``"xla"``: ``lax.conv_general_dilated``; the transpose sub-pixel around a stride-1 XLA
  convolution; the kernel gradient by JAX's rule for the kernel (which dilates the cotangent
  used as a kernel, never the input);
* ``"matmul"``: an im2col (one gather of the padded input at static positions) and one
  ``dot_general`` (the kernel gradient the same with the operands' roles exchanged); the
  transpose as col2im: one ``dot_general`` and an overlap-add of ``lax.pad`` slabs;
* ``"auto"``: on CPU, ``"matmul"`` when every image has at most 16 output positions or the
  windows barely overlap (``prod(K) <= prod(s)``; for the transpose ``<= 2.25 prod(s)``), and
  for the transpose and the kernel gradient also when some axis is padded by more than the
  kernel's span, else
  ``"xla"``; ``"xla"`` on every other platform. The rule is applied when the program is
  lowered for its platform (the CPU lowering and the default lowering differ).

The CPU rule was measured on a 2-core x86 CPU with XLA:CPU (jax 0.10.2), medians of
alternated calls in one process (``benchmarks/bench_lowering.py``; the ratios are listed next
to ``_MATMUL_MAX_POSITIONS`` and ``_COL2IM_MAX_OVERLAP``). XLA's convolution is pathologically
slow when the spatial extent is small and the channels many -- 3x3 SAME 512->512 on (1, 2, 4)
is about 95x slower than im2col + dot -- while from 8x8 images on it is as fast or faster than
any matrix-product form tried.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from jaxup._src import sharding

LOWERINGS = ("auto", "xla", "matmul")

# "auto" on CPU uses matrix products when each image has at most this many output positions,
# or when the kernel is a single tap at stride 1 (a plain product). Measured on 2 shared cores,
# 3x3 SAME stride 1, XLA conv time / im2col-dot time (medians of alternated calls):
#   (1, 2, 4, 512)->512: 95x   (8, 2, 4, 512)->512: 107x   (1, 2, 2, 1024)->1024: 15x
#   (1, 4, 4, 512)->512: 1.5x  (1, 4, 4, 256)->256: 0.95x  (16, 4, 4, 512)->256: 0.97x
#   (1, 8, 8, 256)->256: 0.35x (2, 8, 8, 512)->512: 1.0x   (8, 8, 8, 256)->256: 0.8x
#   (1, 32, 32, 128)->128: 0.7x  (8, 32, 32, 64)->64: 0.3x  (8, 64, 64, 64)->64: 0.6x
# and for 1x1 kernels: (8, 32, 32, 64)->64: 1.4x, (1, 2, 2, 1024)->1024: 1.6x.
# Per-tap matrix products summed (one dot per kernel tap) were slower than the single im2col
# dot wherever the product wins: 8.4 vs 1.6 ms on (1, 2, 4, 512), 109 vs 37 ms on
# (1, 2, 2, 1024), so im2col is the matmul form.
# The pathology is the small spatial extent, not the row count of the product. A second run
# (`python benchmarks/bench_lowering.py --formulations`, load ~12 on the 2 cores, so +-30%):
#   conv (1, 2, 4, 512): 54x, (8, 2, 4, 512): 116x, (1, 2, 2, 1024): 16x, (1, 4, 4, 512): 1.0x,
#   (16, 4, 4, 512)->256: 0.83x, (8, 16, 16, 128): 1.4x, (8, 64, 64, 64): 0.36x,
#   k3 s2 (8, 64, 64, 64): 0.27x, k2 s2 (8, 64, 64, 64)->128: 0.85x (kernel gradient 1.6x).
# Between 4x4 and 16x16 the two are within noise of each other; XLA is kept there.
_MATMUL_MAX_POSITIONS = 16
# The transpose in x as col2im (one product, then an overlap-add of prod(K) slabs) against
# sub-pixel (a kernel relayout and one stride-1 convolution), and the kernel gradient as im2col
# against XLA's, on 2 shared cores, time of XLA / sub-pixel form over matmul form:
#   transpose k2 s2 1024->512 at (1, 2, 2): 2.5x    k3 s2 64->64 at (8, 32, 32): 1.75x
#   transpose k4 s2 512->256 at (16, 4, 4): 1.7x    k2 s2 128->64 at (8, 32, 32): 1.3x
#   transpose k4 s2 128->64 at (8, 32, 32) (DCGAN): 0.5x   k4 s2 256->128 at (1, 16, 16): 1.1x
#   kernel gradient, same shapes: 2.4x, 0.35x, 1.1x, 1.3x, 0.4x, 1.0x.
# Second run (load ~12): transpose 2.0x, 2.5x, 1.4x, 0.8x, 0.5x, 1.6x.
# col2im is chosen up to prod(K) / prod(s) = 2.25 (3x3 stride 2), im2col where windows do not
# overlap or the spatial extent is small.
_COL2IM_MAX_OVERLAP = 2.25
# The input gradient of a stride-2 convolution at (8, 64, 64, 64)->64, ms per call, alternated
# (4 rounds, loaded 2 cores): jax.grad of lax.conv_general_dilated (an input-dilated XLA
# convolution) / col2im / sub-pixel / sub-pixel with im2col / one stride-1 XLA convolution per
# output phase over only that phase's taps:
#   k3 s2 p1: 9.9 / 10.0 / 12.0 / 17.5 / 9.0    k4 s2 p1: 21.4 / 14.1 / 7.5 / 11.7 / 9.7
#   k2 s2 ->128: 5.8 / 3.6 / 7.0 / 5.6 / 9.8
# The per-phase form (9 instead of 16 tap products for k3 s2) is within noise of col2im and of
# XLA's own gradient there, so it is not used; k3 s2 runs at about 65 GFLOP/s in every form.
# The kernel gradient is a convolution of x with the cotangent y as its window. When padding
# exceeds the kernel's span (lo + hi > d (K - 1), so the output is larger than the input at
# stride 1), that window overhangs x and XLA:CPU's convolution is pathologically slow. Kernel
# gradient, XLA time / im2col time, alternated, 3 rounds on 2 shared cores (load ~5):
#   2x2 pad 1 (8, 32, 32, 64)->256 (upsample_conv's polyphase kernel): 82x, 101x;
#   2x2 pad 1 ->128: 33x, 54x;  ->64: 16x;  (8, 16, 16, 64)->256: 54x;  (1, 32, 32, 64)->256: 68x;
#   3x3 pad 2 (8, 32, 32, 64)->64: 5.9x, 11x.
# Without the overhang XLA is as fast or faster: 3x3 pad 1 (8, 64, 64, 64)->64: 0.2-0.3x,
# (8, 32, 32, 64)->64: 0.36x, (8, 32, 32, 128)->256: 0.49x, 4x4 s2 (8, 64, 64, 64)->128: 0.5x;
# 2x2 pad 0 ->256: 2.0-2.5x but ->64: 0.47x (kept on XLA). Padding x explicitly and handing
# XLA a padding-free kernel gradient removes most of the pathology (58 ms against 2376 ms) but
# stays 1.6-2.5x slower than im2col there and is slower than XLA's own padding elsewhere.
# The transpose in x of such a convolution (sub-pixel: a stride-1 XLA convolution that crops)
# is slower than col2im too, sub-pixel time / col2im time, same run:
#   2x2 pad 1 (8, 32, 32, 64)->256: 2.4x, (8, 16, 16, 128)->512: 1.5x, ->64: 1.0x;
#   3x3 pad 2 (8, 32, 32, 64)->64: 1.9x, (8, 32, 32, 128)->256: 1.8x;
# while the forward convolution stays on XLA (3x3 pad 2: XLA 5x faster than im2col).
# Together this is upsample_conv's polyphase convolution (nearest 2x then a 3x3 SAME conv is
# a 2x2-tap convolution padded by 1 on each side).

_CHANNELS_LAST = {
    1: ("NWC", "WIO", "NWC"),
    2: ("NHWC", "HWIO", "NHWC"),
    3: ("NDHWC", "DHWIO", "NDHWC"),
}


class Geometry(NamedTuple):
  """The forward convolution's static geometry, per spatial axis.

  Attributes:
    sizes: ``S``, the convolution's input sizes (the transposed convolution's output sizes).
    out_sizes: ``O``, the convolution's output sizes.
    kernel_sizes: ``K``.
    strides: ``s``.
    lows: the padding on the low side of each axis; the high side is whatever makes exactly
      ``O`` windows of span ``d (K - 1) + 1`` at stride ``s`` (a negative value crops).
    dilations: ``d``, the kernel dilation.
    groups: ``g``, the number of channel groups.
  """

  sizes: tuple
  out_sizes: tuple
  kernel_sizes: tuple
  strides: tuple
  lows: tuple
  dilations: tuple
  groups: int

  @property
  def num_spatial(self) -> int:
    return len(self.sizes)

  def padded_sizes(self) -> tuple:
    """``L = (O - 1) s + d (K - 1) + 1``, the padded extent the ``O`` windows read."""
    return tuple((o - 1) * s + d * (k - 1) + 1 for o, s, d, k in
                 zip(self.out_sizes, self.strides, self.dilations, self.kernel_sizes))

  def highs(self) -> tuple:
    return tuple(p - lo - n for p, lo, n in zip(self.padded_sizes(), self.lows, self.sizes))


def _pads_beyond_kernel(geom: Geometry) -> bool:
  """Whether some axis is padded by more than the kernel's span, ``lo + hi > d (K - 1)``."""
  return any(lo + hi > d * (k - 1) for lo, hi, d, k in
             zip(geom.lows, geom.highs(), geom.dilations, geom.kernel_sizes))


def _use_matmul(geom: Geometry, lowering: str, platform: Optional[str], *,
                transpose: bool = False, kernel_grad: bool = False) -> bool:
  """The dispatch rule, for the convolution (both flags off), its transpose in ``x``
  (``transpose``: matmul there is col2im; otherwise sub-pixel) or its kernel gradient.

  On CPU, matrix products when every image has at most ``_MATMUL_MAX_POSITIONS`` output
  positions, or when the windows barely overlap: ``prod(K) <= prod(s)`` (im2col is then a
  relayout, 1x1 kernels included), ``prod(K) <= _COL2IM_MAX_OVERLAP * prod(s)`` for the
  transpose; for the transpose and the kernel gradient also when some axis is padded by more
  than the kernel's span (see ``_pads_beyond_kernel``). Elsewhere XLA's convolution
  (sub-pixel for the transpose).
  """
  if lowering != "auto":
    return lowering == "matmul"
  if platform != "cpu":
    return False
  overlap = math.prod(geom.kernel_sizes) / math.prod(geom.strides)
  return (math.prod(geom.out_sizes) <= _MATMUL_MAX_POSITIONS
          or overlap <= (_COL2IM_MAX_OVERLAP if transpose else 1)
          or ((transpose or kernel_grad) and _pads_beyond_kernel(geom)))


# ----------------------------------------------------------------------------------------------
# The three maps, as plain lax programs.


def _pad_to_windows(x: jax.Array, geom: Geometry) -> jax.Array:
  """``x [N, *S, C]`` padded (or cropped) to ``[N, *L, C]``, the extent the windows read."""
  config = [(0, 0, 0)] + [(lo, hi, 0) for lo, hi in zip(geom.lows, geom.highs())] + [(0, 0, 0)]
  if all(c == (0, 0, 0) for c in config):
    return x
  return lax.pad(x, jnp.zeros((), x.dtype), config)


def _window_indices(geom: Geometry, padded: tuple) -> np.ndarray:
  """``[prod(O) * prod(K)]`` flat positions in the padded extent, output-major then tap."""
  grids = np.meshgrid(*(np.arange(o) * s for o, s in zip(geom.out_sizes, geom.strides)),
                      *(np.arange(k) * d for k, d in zip(geom.kernel_sizes, geom.dilations)),
                      indexing="ij")
  n = geom.num_spatial
  coords = [grids[a] + grids[n + a] for a in range(n)]
  return np.ravel_multi_index(coords, padded).astype(np.int32).ravel()


def _im2col(x: jax.Array, geom: Geometry) -> jax.Array:
  """``[N, *O, T, g, C_in // g]``: every tap's view of the padded input, stacked.

  One gather of whole channel rows at static positions. The same columns as ``prod(K)``
  strided slices and a stack run as fast, but XLA:CPU compiles each slice as its
  own kernel: 0.3-1.9 s against 0.05-0.12 s for the gather, a kernel-4 stride-2 training step
  of a DCGAN generator spending most of its compile time there.
  """
  xp = _pad_to_windows(x, geom)
  tiled = sharding.tiled_columns(xp, geom.out_sizes, geom.kernel_sizes, geom.strides,
                                 geom.dilations, geom.groups)
  if tiled is not None:  # windows tile the input: a reshape, which stays sharded
    return tiled
  batch, channels = xp.shape[0], xp.shape[-1]
  padded = xp.shape[1:-1]
  flat = xp.reshape(batch, math.prod(padded), channels)
  cols = flat.at[:, _window_indices(geom, padded)].get(mode="promise_in_bounds")
  t = math.prod(geom.kernel_sizes)
  return cols.reshape(batch, *geom.out_sizes, t, geom.groups, channels // geom.groups)


def _conv_matmul(x, w, geom, precision):
  """The correlation as im2col + one ``dot_general`` (batched over groups)."""
  g = geom.groups
  cols = _im2col(x, geom)  # [N, *O, T, g, cg]
  lead = cols.shape[:-3]
  t, cg, c_out = cols.shape[-3], w.shape[-2], w.shape[-1]
  if g == 1:
    return lax.dot_general(cols.reshape(*lead, t * cg), w.reshape(t * cg, c_out),
                           (((len(lead),), (0,)), ((), ())), precision=precision)
  wg = w.reshape(t, cg, g, c_out // g)
  y = lax.dot_general(cols, wg, (((len(lead), len(lead) + 2), (0, 1)), ((len(lead) + 1,), (2,))),
                      precision=precision)  # [g, *lead, cog]
  return jnp.moveaxis(y, 0, -2).reshape(*lead, c_out)


def _conv_xla(x, w, geom, precision):
  highs = geom.highs()
  if min(highs, default=0) < 0:  # crop what no window reads; lax gets non-negative padding
    x = _pad_to_windows(x, geom)
    pads = [(0, 0)] * geom.num_spatial
  else:
    pads = list(zip(geom.lows, highs))
  return lax.conv_general_dilated(
      x, w, window_strides=geom.strides, padding=pads, rhs_dilation=geom.dilations,
      dimension_numbers=_CHANNELS_LAST[geom.num_spatial], feature_group_count=geom.groups,
      precision=precision)


def _conv_impl(x, w, *, geom, lowering, precision, platform=None):
  if _use_matmul(geom, lowering, platform):
    return _conv_matmul(x, w, geom, precision)
  return _conv_xla(x, w, geom, precision)


def _kernel_grad_matmul(x, y, geom, precision):
  g = geom.groups
  cols = _im2col(x, geom)  # [N, *O, T, g, cg]
  lead = cols.shape[:-3]
  t, cg = cols.shape[-3], cols.shape[-1]
  m = math.prod(lead)
  c_out = y.shape[-1]
  cols = cols.reshape(m, t, g, cg)
  yg = y.reshape(m, g, c_out // g)
  w = lax.dot_general(cols, yg, (((0,), (0,)), ((2,), (1,))), precision=precision)
  # [g, T, cg, cog] -> [T, cg, g, cog]
  w = jnp.transpose(w, (1, 2, 0, 3))
  return w.reshape(*geom.kernel_sizes, cg, c_out)


def _kernel_grad_xla(x, y, geom, precision):
  shape = (*geom.kernel_sizes, x.shape[-1] // geom.groups, y.shape[-1])
  # JAX's transpose rule for the kernel: a convolution of x with y as the kernel, y dilated by
  # the stride (rhs_dilation), never an input-dilated one.
  transpose = jax.linear_transpose(lambda w: _conv_xla(x, w, geom, precision),
                                   jax.ShapeDtypeStruct(shape, y.dtype))
  return transpose(y)[0]


def _kernel_grad_impl(x, y, *, geom, lowering, precision, platform=None):
  if _use_matmul(geom, lowering, platform, kernel_grad=True):
    return _kernel_grad_matmul(x, y, geom, precision)
  return _kernel_grad_xla(x, y, geom, precision)


def _subpixel_kernel(w: jax.Array, geom: Geometry) -> jax.Array:
  """The sub-pixel kernel ``[*Q, C_out // g, g * prod(s) * C_in // g]`` by pads and reshapes.

  Along one axis, padded input position ``p = q s + r`` of the forward convolution receives
  ``y[o] w[k]`` exactly when ``o s + k d = p``. Writing ``k d = q_k s + r_k``, phase ``r``
  collects the taps with ``r_k = r`` and reads ``y[q - q_k]``: a stride-1 correlation over
  ``Q = (K - 1) d // s + 1`` positions whose window position ``u`` holds the tap with
  ``q_k = Q - 1 - u``. So: dilate the kernel by ``d`` (interior zeros), pad it to ``Q s``, split
  the axis into ``(Q, s)`` and flip the ``Q`` part. No gather.
  """
  n = geom.num_spatial
  g = geom.groups
  *_, cg, c_out = w.shape
  sub = w
  for axis, (k, s, d) in enumerate(zip(geom.kernel_sizes, geom.strides, geom.dilations)):
    q = (k - 1) * d // s + 1
    span = (k - 1) * d + 1
    config = [(0, 0, 0)] * sub.ndim
    config[2 * axis] = (0, q * s - span, d - 1)
    sub = lax.pad(sub, jnp.zeros((), sub.dtype), config)
    sub = sub.reshape(*sub.shape[:2 * axis], q, s, *sub.shape[2 * axis + 1:])
    sub = lax.rev(sub, (2 * axis,))
  # [Q1, s1, ..., Qn, sn, cg, g * cog] -> [*Q, cog, g, *s, cg]
  sub = sub.reshape(*sub.shape[:-1], g, c_out // g)
  perm = ([2 * a for a in range(n)] + [2 * n + 2, 2 * n + 1] + [2 * a + 1 for a in range(n)]
          + [2 * n])
  sub = jnp.transpose(sub, perm)
  return sub.reshape(*sub.shape[:n], c_out // g, -1)


def _transpose_col2im(y, w, geom, precision):
  """The transpose in ``x`` as one matrix product and an overlap-add (col2im).

  ``y [N, *O, C_out]`` times every tap's ``w[k]^T`` in one ``dot_general`` gives
  ``[N, *O, T, C_in]``; tap ``k``'s slab lands at padded positions ``o s + k d``, placed by
  ``lax.pad`` with interior padding ``s - 1`` (no convolution), and the slabs are summed.
  """
  n = geom.num_spatial
  g = geom.groups
  cg, c_out = w.shape[-2:]
  t = math.prod(geom.kernel_sizes)
  lead = y.shape[:-1]
  if g == 1:
    z = lax.dot_general(y, w.reshape(t * cg, c_out), (((n + 1,), (1,)), ((), ())),
                        precision=precision).reshape(*lead, t, cg)
  else:
    yg = y.reshape(*lead, g, c_out // g)
    wg = w.reshape(t, cg, g, c_out // g)
    z = lax.dot_general(yg, wg, (((n + 2,), (3,)), ((n + 1,), (2,))),
                        precision=precision)  # [g, *lead, T, cg]
    z = jnp.moveaxis(z, 0, -2).reshape(*lead, t, g * cg)
  return _overlap_add(z, geom)


def _overlap_add(z, geom):
  """Sums tap ``k``'s slab ``z[..., k, :]`` at padded positions ``o s + k d``, then crops.

  Phase by phase: with ``k d = q_k s + r_k``, the slab lands on phase ``r_k`` shifted by
  ``q_k`` rows, so each phase is a sum of shifted slabs (plain pads, at the input's
  resolution) and the phases are interleaved by a reshape (depth to space).
  """
  zero = jnp.zeros((), z.dtype)
  rows = [-(-p // s) for p, s in zip(geom.padded_sizes(), geom.strides)]
  phases = {}
  for i, tap in enumerate(itertools.product(*(range(k) for k in geom.kernel_sizes))):
    offsets = [t * d for t, d in zip(tap, geom.dilations)]
    phase = tuple(o % s for o, s in zip(offsets, geom.strides))
    config = ([(0, 0, 0)] + [(o // s, m - o // s - size, 0) for o, s, m, size in
                             zip(offsets, geom.strides, rows, geom.out_sizes)] + [(0, 0, 0)])
    slab = lax.pad(z[..., i, :], zero, config)
    phases[phase] = slab if phase not in phases else phases[phase] + slab
  batch, channels = z.shape[0], z.shape[-1]
  empty = jnp.zeros((batch, *rows, channels), z.dtype)
  stacked = jnp.stack([phases.get(r, empty) for r in
                       itertools.product(*(range(s) for s in geom.strides))], axis=-2)
  stacked = stacked.reshape(batch, *rows, *geom.strides, channels)
  return sharding.phases_to_space(stacked, geom.lows, geom.sizes, geom.strides)


def _transpose_impl(y, w, *, geom, lowering, precision, platform=None):
  """The transpose in ``x`` of the convolution: ``y [N, *O, C_out] -> x [N, *S, C_in]``."""
  if lowering == "subpixel-matmul":  # internal: sub-pixel with im2col inside
    return _transpose_subpixel(y, w, geom, "matmul", precision, platform)
  if _use_matmul(geom, lowering, platform, transpose=True):
    return _transpose_col2im(y, w, geom, precision)
  return _transpose_subpixel(y, w, geom, lowering, precision, platform)


def _transpose_subpixel(y, w, geom, lowering, precision, platform):
  """The transpose in ``x`` as one stride-1 convolution and a depth-to-space shuffle."""
  n = geom.num_spatial
  g = geom.groups
  cg = w.shape[-2]
  sub = _subpixel_kernel(w, geom)
  qs = sub.shape[:n]
  # Padded positions p in [lo, lo + S) are rows q in [q0, q0 + qn) of every phase; row q reads
  # y[q - Q + 1 : q + 1].
  q0 = tuple(lo // s for lo, s in zip(geom.lows, geom.strides))
  qn = tuple(-(-(lo + size) // s) - a for lo, size, s, a in zip(geom.lows, geom.sizes,
                                                                   geom.strides, q0))
  inner = Geometry(sizes=geom.out_sizes, out_sizes=qn, kernel_sizes=qs, strides=(1,) * n,
                   lows=tuple(q - 1 - a for q, a in zip(qs, q0)), dilations=(1,) * n,
                   groups=g)
  z = _conv_impl(y, sub, geom=inner, lowering=lowering, precision=precision, platform=platform)
  # Depth to space: [N, *qn, g, *s, cg] -> [N, *qn, *s, g * cg] -> [N, *S, g * cg].
  z = z.reshape(z.shape[0], *qn, g, *geom.strides, cg)
  z = jnp.moveaxis(z, 1 + n, 1 + 2 * n)
  z = z.reshape(*z.shape[:1 + 2 * n], g * cg)
  starts = [lo - a * s for lo, a, s in zip(geom.lows, q0, geom.strides)]
  return sharding.phases_to_space(z, starts, geom.sizes, geom.strides)


# ----------------------------------------------------------------------------------------------
# The primitives.


def _eager(prim):
  @functools.lru_cache(maxsize=256)
  def jitted(params):
    return jax.jit(lambda *args: prim.bind(*args, **dict(params)))

  def impl(*args, **params):
    return jitted(tuple(sorted(params.items())))(*args)

  return impl


try:
  _ShapedArray = jax.core.ShapedArray
except AttributeError:  # where jax.core no longer re-exports it
  from jax._src.core import ShapedArray as _ShapedArray


def _define(name, impl, shape_rule):
  prim = Primitive(name)
  prim.def_impl(_eager(prim))
  prim.def_abstract_eval(
      lambda a, b, **params: _ShapedArray(shape_rule(a, b, **params),
                                          jnp.result_type(a.dtype, b.dtype)))
  mlir.register_lowering(prim, mlir.lower_fun(functools.partial(impl, platform="cpu"),
                                              multiple_results=False), platform="cpu")
  mlir.register_lowering(prim, mlir.lower_fun(impl, multiple_results=False))
  return prim


def _conv_shape(x, w, *, geom, **_):
  return (x.shape[0], *geom.out_sizes, w.shape[-1])


def _transpose_shape(y, w, *, geom, **_):
  return (y.shape[0], *geom.sizes, w.shape[-2] * geom.groups)


def _kernel_grad_shape(x, y, *, geom, **_):
  return (*geom.kernel_sizes, x.shape[-1] // geom.groups, y.shape[-1])


conv_p = _define("jaxup_conv", _conv_impl, _conv_shape)
conv_transpose_p = _define("jaxup_conv_transpose", _transpose_impl, _transpose_shape)
kernel_grad_p = _define("jaxup_conv_kernel_grad", _kernel_grad_impl, _kernel_grad_shape)

# Transposes: conv^T_x = conv_transpose, conv^T_w = kernel_grad, and so on around the triangle.
ad.defbilinear(
    conv_p,
    lambda ct, x, w, **p: conv_transpose_p.bind(ct, w, **p),
    lambda ct, x, w, **p: kernel_grad_p.bind(x, ct, **p))
ad.defbilinear(
    conv_transpose_p,
    lambda ct, y, w, **p: conv_p.bind(ct, w, **p),
    lambda ct, y, w, **p: kernel_grad_p.bind(ct, y, **p))
ad.defbilinear(
    kernel_grad_p,
    lambda ct, x, y, **p: conv_transpose_p.bind(y, ct, **p),
    lambda ct, x, y, **p: conv_p.bind(x, ct, **p))


def _fold_into_groups(a, dim, size):
  """``a [..., C]`` with a mapped axis (``None``: broadcast) -> ``[..., B * C]``, B major."""
  if dim is None:
    a = jnp.broadcast_to(a[..., None, :], (*a.shape[:-1], size, a.shape[-1]))
  else:
    a = jnp.moveaxis(a, dim, -2)
  return a.reshape(*a.shape[:-2], -1)


def _batch_rule(prim, which):
  """vmap: a mapped batch-like operand alone folds into N, otherwise B folds into groups."""

  def rule(args, dims, *, geom, **params):
    a, b = args
    da, db = dims
    size = a.shape[da] if da is not None else b.shape[db]
    if which in ("conv", "transpose") and db is None:
      a = jnp.moveaxis(a, da, 0)
      out = prim.bind(a.reshape(-1, *a.shape[2:]), b, geom=geom, **params)
      return out.reshape(size, -1, *out.shape[1:]), 0
    wide = geom._replace(groups=geom.groups * size)
    # Channels (and a kernel's output channels) become (B, g, C // g): B * g groups.
    a = _fold_into_groups(a, da, size)
    b = _fold_into_groups(b, db, size)
    out = prim.bind(a, b, geom=wide, **params)
    return out.reshape(*out.shape[:-1], size, -1), out.ndim - 1

  return rule


batching.primitive_batchers[conv_p] = _batch_rule(conv_p, "conv")
batching.primitive_batchers[conv_transpose_p] = _batch_rule(conv_transpose_p, "transpose")
batching.primitive_batchers[kernel_grad_p] = _batch_rule(kernel_grad_p, "kernel_grad")


def _hashable_precision(precision):
  if isinstance(precision, list):
    return tuple(precision)
  return precision


def correlate(x, w, geom: Geometry, *, lowering: str = "auto", precision=None) -> jax.Array:
  """The convolution ``x [N, *S, C_in], w [*K, C_in // g, C_out] -> [N, *O, C_out]``."""
  return conv_p.bind(x, w, geom=geom, lowering=lowering,
                     precision=_hashable_precision(precision))


def correlate_transpose(y, w, geom: Geometry, *, lowering: str = "auto",
                        precision=None) -> jax.Array:
  """The transpose in ``x`` of :func:`correlate`: ``y [N, *O, C_out] -> [N, *S, C_in]``."""
  return conv_transpose_p.bind(y, w, geom=geom, lowering=lowering,
                               precision=_hashable_precision(precision))


def correlate_kernel_grad(x, y, geom: Geometry, *, lowering: str = "auto",
                          precision=None) -> jax.Array:
  """The transpose in ``w`` of :func:`correlate`: ``-> [*K, C_in // g, C_out]``."""
  return kernel_grad_p.bind(x, y, geom=geom, lowering=lowering,
                            precision=_hashable_precision(precision))
