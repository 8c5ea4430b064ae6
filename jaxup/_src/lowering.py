"""How a convolution is lowered: three bilinear JAX primitives and one rule per primitive.

Three maps share one geometry (the forward convolution's) and are each other's transposes:

* ``conv``: ``(x [N, *S, C_in], w [*K, C_in // g, C_out]) -> y [N, *O, C_out]``, the strided
  cross-correlation;
* ``conv_transpose``: ``(y, w) -> x``, its transpose in ``x``;
* ``kernel_grad``: ``(x, y) -> w``, its transpose in ``w``.

Each is a JAX primitive whose JVP follows from bilinearity and whose transposes are the other
two, so ``jax.grad``, ``jax.jvp``, ``jax.linear_transpose`` and ``jax.vmap`` of any of them, to
any order, produce only these three maps. When a program is lowered for its platform, every map
first drops the kernel taps that read only padding (:func:`trim`), then its rule
(:func:`conv_rule`, :func:`transpose_rule`, :func:`kernel_grad_rule`) picks one formulation by
name from the static shapes. On the CPU no formulation emits an input-dilated convolution
(``lhs_dilation != 1``), on which XLA:CPU aborts the process for some shapes; elsewhere the
transposes are JAX's own. The formulations, the rules and the measurements behind every
threshold are in ``docs/guides/convolution-lowering.md``.

Every array here is channels-last with one batch axis; ``conv.py`` moves layouts.
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

# The public ``lowering`` keyword: the platform's rule, or one formulation family forced.
LOWERINGS = ("auto", "xla", "matmul")

# The formulations of each map, by name.
CONV_FORMS = ("xla", "matmul")
TRANSPOSE_FORMS = ("lax", "subpixel", "phases", "col2im")
KERNEL_GRAD_FORMS = ("xla", "matmul")

# Guide, "Small maps": XLA:CPU's convolution is slow on images with at most this many outputs.
_MATMUL_MAX_POSITIONS = 16
# Guide, "Overlapping windows": up to this overlap the transpose runs phase by phase.
_PHASES_MAX_OVERLAP = 2.25

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
    lows: the padding on the low side of each axis (a negative value crops); the high side is
      whatever makes exactly ``O`` windows of span ``d (K - 1) + 1`` at stride ``s``.
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


# ----------------------------------------------------------------------------------------------
# The canonical geometry: only the taps that read the input.


def _reads_input(tap: int, out_size: int, stride: int, dilation: int, low: int,
                 size: int) -> bool:
  """Whether some padded position ``o s + tap d`` (``0 <= o < O``) is in ``[lo, lo + S)``."""
  first = max(0, -(-(low - tap * dilation) // stride))
  return first < out_size and first * stride + tap * dilation < low + size


def trim(geom: Geometry) -> Optional[tuple[Geometry, tuple]]:
  """The geometry over the taps that read the input, and the first kept tap of each axis.

  Along an axis, tap ``k`` reads padded positions ``o s + k d`` for ``0 <= o < O`` and the
  input occupies ``[lo, lo + S)``. A tap none of whose positions meets it multiplies padding
  only, for every output; the taps before the first one that reads the input and after the last
  are dropped (``K`` shrinks and ``lo`` moves by ``d`` per leading tap dropped; a single tap
  left needs no dilation). Exact for every padding. ``None`` when some axis has no tap that
  reads the input: then the convolution is zero.
  """
  firsts, kernel_sizes, lows, dilations = [], [], [], []
  for o, k, s, lo, d, size in zip(geom.out_sizes, geom.kernel_sizes, geom.strides, geom.lows,
                                  geom.dilations, geom.sizes):
    hits = [t for t in range(k) if _reads_input(t, o, s, d, lo, size)]
    if not hits:
      return None
    firsts.append(hits[0])
    kernel_sizes.append(hits[-1] - hits[0] + 1)
    lows.append(lo - hits[0] * d)
    dilations.append(d if hits[-1] > hits[0] else 1)
  trimmed = geom._replace(kernel_sizes=tuple(kernel_sizes), lows=tuple(lows),
                          dilations=tuple(dilations))
  return trimmed, tuple(firsts)


def _take_taps(w: jax.Array, geom: Geometry, firsts: tuple) -> jax.Array:
  """The kept taps of ``w [*K, ...]``: ``geom.kernel_sizes`` taps from ``firsts`` on."""
  if all(f == 0 for f in firsts) and w.shape[:len(firsts)] == geom.kernel_sizes:
    return w
  starts = list(firsts) + [0, 0]
  return lax.slice(w, starts, [f + k for f, k in zip(firsts, geom.kernel_sizes)] +
                   list(w.shape[-2:]))


def _restore_taps(w: jax.Array, full: Geometry, firsts: tuple) -> jax.Array:
  """The kept taps' gradient zero-padded back to the full kernel ``full.kernel_sizes``."""
  config = [(f, k - f - kept, 0) for f, k, kept in zip(firsts, full.kernel_sizes, w.shape)]
  if all(c == (0, 0, 0) for c in config):
    return w
  return lax.pad(w, jnp.zeros((), w.dtype), config + [(0, 0, 0)] * 2)


# ----------------------------------------------------------------------------------------------
# The rules: one per map, for ``lowering="auto"``, from the trimmed geometry and the platform.


def _few_positions(geom: Geometry) -> bool:
  return math.prod(geom.out_sizes) <= _MATMUL_MAX_POSITIONS  # guide: "Small maps"


def _overlap(geom: Geometry) -> float:
  return math.prod(geom.kernel_sizes) / math.prod(geom.strides)


def _pads_beyond_kernel(geom: Geometry) -> bool:
  """Whether some axis is padded by more than the kernel's span, ``lo + hi > d (K - 1)``."""
  return any(lo + hi > d * (k - 1) for lo, hi, d, k in
             zip(geom.lows, geom.highs(), geom.dilations, geom.kernel_sizes))


def conv_rule(geom: Geometry, platform: Optional[str]) -> str:
  """The convolution's formulation under ``"auto"``: one of :data:`CONV_FORMS`."""
  if platform != "cpu":
    return "xla"
  if _few_positions(geom) or _overlap(geom) <= 1:  # guide: "Small maps", "Disjoint windows"
    return "matmul"
  return "xla"


def _correlation_form(geom: Geometry) -> str:
  """The transpose as stride-1 correlations: ``"subpixel"`` without dilation, else by phase."""
  return "subpixel" if all(d == 1 for d in geom.dilations) else "phases"


def transpose_rule(geom: Geometry, platform: Optional[str]) -> str:
  """The transpose's formulation under ``"auto"``: one of :data:`TRANSPOSE_FORMS`."""
  if platform != "cpu":
    return "lax"  # guide: "Other platforms"
  if _few_positions(geom) or _pads_beyond_kernel(geom):  # guide: "Padding beyond the kernel"
    return "col2im"
  if _overlap(geom) <= 1 and all(d == 1 for d in geom.dilations):  # guide: "Disjoint windows"
    return "col2im"
  if _overlap(geom) <= _PHASES_MAX_OVERLAP:  # guide: "Overlapping windows"
    return "phases"
  return _correlation_form(geom)  # guide: "Dilation"


def kernel_grad_rule(geom: Geometry, platform: Optional[str]) -> str:
  """The kernel gradient's formulation under ``"auto"``: one of :data:`KERNEL_GRAD_FORMS`."""
  if platform != "cpu":
    return "xla"
  if (_few_positions(geom) or _overlap(geom) <= 1
      or _pads_beyond_kernel(geom)):  # guide: "Padding beyond the kernel"
    return "matmul"
  return "xla"


# ----------------------------------------------------------------------------------------------
# The formulations, as plain lax programs on a trimmed geometry.


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

  One gather of whole channel rows at static positions (guide: "Compile time").
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
  """``lax.conv_general_dilated``; a crop (negative padding) is applied to ``x`` first."""
  highs = geom.highs()
  if min(geom.lows + highs, default=0) < 0:
    x = _pad_to_windows(x, geom)
    pads = [(0, 0)] * geom.num_spatial
  else:
    pads = list(zip(geom.lows, highs))
  return lax.conv_general_dilated(
      x, w, window_strides=geom.strides, padding=pads, rhs_dilation=geom.dilations,
      dimension_numbers=_CHANNELS_LAST[geom.num_spatial], feature_group_count=geom.groups,
      precision=precision)


def _kernel_grad_matmul(x, y, geom, precision):
  """The kernel gradient as im2col of ``x`` and one ``dot_general`` with ``y``."""
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
  """JAX's transpose rule for the kernel: a convolution of ``x`` with ``y`` as its kernel,
  ``window_strides`` the dilation and ``rhs_dilation`` the stride; never an input-dilated one."""
  shape = (*geom.kernel_sizes, x.shape[-1] // geom.groups, y.shape[-1])
  transpose = jax.linear_transpose(lambda w: _conv_xla(x, w, geom, precision),
                                   jax.ShapeDtypeStruct(shape, y.dtype))
  return transpose(y)[0]


def _transpose_lax(y, w, geom, precision):
  """JAX's own transpose in ``x`` of ``lax.conv_general_dilated`` (input-dilated when strided)."""
  shape = (y.shape[0], *geom.sizes, w.shape[-2] * geom.groups)
  transpose = jax.linear_transpose(lambda x: _conv_xla(x, w, geom, precision),
                                   jax.ShapeDtypeStruct(shape, y.dtype))
  return transpose(y)[0]


def _output_phases(geom: Geometry) -> tuple[tuple, list]:
  """The phases of the input ``[N, *S, C]`` in the order a depth-to-space reshape wants them.

  Input position ``i = m s + j`` (output phase ``j``, row ``m < M = ceil(S / s)``) is padded
  position ``p = lo + i``: phase ``r = (lo + j) mod s`` of the transpose, row ``q = a + m``
  with ``a = (lo + j) // s``. Returns ``M`` and, per phase ``j`` in row-major order, the
  ``(r, a)`` of each axis: each phase computed from row ``a`` on lands where the interleave
  puts it, so no shift follows the products (they absorb it in their padding).
  """
  rows = tuple(-(-size // s) for size, s in zip(geom.sizes, geom.strides))
  phases = [tuple(divmod(lo + j, s)[::-1] for lo, j, s in zip(geom.lows, phase, geom.strides))
            for phase in itertools.product(*(range(s) for s in geom.strides))]
  return rows, phases


def _interleave(phases: list, rows: tuple, geom: Geometry) -> jax.Array:
  """Phase arrays ``[N, *rows, C]`` in :func:`_output_phases`' order interleaved into the
  input ``[N, *S, C]`` by one reshape (and a crop where ``s`` does not divide ``S``); a
  sharded row axis stays sharded (:func:`sharding.phases_to_space`)."""
  batch, channels = phases[0].shape[0], phases[0].shape[-1]
  stacked = jnp.stack(phases, axis=-2).reshape(batch, *rows, *geom.strides, channels)
  return sharding.phases_to_space(stacked, (0,) * geom.num_spatial, geom.sizes, geom.strides)


def _transpose_col2im(y, w, geom, precision):
  """The transpose in ``x`` as one matrix product and an overlap-add (col2im).

  ``y [N, *O, C_out]`` times every tap's ``w[k]^T`` in one ``dot_general`` gives
  ``[N, *O, T, C_in]``; tap ``k``'s slab lands at padded positions ``o s + k d``, placed by
  ``lax.pad`` (no convolution), and the slabs are summed.
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
  rows, order = _output_phases(geom)
  taps = list(itertools.product(*(range(k) for k in geom.kernel_sizes)))
  phases = []
  for phase in order:  # ((r, a) per axis)
    acc = None
    for i, tap in enumerate(taps):
      offsets = [t * d for t, d in zip(tap, geom.dilations)]
      if any(o % s != r for o, s, (r, _) in zip(offsets, geom.strides, phase)):
        continue
      config = ([(0, 0, 0)] + [(o // s - a, m - (o // s - a) - size, 0) for o, s, (_, a), m, size
                               in zip(offsets, geom.strides, phase, rows, geom.out_sizes)]
                + [(0, 0, 0)])
      slab = lax.pad(z[..., i, :], zero, config)
      acc = slab if acc is None else acc + slab
    phases.append(jnp.zeros((z.shape[0], *rows, z.shape[-1]), z.dtype) if acc is None else acc)
  return _interleave(phases, rows, geom)


def _phase_rows(geom: Geometry) -> tuple[tuple, tuple]:
  """Rows ``q0 <= q < q0 + qn`` of every phase cover the input's padded positions
  ``[lo, lo + S)``, position ``p = q s + r``."""
  q0 = tuple(lo // s for lo, s in zip(geom.lows, geom.strides))
  qn = tuple(-(-(lo + size) // s) - a for lo, size, s, a in zip(geom.lows, geom.sizes,
                                                                   geom.strides, q0))
  return q0, qn


def _phase_starts(geom: Geometry, q0: tuple) -> list:
  """Where the input starts in phases whose rows begin at ``q0``."""
  return [lo - a * s for lo, a, s in zip(geom.lows, q0, geom.strides)]


def _subpixel_kernel(w: jax.Array, geom: Geometry) -> jax.Array:
  """The sub-pixel kernel ``[*Q, C_out // g, g * prod(s) * C_in // g]`` of an undilated
  kernel, by pads and reshapes.

  Along one axis, padded input position ``p = q s + r`` of the forward convolution receives
  ``y[o] w[k]`` exactly when ``o s + k = p``. Writing ``k = q_k s + r_k``, phase ``r``
  collects the taps with ``r_k = r`` and reads ``y[q - q_k]``: a stride-1 correlation over
  ``Q = (K - 1) // s + 1`` positions whose window position ``u`` holds the tap with
  ``q_k = Q - 1 - u``. So: pad the kernel to ``Q s`` at its end, split the axis into ``(Q, s)``
  and flip the ``Q`` part. No gather, no interior zero.
  """
  n = geom.num_spatial
  g = geom.groups
  *_, cg, c_out = w.shape
  sub = w
  for axis, (k, s) in enumerate(zip(geom.kernel_sizes, geom.strides)):
    q = (k - 1) // s + 1
    config = [(0, 0, 0)] * sub.ndim
    config[2 * axis] = (0, q * s - k, 0)
    sub = lax.pad(sub, jnp.zeros((), sub.dtype), config)
    sub = sub.reshape(*sub.shape[:2 * axis], q, s, *sub.shape[2 * axis + 1:])
    sub = lax.rev(sub, (2 * axis,))
  # [Q1, s1, ..., Qn, sn, cg, g * cog] -> [*Q, cog, g, *s, cg]
  sub = sub.reshape(*sub.shape[:-1], g, c_out // g)
  perm = ([2 * a for a in range(n)] + [2 * n + 2, 2 * n + 1] + [2 * a + 1 for a in range(n)]
          + [2 * n])
  sub = jnp.transpose(sub, perm)
  return sub.reshape(*sub.shape[:n], c_out // g, g * math.prod(geom.strides) * cg)


def _transpose_subpixel(y, w, geom, precision, *, inner="auto", platform=None):
  """The transpose in ``x`` of an undilated convolution as one stride-1 correlation (all
  phases in its output channels) and a depth-to-space shuffle; ``inner`` lowers the
  correlation."""
  n = geom.num_spatial
  g = geom.groups
  cg = w.shape[-2]
  sub = _subpixel_kernel(w, geom)
  qs = sub.shape[:n]
  q0, qn = _phase_rows(geom)  # row q reads y[q - Q + 1 : q + 1]
  geom_in = Geometry(sizes=geom.out_sizes, out_sizes=qn, kernel_sizes=qs, strides=(1,) * n,
                     lows=tuple(q - 1 - a for q, a in zip(qs, q0)), dilations=(1,) * n,
                     groups=g)
  z = _conv_impl(y, sub, geom=geom_in, lowering=inner, precision=precision, platform=platform)
  # Depth to space: [N, *qn, g, *s, cg] -> [N, *qn, *s, g * cg] -> [N, *S, g * cg].
  z = z.reshape(z.shape[0], *qn, g, *geom.strides, cg)
  z = jnp.moveaxis(z, 1 + n, 1 + 2 * n)
  z = z.reshape(*z.shape[:1 + 2 * n], g * cg)
  return sharding.phases_to_space(z, _phase_starts(geom, q0), geom.sizes, geom.strides)


def _phase_taps(k: int, s: int, d: int, r: int) -> Optional[tuple[int, int, int, int]]:
  """The taps of one axis whose offset ``t d`` is ``r`` modulo ``s``, as ``(first, step, count,
  q_first)``: taps ``first + j step``, ``step = s / gcd(d, s)``, of which the first lands on row
  ``q_first = (first d - r) / s``; each next one ``d / gcd(d, s)`` rows further. ``None``: no tap
  lands on phase ``r``."""
  step = s // math.gcd(s, d)
  first = next((t for t in range(min(step, k)) if (t * d - r) % s == 0), None)
  if first is None:
    return None
  return first, step, len(range(first, k, step)), (first * d - r) // s


def _flipped_transposed(sub: jax.Array, groups: int) -> jax.Array:
  """``[*J, C_in // g, C_out]`` -> ``[*J, C_out // g, C_in]`` flipped: the kernel that
  correlates ``y`` back, channel ``(group, i)`` of the result reading group ``group`` of ``y``."""
  *spatial, cg, c_out = sub.shape
  sub = sub.reshape(*spatial, cg, groups, c_out // groups)
  sub = jnp.swapaxes(jnp.moveaxis(sub, -3, -1), -3, -2)  # [*J, cog, g, cg]
  sub = sub.reshape(*spatial, c_out // groups, groups * cg)
  return lax.rev(sub, tuple(range(len(spatial)))) if spatial else sub


def _transpose_phases(y, w, geom, precision, *, inner="auto", platform=None):
  """The transpose in ``x`` phase by phase, over only the taps each phase reads.

  Padded position ``p = q s + r`` receives ``y[o] w[k]`` when ``o s + k d = p``; the taps with
  ``k d = r (mod s)`` are ``first + j s / gcd(d, s)`` and reach rows ``q = o + q_first + j d /
  gcd(d, s)``. So phase ``r`` is a stride-1 correlation of ``y`` with those taps, flipped, at
  dilation ``d / gcd(d, s)``; a phase no tap reaches is zero. At stride 1 this is one dilated
  correlation of ``y`` with the flipped kernel. The phases are interleaved by a reshape; no
  product with a zero and no input dilation.
  """
  n = geom.num_spatial
  g = geom.groups
  cg, c_out = w.shape[-2:]
  rows, order = _output_phases(geom)
  dils = tuple(d // math.gcd(d, s) for d, s in zip(geom.dilations, geom.strides))
  phases = []
  for phase in order:  # ((r, a) per axis): rows a .. a + M - 1 of phase r
    taps = [_phase_taps(k, s, d, r) for k, s, d, (r, _) in
            zip(geom.kernel_sizes, geom.strides, geom.dilations, phase)]
    if any(t is None for t in taps):
      phases.append(jnp.zeros((y.shape[0], *rows, g * cg), y.dtype))
      continue
    sub = lax.slice(w, [t[0] for t in taps] + [0, 0],
                    [t[0] + (t[2] - 1) * t[1] + 1 for t in taps] + [cg, c_out],
                    [t[1] for t in taps] + [1, 1])
    geom_in = Geometry(
        sizes=geom.out_sizes, out_sizes=rows, kernel_sizes=tuple(t[2] for t in taps),
        strides=(1,) * n,
        lows=tuple(t[3] + (t[2] - 1) * e - a for t, e, (_, a) in zip(taps, dils, phase)),
        dilations=tuple(e if t[2] > 1 else 1 for t, e in zip(taps, dils)), groups=g)
    phases.append(_conv_impl(y, _flipped_transposed(sub, g), geom=geom_in, lowering=inner,
                             precision=precision, platform=platform))
  return _interleave(phases, rows, geom)


# ----------------------------------------------------------------------------------------------
# The three maps: trim, pick a formulation by its rule (or the forced family), run it.


def _trimmed_or_zero(geom: Geometry, shape: tuple, *operands):
  """:func:`trim`'s result, or ``None`` where the map is zero: no tap reads the input, or an
  operand or the result is empty."""
  trimmed = trim(geom)
  if trimmed is None or math.prod(shape) == 0 or any(a.size == 0 for a in operands):
    return None
  return trimmed


def _conv_impl(x, w, *, geom, lowering, precision, platform=None):
  shape = _conv_shape(x, w, geom=geom)
  trimmed = _trimmed_or_zero(geom, shape, x, w)
  if trimmed is None:
    return jnp.zeros(shape, x.dtype)
  geom, firsts = trimmed
  w = _take_taps(w, geom, firsts)
  form = conv_rule(geom, platform) if lowering == "auto" else lowering
  return (_conv_matmul if form == "matmul" else _conv_xla)(x, w, geom, precision)


def _transpose_impl(y, w, *, geom, lowering, precision, platform=None):
  """The transpose in ``x`` of the convolution: ``y [N, *O, C_out] -> x [N, *S, C_in]``."""
  if lowering == "auto":
    rule = transpose_rule
  else:
    rule = lambda g, _: "col2im" if lowering == "matmul" else _correlation_form(g)
  return transpose_by(rule, y, w, geom, inner=lowering, precision=precision, platform=platform)


def transpose_by(form, y, w, geom: Geometry, *, inner: str = "auto", precision=None,
                 platform: Optional[str] = "cpu") -> jax.Array:
  """The transpose in ``x`` by one formulation of :data:`TRANSPOSE_FORMS` (a name, or a rule
  ``(trimmed geometry, platform) -> name``); ``inner`` lowers the stride-1 correlations of
  ``"subpixel"`` and ``"phases"``. ``"subpixel"`` needs an undilated trimmed geometry."""
  shape = _transpose_shape(y, w, geom=geom)
  trimmed = _trimmed_or_zero(geom, shape, y, w)
  if trimmed is None:
    return jnp.zeros(shape, y.dtype)
  geom, firsts = trimmed
  w = _take_taps(w, geom, firsts)
  form = form(geom, platform) if callable(form) else form
  if form == "lax":
    return _transpose_lax(y, w, geom, precision)
  if form == "col2im":
    return _transpose_col2im(y, w, geom, precision)
  correlate = {"subpixel": _transpose_subpixel, "phases": _transpose_phases}[form]
  return correlate(y, w, geom, precision, inner=inner, platform=platform)


def _kernel_grad_impl(x, y, *, geom, lowering, precision, platform=None):
  shape = _kernel_grad_shape(x, y, geom=geom)
  trimmed = _trimmed_or_zero(geom, shape, x, y)
  if trimmed is None:
    return jnp.zeros(shape, x.dtype)
  full = geom
  geom, firsts = trimmed
  form = kernel_grad_rule(geom, platform) if lowering == "auto" else lowering
  w = (_kernel_grad_matmul if form == "matmul" else _kernel_grad_xla)(x, y, geom, precision)
  return _restore_taps(w, full, firsts)


# ----------------------------------------------------------------------------------------------
# The primitives.


def _eager(prim):
  @functools.lru_cache(maxsize=256)
  def jitted(params):
    return jax.jit(lambda *args: prim.bind(*args, **dict(params)))

  def impl(*args, **params):
    return jitted(tuple(sorted(params.items())))(*args)

  return impl


def _define(name, impl, shape_rule):
  prim = Primitive(name)
  prim.def_impl(_eager(prim))
  prim.def_abstract_eval(
      lambda a, b, **params: abstract_like(a, shape_rule(a, b, **params),
                                           jnp.result_type(a.dtype, b.dtype)))
  # The rules see the platform: the CPU's lowering and every other platform's differ.
  mlir.register_lowering(prim, lower_plain(functools.partial(impl, platform="cpu")),
                         platform="cpu")
  mlir.register_lowering(prim, lower_plain(impl))
  return prim


def lower_plain(impl):
  """``mlir.lower_fun(impl)`` traced on plain avals: inside ``shard_map`` the operands' types
  say they vary over manual mesh axes, and a transpose traced on them (``linear_transpose``
  of a kernel that does not vary) would sum over the devices a second time."""
  def rule(ctx, *args, **params):
    plain = lambda avals: [jax.core.ShapedArray(a.shape, a.dtype) for a in avals]
    ctx = ctx.replace(avals_in=plain(ctx.avals_in), avals_out=plain(ctx.avals_out))
    return mlir.lower_fun(impl, multiple_results=False)(ctx, *args, **params)
  return rule


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
    lambda ct, x, w, **p: _bind(conv_transpose_p, ct, w, **p),
    lambda ct, x, w, **p: _bind(kernel_grad_p, x, ct, **p))
ad.defbilinear(
    conv_transpose_p,
    lambda ct, y, w, **p: _bind(conv_p, ct, w, **p),
    lambda ct, y, w, **p: _bind(kernel_grad_p, ct, y, **p))
ad.defbilinear(
    kernel_grad_p,
    lambda ct, x, y, **p: _bind(conv_transpose_p, y, ct, **p),
    lambda ct, x, y, **p: _bind(conv_p, x, ct, **p))


def _fold_into_groups(a, dim, size):
  """``a [..., C]`` with a mapped axis (``None``: broadcast) -> ``[..., B * C]``, B major."""
  if dim is None:
    a = jnp.broadcast_to(a[..., None, :], (*a.shape[:-1], size, a.shape[-1]))
  else:
    a = jnp.moveaxis(a, dim, -2)
  return a.reshape(*a.shape[:-2], a.shape[-2] * a.shape[-1])


def _batch_rule(prim, which):
  """vmap: a mapped batch-like operand alone folds into N, otherwise B folds into groups."""

  def rule(args, dims, *, geom, **params):
    a, b = args
    da, db = dims
    size = a.shape[da] if da is not None else b.shape[db]
    if size == 0:  # an empty batch: the result of one item, zero times
      item = [jax.ShapeDtypeStruct(v.shape[:d] + v.shape[d + 1:] if d is not None else v.shape,
                                   v.dtype) for v, d in zip(args, dims)]
      out = jax.eval_shape(lambda a, b: prim.bind(a, b, geom=geom, **params), *item)
      return jnp.zeros((0, *out.shape), out.dtype), 0
    if which in ("conv", "transpose") and db is None:
      a = jnp.moveaxis(a, da, 0)
      out = _bind(prim, a.reshape(size * a.shape[1], *a.shape[2:]), b, geom=geom, **params)
      return out.reshape(size, a.shape[1], *out.shape[1:]), 0
    wide = geom._replace(groups=geom.groups * size)
    # Channels (and a kernel's output channels) become (B, g, C // g): B * g groups.
    a = _fold_into_groups(a, da, size)
    b = _fold_into_groups(b, db, size)
    out = _bind(prim, a, b, geom=wide, **params)
    return out.reshape(*out.shape[:-1], size, out.shape[-1] // size), out.ndim - 1

  return rule


batching.primitive_batchers[conv_p] = _batch_rule(conv_p, "conv")
batching.primitive_batchers[conv_transpose_p] = _batch_rule(conv_transpose_p, "transpose")
batching.primitive_batchers[kernel_grad_p] = _batch_rule(kernel_grad_p, "kernel_grad")


def _hashable_precision(precision):
  if isinstance(precision, list):
    return tuple(precision)
  return precision


def abstract_like(a, shape, dtype):
  """The abstract result of shape ``shape`` of a primitive applied to ``a``: inside
  ``shard_map`` it varies over the mesh axes ``a`` varies over (both operands of a binary map
  vary alike, :func:`_bind`); without that no gradient there type-checks."""
  varying = getattr(getattr(a, "manual_axis_type", None), "varying", None)
  if not varying:
    return jax.core.ShapedArray(shape, dtype)
  return a.update(shape=shape, dtype=dtype, weak_type=False)


def _bind(prim, a, b, **params):
  """``prim.bind(a, b)`` with both operands cast to vary over the same manual mesh axes
  (inside ``shard_map`` a kernel that is the same on every device meets activations that
  differ), as JAX's own binary operations do; the cast's transpose sums the kernel's gradient
  over those axes. Every bind of the three maps (calls, transposes, batching) goes here."""
  types = [getattr(jax.typeof(v), "manual_axis_type", None) for v in (a, b)]
  if all(t is not None for t in types):
    union = types[0].varying | types[1].varying
    a, b = (v if t.varying == union else
            lax.pcast(v, tuple(sorted(union - t.varying)), to="varying")
            for v, t in zip((a, b), types))
  return prim.bind(a, b, **params)


def correlate(x, w, geom: Geometry, *, lowering: str = "auto", precision=None) -> jax.Array:
  """The convolution ``x [N, *S, C_in], w [*K, C_in // g, C_out] -> [N, *O, C_out]``."""
  return _bind(conv_p, x, w, geom=geom, lowering=lowering,
               precision=_hashable_precision(precision))


def correlate_transpose(y, w, geom: Geometry, *, lowering: str = "auto",
                        precision=None) -> jax.Array:
  """The transpose in ``x`` of :func:`correlate`: ``y [N, *O, C_out] -> [N, *S, C_in]``."""
  return _bind(conv_transpose_p, y, w, geom=geom, lowering=lowering,
               precision=_hashable_precision(precision))


def correlate_kernel_grad(x, y, geom: Geometry, *, lowering: str = "auto",
                          precision=None) -> jax.Array:
  """The transpose in ``w`` of :func:`correlate`: ``-> [*K, C_in // g, C_out]``."""
  return _bind(kernel_grad_p, x, y, geom=geom, lowering=lowering,
               precision=_hashable_precision(precision))
