"""Sampling at arbitrary coordinates: ``grid_sample`` and ``affine_grid``.

``grid_sample`` reads ``x`` at the points of a grid of normalised coordinates in ``[-1, 1]``
(PyTorch's ``torch.nn.functional.grid_sample`` and ONNX ``GridSample``): the general form of
every interpolation in jaxup, and what spatial transformers (Jaderberg et al. 2015),
optical-flow warping and learned upsamplers need. Each output point reads a few taps (1 for
nearest, ``2**n`` for linear, ``4**n`` for cubic), each one gather along the flattened spatial
axes of ``x``, so the cost is O(output); there is no dense matrix.

Conventions, all PyTorch's (``aten/src/ATen/native/GridSampler.h``):

* un-normalisation: ``align_corners=True`` maps -1 and 1 to the centres of the first and last
  samples, ``i = (g + 1) / 2 * (S - 1)``; ``False`` maps them to the outer edges of the first
  and last samples, ``i = ((g + 1) S - 1) / 2``;
* ``padding_mode``: ``"zeros"`` reads 0 outside; ``"border"`` clamps the coordinate to
  ``[0, S - 1]``; ``"reflection"`` reflects it about the borders (the sample centres
  ``0, S - 1`` with ``align_corners=True``, the edges ``-0.5, S - 0.5`` without) and clamps;
* nearest rounds half to even (``nearbyint``);
* bicubic uses the cubic convolution kernel with ``a = -0.75`` and, unlike linear and nearest,
  applies the padding to each of the 4 integer tap coordinates, not to the sample point.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jaxup._src import checks
from jaxup._src.layout import parse_layout

MODES = ("bilinear", "nearest", "bicubic")
_MODE_ALIASES = {"linear": "bilinear", "trilinear": "bilinear", "cubic": "bicubic",
                 "tricubic": "bicubic"}
PADDING_MODES = ("zeros", "border", "reflection")
_CUBIC_A = -0.75


def _unnormalize(g: jax.Array, size: int, align_corners: bool) -> jax.Array:
  if align_corners:
    return (g + 1) / 2 * (size - 1)
  return ((g + 1) * size - 1) / 2


def _reflect(c: jax.Array, twice_low: int, twice_high: int) -> jax.Array:
  """PyTorch's ``reflect_coordinates``: reflects ``c`` into ``[low, high]`` by folding."""
  if twice_low == twice_high:
    return jnp.zeros_like(c)
  low = twice_low / 2
  span = (twice_high - twice_low) / 2
  c = jnp.abs(c - low)
  extra = jnp.fmod(c, span)
  flips = jnp.floor(c / span)
  return jnp.where(jnp.fmod(flips, 2) == 0, extra + low, span - extra + low)


def _pad_coordinate(c: jax.Array, size: int, padding_mode: str, align_corners: bool):
  """PyTorch's ``compute_coordinates``: the coordinate after border clamping or reflection.

  A coordinate that ends NaN there (a NaN in the grid, or an infinite one reflected) clamps
  to 0, as PyTorch's CPU kernels clamp it."""
  if padding_mode == "zeros":
    return c
  if padding_mode == "reflection":
    if align_corners:
      c = _reflect(c, 0, 2 * (size - 1))
    else:
      c = _reflect(c, -1, 2 * size - 1)
  c = jnp.clip(c, 0, size - 1)
  return jnp.where(jnp.isnan(c), 0, c)


def _cubic_weights(t: jax.Array) -> list[jax.Array]:
  """The weights of taps ``-1, 0, 1, 2`` at fraction ``t`` (Keys' kernel, ``a = -0.75``)."""
  a = _CUBIC_A
  near = lambda d: ((a + 2) * d - (a + 3)) * d * d + 1  # |d| <= 1
  far = lambda d: ((a * d - 5 * a) * d + 8 * a) * d - 4 * a  # 1 < |d| < 2
  return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _index(c: jax.Array, size: int) -> jax.Array:
  """An integer-valued float coordinate as int32, kept a little outside ``[0, size)``."""
  return jnp.clip(c, -4, size + 4).astype(jnp.int32)


def _onnx_pad_point(c, size, padding_mode, align_corners):
  """ONNX GridSample's reference: a point outside the borders (the sample centres with
  ``align_corners``, the outer edges without) is clamped or reflected before interpolation."""
  if padding_mode == "zeros":
    return c
  low, high = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
  outside = (c < low) | (c > high)
  if padding_mode == "border":
    return jnp.where(outside, jnp.clip(c, 0, size - 1), c)
  return jnp.where(outside, _reflect(c, round(2 * low), round(2 * high)), c)


def _axis_taps(g, size, mode, padding_mode, align_corners, convention):
  """``[(index, weight), ...]`` for one axis: integer positions (maybe out of range) and
  their interpolation weights, arrays of the grid's shape."""
  c = _unnormalize(g, size, align_corners)
  if convention == "onnx" and mode != "bilinear":
    if mode == "nearest":  # ONNX rounds, then pads; PyTorch pads, then rounds
      c = _onnx_pad_point(jnp.round(c), size, padding_mode, align_corners)
      return [(_index(jnp.trunc(_pad_coordinate(c, size, padding_mode, align_corners)),
                      size), None)]
    c = _onnx_pad_point(c, size, padding_mode, align_corners)
  if mode == "bicubic":
    base = jnp.floor(c)
    weights = _cubic_weights(c - base)
    taps = []
    for k, w in zip(range(-1, 3), weights):
      tap = _pad_coordinate(base + k, size, padding_mode, align_corners)
      # PyTorch truncates the padded coordinate toward zero (static_cast<int64_t>).
      taps.append((_index(jnp.trunc(tap), size), w))
    return taps
  c = _pad_coordinate(c, size, padding_mode, align_corners)
  if mode == "nearest":
    # A NaN coordinate (left NaN only by zeros padding) reads outside, as in PyTorch: a cast
    # to int would turn it into index 0.
    return [(jnp.where(jnp.isnan(c), -1, _index(jnp.round(c), size)), None)]
  base = jnp.floor(c)
  t = c - base
  i = _index(base, size)
  return [(i, 1 - t), (i + 1, t)]


def grid_sample(
    x: jax.typing.ArrayLike,
    grid: jax.typing.ArrayLike,
    *,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool = False,
    convention: str = "pytorch",
    layout: Optional[str] = None,
) -> jax.Array:
  r"""Samples ``x`` at normalised coordinates: PyTorch's ``grid_sample``, ONNX GridSample.

  ``x: [N, *S, C]``, ``grid: [N, *S_out, n] -> [N, *S_out, C]`` for the default layout, where
  ``N`` is the batch, ``S`` the ``n`` input spatial sizes (2-D ``(H, W)`` or 3-D
  ``(D, H, W)``; 1-D works too), ``S_out`` the output spatial sizes and ``C`` the channels.
  The grid is laid out as PyTorch's, whatever ``x``'s layout: its last axis holds the
  coordinates in reversed spatial order, ``(x, y)`` in 2-D (``x`` along ``W``) and
  ``(x, y, z)`` in 3-D, each normalised so that -1 and 1 are the extremes of the input (see
  ``align_corners``). An unbatched ``layout`` (``"HWC"``) takes an unbatched grid
  ``[*S_out, n]``.

  Output point :math:`o` is :math:`y_o = \sum_t w_t(g_o)\, x[i_t(g_o)]` over the taps
  :math:`t` of ``mode``. Each coordinate is un-normalised to an input index
  :math:`u = (g + 1)(S - 1)/2` (``align_corners=True``) or :math:`u = ((g + 1) S - 1) / 2`
  (``False``), then

  * ``"bilinear"`` (also ``"linear"``, trilinear in 3-D): the :math:`2^n` neighbours of
    :math:`u` with weights :math:`\prod (1 - |u - i|)`;
  * ``"nearest"``: :math:`\operatorname{round}(u)`, half to even (PyTorch's ``nearbyint``);
  * ``"bicubic"`` (also ``"cubic"``): the :math:`4^n` neighbours with Keys' cubic convolution
    weights, :math:`a = -0.75` (PyTorch's).

  ``padding_mode`` says what lies outside: ``"zeros"`` reads 0; ``"border"`` clamps :math:`u`
  to :math:`[0, S - 1]`; ``"reflection"`` reflects it about the borders (about the first and
  last sample centres with ``align_corners=True``, about the outer edges ``-0.5`` and
  ``S - 0.5`` without) and clamps. For bicubic the padding is applied to each integer tap,
  not to :math:`u`, as PyTorch computes it (so bicubic ``"border"`` differs from clamping the
  grid). This is ``torch.nn.functional.grid_sample`` (on ``layout="NCHW"``/``"NCDHW"``) for
  every mode, padding and ``align_corners``, and ONNX ``GridSample`` (opset 16's and 20's
  mode names). PyTorch has no 3-D bicubic; here it is the tensor-product rule above, as ONNX
  opset 20's N-D cubic.

  ``grid_sample`` is linear in ``x``: its transpose (``jax.linear_transpose``, the VJP in
  ``x``) splats each output value onto the taps it read, with the same weights (scatter-add).
  The gradient in ``grid`` flows through the weights (and through the border clamp and
  reflection); nearest has zero gradient in ``grid``.

  Args:
    x: the input ``[N, *S, C]`` (or as ``layout`` says), floating point.
    grid: ``[N, *S_out, n]`` normalised coordinates, last axis in ``(x, y[, z])`` order;
      ``[*S_out, n]`` when ``layout`` has no batch axis.
    mode: ``"bilinear"`` (``"linear"``), ``"nearest"`` or ``"bicubic"`` (``"cubic"``), any case.
    padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``, any case.
    align_corners: whether -1 and 1 are the centres (``True``) or the outer edges (``False``,
      PyTorch's default) of the corner samples.
    convention: ``"pytorch"`` (default) or ``"onnx"``: whose padding rule bicubic and nearest
      follow (above).
    layout: the layout string of ``x`` and of the output, e.g. ``"NCHW"`` for PyTorch ports;
      ``None`` is channels-last with a batch axis by rank (``NWC``, ``NHWC``, ``NDHWC``).

  Returns:
    ``[N, *S_out, C]`` (in ``x``'s layout) in the floating dtype of ``x`` and ``grid``.

  Raises:
    TypeError: if ``x`` or ``grid`` is not floating point, or an option has the wrong type.
    ValueError: if ``mode``/``padding_mode`` is unknown, ``layout`` does not fit ``x``, or
      ``grid``'s shape is not ``[N, *S_out, n]`` with ``x``'s batch size and ``n`` spatial axes.

  Example:
    The grid's corners, with ``align_corners=True``, read the corners of the input:

    >>> import jax.numpy as jnp
    >>> x = jnp.array([[1.0, 2.0], [3.0, 4.0]])[:, :, None]  # [H=2, W=2, C=1]
    >>> grid = jnp.array([[[-1.0, -1.0], [1.0, -1.0], [0.0, 0.0]]])  # [1, 3, (x, y)]
    >>> print(grid_sample(x, grid, align_corners=True, layout="HWC")[..., 0])
    [[1.  2.  2.5]]
  """
  x = checks.array(x, "x", kind="floating")
  grid = checks.array(grid, "grid", kind="floating")
  mode = checks.choice(mode, "mode", MODES, aliases=_MODE_ALIASES)
  padding_mode = checks.choice(padding_mode, "padding_mode", PADDING_MODES)
  align_corners = checks.boolean(align_corners, "align_corners")
  convention = checks.choice(convention, "convention", ("pytorch", "onnx"))
  parsed = parse_layout(layout, x.ndim, require_channels=False, num_spatial=(  # grid: NWC or HWC
      (grid.shape[-1],) if (layout, x.ndim) == (None, 3) and grid.shape[-1:] in ((1,), (2,))
      else (1, 2, 3)))
  n = parsed.num_spatial
  batched = parsed.batch_axis is not None
  expected_rank = n + 2 if batched else n + 1
  if grid.ndim != expected_rank or grid.shape[-1] != n or (
      batched and grid.shape[0] != x.shape[parsed.batch_axis]):
    batch = f"{x.shape[parsed.batch_axis]}, " if batched else ""
    raise ValueError(
        f"grid must have shape [{batch}{', '.join(['*'] * n)}, {n}] for x of shape "
        f"{tuple(x.shape)} and layout {parsed.spec!r} ({n} spatial axes), got shape "
        f"{tuple(grid.shape)}")
  dtype = jnp.result_type(x.dtype, grid.dtype)
  # Internally [N, P, C]: batch first, spatial flattened (row-major), channels last.
  order = ([parsed.batch_axis] if batched else []) + list(parsed.spatial_axes) + (
      [parsed.channel_axis] if parsed.channel_axis is not None else [])
  xt = jnp.transpose(x, order).astype(dtype)
  if not batched:
    xt, grid = xt[None], grid[None]
  if parsed.channel_axis is None:
    xt = xt[..., None]
  sizes = tuple(parsed.spatial_shape(x.shape))
  out_sizes = grid.shape[1:-1]
  if xt.size == 0 or grid.size == 0:  # nothing to read, or nothing to write
    y = jnp.zeros((xt.shape[0], math.prod(out_sizes), xt.shape[-1]), dtype)
  else:
    # float16 and bfloat16 cannot hold the coordinates (11 bits fold 3.0 * 5.5 = 16.5 into 16)
    # nor sum the taps closely: computed in float32 and rounded once, as PyTorch's kernels
    # compute them in their float32 "opmath" type.
    work = jnp.promote_types(dtype, jnp.float32)
    y = _sample(xt.astype(work), grid.astype(work), sizes, mode, padding_mode, align_corners,
                convention).astype(dtype)
  y = y.reshape((xt.shape[0], *out_sizes, xt.shape[-1]))
  if parsed.channel_axis is None:
    y = y[..., 0]
  if not batched:
    y = y[0]
  inverse = sorted(range(len(order)), key=order.__getitem__)
  return jnp.transpose(y, inverse)


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5, 6))
def _sample(xt, grid, sizes, mode, padding_mode, align_corners, convention):
  """``xt: [N, *S, C]``, ``grid: [N, *S_out, n]`` -> ``[N, M, C]`` with ``M = prod(S_out)``."""
  n = len(sizes)
  flat = xt.reshape((xt.shape[0], math.prod(sizes), xt.shape[-1]))
  coords = grid.reshape((grid.shape[0], math.prod(grid.shape[1:-1]), n))
  # Grid component k indexes spatial axis n - 1 - k (x is the last axis, W).
  per_axis = [_axis_taps(coords[..., n - 1 - a], size, mode, padding_mode, align_corners,
                        convention) for a, size in enumerate(sizes)]
  strides = [math.prod(sizes[a + 1:]) for a in range(n)]
  # One row gather per tap along P with the batch as a gather batch dimension (a scatter-add
  # in the transpose): a batch-sharded input stays sharded, with no collective.
  y = None
  for combo in itertools.product(*per_axis):
    flat_index, weight, valid = jnp.zeros((), jnp.int32), None, None
    for (i, w), size, stride in zip(combo, sizes, strides):
      inside = (i >= 0) & (i < size)
      valid = inside if valid is None else valid & inside
      flat_index = flat_index + jnp.clip(i, 0, size - 1) * stride
      if w is not None:
        weight = w if weight is None else weight * w
    weight = valid.astype(flat.dtype) if weight is None else jnp.where(valid, weight, 0)
    flat_index = jnp.broadcast_to(flat_index, weight.shape)
    term = jnp.take_along_axis(flat, flat_index[..., None], axis=1,
                               mode="promise_in_bounds") * weight[..., None]
    y = term if y is None else y + term
  return y


def affine_grid(
    theta: jax.typing.ArrayLike,
    size: Sequence[int],
    *,
    align_corners: bool = False,
) -> jax.Array:
  r"""The sampling grid of an affine map: PyTorch's ``affine_grid``, for :func:`grid_sample`.

  ``theta: [N, n, n + 1] -> [N, *S_out, n]`` where ``N`` is the batch, ``n`` the number of
  spatial axes (2 or 3; 1 works too) and ``S_out`` the output spatial sizes. Output point
  :math:`o` holds :math:`\theta\,(x_o, y_o[, z_o], 1)^T`, where :math:`(x_o, y_o, z_o)` are
  the normalised coordinates of the output pixel's centre along ``W``, ``H``, ``D``: evenly
  spaced from -1 to 1 with ``align_corners=True``, and the same scaled by
  :math:`(S - 1) / S` without (pixel centres in a [-1, 1] box of pixel edges); a size of 1
  gives 0. The last axis is in ``(x, y[, z])`` order, as :func:`grid_sample` reads it.

  Args:
    theta: ``[N, n, n + 1]`` affine matrices (output coordinates to input coordinates),
      floating point.
    size: the output spatial sizes ``(H, W)`` or ``(D, H, W)``; PyTorch's full
      ``size=(N, C, H, W)`` / ``(N, C, D, H, W)`` is accepted too (rank 4 or 5, ``N`` must
      match ``theta``).
    align_corners: as in :func:`grid_sample`; use the same value for both.

  Returns:
    The grid ``[N, *S_out, n]`` in ``theta``'s dtype.

  Raises:
    TypeError: if ``theta`` is not floating point, ``size`` not ints, or ``align_corners`` not
      a bool.
    ValueError: if ``theta``'s shape is not ``[N, n, n + 1]`` for the ``n`` of ``size``, or a
      size is not positive.

  Example:
    The identity map samples the pixel centres:

    >>> import jax.numpy as jnp
    >>> theta = jnp.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    >>> print(affine_grid(theta, (1, 4))[0, 0, :, 0])
    [-0.75 -0.25  0.25  0.75]
  """
  theta = checks.array(theta, "theta", kind="floating")
  align_corners = checks.boolean(align_corners, "align_corners")
  if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) not in (
      1, 2, 3, 4, 5):
    raise TypeError(
        f"size must be a sequence of spatial sizes (H, W) or (D, H, W), or PyTorch's "
        f"(N, C, H, W) / (N, C, D, H, W), got {checks._describe(size)}")
  size = checks.ints(size, len(size), "size")
  torch_size = len(size) >= 4
  spatial = size[2:] if torch_size else size
  n = len(spatial)
  if theta.ndim != 3 or theta.shape[1:] != (n, n + 1) or (
      torch_size and theta.shape[0] != size[0]):
    batch = size[0] if torch_size else "N"
    raise ValueError(
        f"theta must have shape [{batch}, {n}, {n + 1}] for size={size}, got shape "
        f"{tuple(theta.shape)}")
  axes = []
  for s in reversed(spatial):  # x (along W) first
    line = jnp.linspace(-1.0, 1.0, s, dtype=theta.dtype) if s > 1 else jnp.zeros(
        (1,), theta.dtype)
    if not align_corners and s > 1:
      line = line * ((s - 1) / s)
    axes.append(line)
  mesh = jnp.meshgrid(*reversed(axes), indexing="ij")  # each [*S_out], spatial order
  base = jnp.stack([*reversed(mesh), jnp.ones(spatial, theta.dtype)], axis=-1)
  return jnp.einsum("...k,bjk->b...j", base, theta, precision=lax.Precision.HIGHEST)
