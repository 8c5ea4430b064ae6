"""Property-based tests of every public function, with hypothesis.

Each operator is one entry of ``OPERATORS``: a strategy drawing a random configuration (rank
1-3, sizes including 0 and 1, every parameter in its valid range, a layout of every family, a
dtype) and an ``Example`` naming what its properties need. Each property is one test,
parametrised over the operators, so that a failure's name says which property of which
operator broke (``test_adjoint[resize]``); every property sees the same drawn examples:

* ``test_shape``: the shape equals the size formula (``conv_output_size`` and friends);
* ``test_reference``: parity with PyTorch where PyTorch has the operation, or with an
  independent NumPy model (float64 and integer data);
* ``test_dtypes``: the result in the drawn dtype (float16 / bfloat16 / float32 / float64 /
  integers where data moves) keeps that dtype and equals the float64 result within that dtype's
  tolerance (integers exactly);
* ``test_adjoint``: for linear upsamplers, the dot-product identity against the NAMED
  down-sampler ``<up(x), y> == <x, down(y)>`` and ``jax.linear_transpose`` equal to it;
* ``test_jit_eager_vmap``: jit == eager == vmap over the batch;
* ``test_gradients``: ``jvp`` and ``grad`` against finite differences
  (``jax.test_util.check_grads`` in float64).

A property test fails as well when none of its operator's examples reached the check.
Adding a public function is one strategy and one ``OPERATORS`` entry.

Examples per operator: 8 in CI (5 for conv and conv_transpose, 4 for scale_and_translate),
derandomized (the same examples every run); gradients on every third of them. For a long
campaign set ``JAXUP_HYPOTHESIS_PROFILE=campaign`` (random seeds, 500 examples per operator,
gradients on all) and optionally ``JAXUP_HYPOTHESIS_EXAMPLES=N``:

    JAXUP_HYPOTHESIS_PROFILE=campaign JAXUP_HYPOTHESIS_EXAMPLES=2000 \\
        python -m pytest -p no:xdist tests/test_properties.py --hypothesis-show-statistics
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import jaxup
from jaxup import testing
from tests.test_no_input_dilation import dilated

settings.register_profile(
    "ci", max_examples=int(os.environ.get("JAXUP_HYPOTHESIS_EXAMPLES", 8)), derandomize=True,
    deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much])
settings.register_profile(
    "campaign", max_examples=int(os.environ.get("JAXUP_HYPOTHESIS_EXAMPLES", 500)),
    deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much])
SETTINGS = settings.get_profile(os.environ.get("JAXUP_HYPOTHESIS_PROFILE", "ci"))

HAS_TORCH = importlib.util.find_spec("torch") is not None

FLOATS = (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64)
INTS = (jnp.int8, jnp.uint8, jnp.int32, jnp.int64)
# Relative to (1 + max |reference|): rounding of the inputs is taken out by comparing with the
# float64 result on the rounded inputs, so this bounds the operator's own rounding.
TOLERANCE = {np.dtype(jnp.float16): 2e-2, np.dtype(jnp.bfloat16): 1e-1,
             np.dtype(jnp.float32): 1e-5, np.dtype(jnp.float64): 1e-12}
SPATIAL = {1: "W", 2: "HW", 3: "DHW"}


def tolerance(dtype) -> float:
  return TOLERANCE.get(np.dtype(dtype), 0.0)


# Layout families: channels last / first with a batch, unbatched, channels and batch elsewhere,
# and (for operators that need no channel axis) without channels.
def layouts(nd: int, *, channels_optional: bool) -> list[str]:
  s = SPATIAL[nd]
  out = ["N" + s + "C", "NC" + s, s + "C", "C" + s + "N"]
  if channels_optional:
    out += ["N" + s, s]
  return out


def shape_for(layout: str, spatial, batch: int, channels: int) -> tuple[int, ...]:
  sizes = iter(spatial)
  return tuple(batch if c == "N" else channels if c == "C" else next(sizes) for c in layout)


def to_ncs(a: np.ndarray, layout: str) -> np.ndarray:
  """``a`` in ``layout`` as ``[N, C, *spatial]`` (size-one axes added where absent)."""
  if "C" not in layout:
    a, layout = a[..., None], layout + "C"
  if "N" not in layout:
    a, layout = a[None], "N" + layout
  order = [layout.index("N"), layout.index("C")] + [i for i, c in enumerate(layout)
                                                    if c not in "NC"]
  return np.transpose(a, order)


def from_ncs(a: np.ndarray, layout: str) -> np.ndarray:
  """The inverse of :func:`to_ncs`."""
  full = layout + ("C" if "C" not in layout else "")
  full = ("N" if "N" not in layout else "") + full
  order = [full.index("N"), full.index("C")] + [i for i, c in enumerate(full) if c not in "NC"]
  a = np.transpose(a, np.argsort(order))
  if "N" not in layout:
    a = a[0]
  if "C" not in layout:
    a = a[..., 0]
  return a


@dataclasses.dataclass
class Example:
  """One drawn configuration: the arrays (float64 or integer NumPy), the call, and what the
  properties need."""

  name: str
  call: Callable[..., Any]  # call(*arrays) -> jax array (or tuple)
  arrays: tuple  # the arguments; arrays[0] is the data, the others are kernels or indices
  dtype: Any  # the dtype the data is cast to for the dtype-matrix property
  expected_shape: tuple
  layout: str
  linear: bool = True  # linear in arrays[0]
  differentiable: bool = True
  down: Optional[Callable] = None  # the named adjoint of call in arrays[0]
  reference: Optional[Callable] = None  # float64 NumPy reference of call(*arrays)
  reference_name: str = ""
  exact: bool = False  # data movement: any dtype gives exactly the float64 result
  # The batch axis of each argument when it is not arrays[0]'s shape (None: not batched).
  batch_axes: Optional[tuple] = None
  info: dict = dataclasses.field(default_factory=dict)


def _normal(draw, shape):
  seed = draw(st.integers(0, 2**31 - 1))
  return np.random.default_rng(seed).standard_normal(shape)


def _dtype(draw, exact: bool):
  return draw(st.sampled_from(FLOATS + (INTS if exact else ())))


# ------------------------------------------------------------------ strategies, one per operator


@st.composite
def conv_examples(draw):
  nd = draw(st.integers(1, 3))
  layout = draw(st.sampled_from(layouts(nd, channels_optional=False)))
  groups = draw(st.sampled_from([1, 2]))
  cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
  batch = draw(st.sampled_from([0, 1, 2])) if "N" in layout else 1
  ks = tuple(draw(st.integers(1, 3)) for _ in range(nd))
  strides = tuple(draw(st.integers(1, 3)) for _ in range(nd))
  dilations = tuple(draw(st.integers(1, 2)) for _ in range(nd))
  padding = draw(st.one_of(st.sampled_from(["SAME", "VALID"]),
                           st.tuples(*(st.integers(0, k - 1) for k in ks))))
  sizes = tuple(draw(st.integers(max(1, d * (k - 1) + 1 - (0 if isinstance(padding, str) else
                                                             2 * p)), 6))
                for k, d, p in zip(ks, dilations, padding if not isinstance(padding, str)
                                   else (0,) * nd))
  if padding == "VALID":
    sizes = tuple(max(n, d * (k - 1) + 1) for n, k, d in zip(sizes, ks, dilations))
  x = _normal(draw, shape_for(layout, sizes, batch, cin))
  kernel = _normal(draw, ks + (cin // groups, cout))
  kw = dict(stride=strides, padding=padding, dilation=dilations, groups=groups, layout=layout)
  if padding == "SAME":
    out = tuple(-(-n // s) for n, s in zip(sizes, strides))
  else:
    out = jaxup.conv_output_size(sizes, ks, stride=strides, padding=0 if padding == "VALID"
                                 else padding, dilation=dilations)

  def down(y):  # conv is a down-sampler; its adjoint is conv_transpose (checked both ways)
    return jaxup.conv_transpose(y, kernel, output_size=sizes, **kw)

  return Example(
      "conv", lambda a, k: jaxup.conv(a, k, **kw), (x, kernel), _dtype(draw, False),
      shape_for(layout, out, batch, cout), layout, down=down,
      reference=_torch_conv(kw, nd, _padding_pairs(padding, sizes, ks, strides, dilations)),
      reference_name="torch.nn.functional.conv", info=dict(kw=kw, nd=nd))


def _padding_pairs(padding, sizes, ks, strides, dilations):
  """Explicit (lo, hi) pairs of ``padding`` ("SAME" as lax computes it)."""
  if padding == "VALID":
    return ((0, 0),) * len(sizes)
  if padding == "SAME":
    return tuple(tuple(p) for p in jax.lax.padtype_to_pads(
        sizes, [d * (k - 1) + 1 for k, d in zip(ks, dilations)], strides, "SAME"))
  return tuple((p, p) for p in padding)


@st.composite
def upsample_conv_examples(draw):
  nd = draw(st.integers(1, 3))
  layout = draw(st.sampled_from(layouts(nd, channels_optional=False)))
  groups = draw(st.sampled_from([1, 2]))
  cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
  batch = draw(st.sampled_from([0, 1, 2])) if "N" in layout else 1
  ks = tuple(draw(st.integers(1, 3)) for _ in range(nd))
  factors = tuple(draw(st.integers(1, 3)) for _ in range(nd))
  dilations = tuple(draw(st.integers(1, 2)) for _ in range(nd))
  padding = draw(st.one_of(st.sampled_from(["SAME", "VALID"]),
                           st.tuples(*(st.integers(0, k - 1) for k in ks))))
  pads = (0,) * nd if isinstance(padding, str) else padding
  sizes = tuple(max(draw(st.integers(1, 4)), -(-(d * (k - 1) + 1 - 2 * p) // f))
                for k, f, d, p in zip(ks, factors, dilations, pads))
  fused = draw(st.sampled_from([True, False, "auto"]))
  x = _normal(draw, shape_for(layout, sizes, batch, cin))
  kernel = _normal(draw, ks + (cin // groups, cout))
  kw = dict(padding=padding, dilation=dilations, groups=groups, layout=layout)
  up = tuple(n * f for n, f in zip(sizes, factors))
  out = up if padding == "SAME" else jaxup.conv_output_size(
      up, ks, padding=pads, dilation=dilations)

  def down(y):  # the transpose of the convolution, then sum pooling over the blocks
    return _sum_pool(jaxup.conv_transpose(y, kernel, output_size=up, **kw), layout, factors)

  def reference(x, kernel):  # numpy.repeat, then PyTorch's convolution
    for axis, f in zip(_spatial_axes(layout), factors):
      x = np.repeat(x, f, axis=axis)
    return _torch_conv(dict(kw, stride=1), nd, _padding_pairs(
        padding, up, ks, (1,) * nd, dilations))(x, kernel)

  return Example(
      "upsample_conv", lambda a, k: jaxup.upsample_conv(a, k, factors, fused=fused, **kw),
      (x, kernel), _dtype(draw, False), shape_for(layout, out, batch, cout), layout, down=down,
      reference=reference, reference_name="numpy.repeat + torch.nn.functional.conv",
      info=dict(kw=kw, nd=nd, fused=fused))


def _torch_conv(kw, nd, pairs=None):
  """PyTorch's convolution; ``pairs`` (lo, hi) are padded with NumPy first (PyTorch pads
  symmetrically only)."""
  def reference(x, kernel):
    import torch
    layout = kw["layout"]
    weight = np.transpose(kernel, (nd + 1, nd) + tuple(range(nd)))
    a = to_ncs(x, layout)
    if pairs is not None:
      a = np.pad(a, ((0, 0), (0, 0)) + tuple(pairs))
    y = getattr(torch.nn.functional, f"conv{nd}d")(
        torch.from_numpy(a), torch.from_numpy(weight), stride=kw["stride"],
        padding=0 if pairs is not None else tuple(kw["padding"]), dilation=kw["dilation"],
        groups=kw["groups"])
    return from_ncs(y.numpy(), layout)
  return reference


@st.composite
def conv_transpose_examples(draw):
  nd = draw(st.integers(1, 3))
  layout = draw(st.sampled_from(layouts(nd, channels_optional=False)))
  groups = draw(st.sampled_from([1, 2]))
  cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
  batch = draw(st.sampled_from([0, 1, 2])) if "N" in layout else 1
  ks = tuple(draw(st.integers(1, 3)) for _ in range(nd))
  strides = tuple(draw(st.integers(1, 3)) for _ in range(nd))
  dilations = tuple(draw(st.integers(1, 2)) for _ in range(nd))
  pads = tuple(draw(st.integers(0, d * (k - 1))) for k, d in zip(ks, dilations))
  outpads = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(strides, dilations))
  sizes = tuple(draw(st.integers(1, 4)) for _ in range(nd))
  try:
    out = jaxup.conv_transpose_output_size(sizes, ks, stride=strides, padding=pads,
                                           output_padding=outpads, dilation=dilations)
  except ValueError:
    pads = (0,) * nd
    out = jaxup.conv_transpose_output_size(sizes, ks, stride=strides, padding=pads,
                                           output_padding=outpads, dilation=dilations)
  x = _normal(draw, shape_for(layout, sizes, batch, cin))
  kernel = _normal(draw, ks + (cout // groups, cin))
  kw = dict(stride=strides, padding=pads, dilation=dilations, groups=groups, layout=layout)

  # The named adjoint: the strided convolution it transposes. An output_padding at or above
  # the stride (allowed below the dilation) is that convolution with p_hi - output_padding.
  pairs = tuple((p, p - op if op >= s else p) for p, op, s in zip(pads, outpads, strides))
  down = None if any(hi < 0 for _, hi in pairs) else (
      lambda y: jaxup.conv(y, kernel, **dict(kw, padding=pairs)))

  def reference(x, kernel):
    import torch
    weight = np.transpose(kernel, (nd + 1, nd) + tuple(range(nd)))
    y = getattr(torch.nn.functional, f"conv_transpose{nd}d")(
        torch.from_numpy(to_ncs(x, layout)), torch.from_numpy(weight), stride=strides,
        padding=pads, output_padding=outpads, dilation=dilations, groups=groups)
    return from_ncs(y.numpy(), layout)

  return Example(
      "conv_transpose", lambda a, k: jaxup.conv_transpose(a, k, output_padding=outpads, **kw),
      (x, kernel), _dtype(draw, False), shape_for(layout, out, batch, cout), layout,
      down=down, reference=reference, reference_name="torch.nn.functional.conv_transpose",
      info=dict(kw=kw, nd=nd))


def _factor_draw(draw, *, channels_optional=True, max_size=4):
  nd = draw(st.integers(1, 3))
  layout = draw(st.sampled_from(layouts(nd, channels_optional=channels_optional)))
  batch = draw(st.sampled_from([0, 1, 2])) if "N" in layout else 1
  channels = draw(st.sampled_from([0, 1, 3])) if "C" in layout else 1
  sizes = tuple(draw(st.integers(1, max_size)) for _ in range(nd))
  factors = tuple(draw(st.integers(1, 3)) for _ in range(nd))
  return nd, layout, batch, channels, sizes, factors


def _spatial_axes(layout):
  return [i for i, c in enumerate(layout) if c not in "NC"]


def _sum_pool(y, layout, factors):
  y = np.asarray(y)
  for axis, f in zip(_spatial_axes(layout), factors):
    shape = y.shape[:axis] + (y.shape[axis] // f, f) + y.shape[axis + 1:]
    y = y.reshape(shape).sum(axis=axis + 1)
  return y


@st.composite
def nearest_examples(draw):
  nd, layout, batch, channels, sizes, factors = _factor_draw(draw)
  x = _normal(draw, shape_for(layout, sizes, batch, channels))
  out = tuple(n * f for n, f in zip(sizes, factors))

  def reference(x):
    for axis, f in zip(_spatial_axes(layout), factors):
      x = np.repeat(x, f, axis=axis)
    return x

  return Example("upsample_nearest", lambda a: jaxup.upsample_nearest(a, factors, layout=layout),
                 (x,), _dtype(draw, True), shape_for(layout, out, batch, channels), layout,
                 down=lambda y: _sum_pool(y, layout, factors), reference=reference,
                 reference_name="numpy.repeat", exact=True)


@st.composite
def bed_of_nails_examples(draw):
  nd, layout, batch, channels, sizes, factors = _factor_draw(draw)
  x = _normal(draw, shape_for(layout, sizes, batch, channels))
  out = tuple(n * f for n, f in zip(sizes, factors))
  strided = lambda y: np.asarray(y)[tuple(
      slice(None, None, factors[_spatial_axes(layout).index(a)]) if c not in "NC" else
      slice(None) for a, c in enumerate(layout))]

  def reference(x):
    y = np.zeros(shape_for(layout, out, batch, channels))
    y[tuple(slice(None, None, factors[_spatial_axes(layout).index(a)]) if c not in "NC" else
            slice(None) for a, c in enumerate(layout))] = x
    return y

  return Example("bed_of_nails", lambda a: jaxup.bed_of_nails(a, factors, layout=layout),
                 (x,), _dtype(draw, True), shape_for(layout, out, batch, channels), layout,
                 down=strided, reference=reference, reference_name="numpy strided assignment",
                 exact=True)


def shuffle_model(x, layout, factors, order, *, inverse=False):
  """pixel_shuffle (or its inverse) by NumPy reshapes: the channel index is
  ``c * prod(f) + phase`` (CRD) or ``phase * c_out + c`` (DCR), the phase row-major over the
  factors."""
  a = to_ncs(np.asarray(x), layout)
  n, p = len(factors), math.prod(factors)
  batch, channels, sizes = a.shape[0], a.shape[1], a.shape[2:]
  if not inverse:
    c = channels // p
    a = a.reshape(((batch, c) + tuple(factors) if order == "CRD" else
                   (batch,) + tuple(factors) + (c,)) + sizes)
    chan, phase = (1, list(range(2, 2 + n))) if order == "CRD" else (1 + n, list(range(1, 1 + n)))
    space = list(range(2 + n, 2 + 2 * n))
    a = a.transpose([0, chan] + [ax for pair in zip(space, phase) for ax in pair])
    return from_ncs(a.reshape((batch, c) + tuple(s * f for s, f in zip(sizes, factors))),
                    layout)
  small = tuple(s // f for s, f in zip(sizes, factors))
  a = a.reshape((batch, channels) + tuple(v for pair in zip(small, factors) for v in pair))
  space, phase = list(range(2, 2 + 2 * n, 2)), list(range(3, 3 + 2 * n, 2))
  a = a.transpose([0, 1] + phase + space if order == "CRD" else [0] + phase + [1] + space)
  return from_ncs(a.reshape((batch, channels * p) + small), layout)


@st.composite
def pixel_shuffle_examples(draw):
  nd, layout, batch, _, sizes, factors = _factor_draw(draw, channels_optional=False)
  order = draw(st.sampled_from(["CRD", "DCR"]))
  groups = draw(st.sampled_from([0, 1, 2]))
  channels = groups * math.prod(factors)
  x = _normal(draw, shape_for(layout, sizes, batch, channels))
  out = tuple(n * f for n, f in zip(sizes, factors))
  unshuffle = lambda y: jaxup.pixel_unshuffle(y, factors, order=order, layout=layout)

  def reference(x):  # torch has 2-D CRD only
    import torch
    y = torch.nn.functional.pixel_shuffle(torch.from_numpy(to_ncs(x, layout)), factors[0])
    return from_ncs(y.numpy(), layout)

  torch_case = nd == 2 and order == "CRD" and factors[0] == factors[1] and channels > 0
  return Example("pixel_shuffle", lambda a: jaxup.pixel_shuffle(a, factors, order=order,
                                                                layout=layout),
                 (x,), _dtype(draw, True), shape_for(layout, out, batch, groups), layout,
                 down=unshuffle, reference=reference if torch_case else (
                     lambda a: shuffle_model(a, layout, factors, order)),
                 reference_name="torch.nn.functional.pixel_shuffle" if torch_case else
                 "NumPy reshape model", exact=True)


@st.composite
def pixel_unshuffle_examples(draw):
  nd, layout, batch, channels, sizes, factors = _factor_draw(draw, channels_optional=False)
  order = draw(st.sampled_from(["CRD", "DCR"]))
  big = tuple(n * f for n, f in zip(sizes, factors))
  x = _normal(draw, shape_for(layout, big, batch, channels))
  shuffle = lambda y: jaxup.pixel_shuffle(y, factors, order=order, layout=layout)

  def reference(x):
    import torch
    y = torch.nn.functional.pixel_unshuffle(torch.from_numpy(to_ncs(x, layout)), factors[0])
    return from_ncs(y.numpy(), layout)

  torch_case = nd == 2 and order == "CRD" and factors[0] == factors[1]
  return Example("pixel_unshuffle", lambda a: jaxup.pixel_unshuffle(a, factors, order=order,
                                                                    layout=layout),
                 (x,), _dtype(draw, True),
                 shape_for(layout, sizes, batch, channels * math.prod(factors)), layout,
                 down=shuffle, reference=reference if torch_case else (
                     lambda a: shuffle_model(a, layout, factors, order, inverse=True)),
                 reference_name="torch.nn.functional.pixel_unshuffle" if torch_case else
                 "NumPy reshape model", exact=True)


# resize: an independent interpolation matrix per axis from the documented coordinate formulas.
COORDINATES = {
    "half_pixel": lambda y, n, m: (y + 0.5) / (m / n) - 0.5,
    "pytorch_half_pixel": lambda y, n, m: (y + 0.5) / (m / n) - 0.5 if m > 1 else 0 * y,
    "align_corners": lambda y, n, m: y * (n - 1) / (m - 1) if m > 1 else 0 * y,
    "asymmetric": lambda y, n, m: y / (m / n),
}
ROUNDING = {
    "floor": np.floor, "ceil": np.ceil,
    "round_prefer_floor": lambda v: np.ceil(v - 0.5),
    "round_prefer_ceil": lambda v: np.floor(v + 0.5),
}


def interpolation_matrix(n: int, m: int, method: str, mode: str, rounding: str) -> np.ndarray:
  """``[m, n]``: row ``y`` holds the weights of the input samples for output ``y``."""
  y = np.arange(m, dtype=np.float64)
  x = COORDINATES[mode](y, n, m)
  w = np.zeros((m, n))
  if method == "nearest":
    j = np.clip(ROUNDING[rounding](x), 0, n - 1).astype(int)
    w[np.arange(m), j] = 1
    return w
  j0 = np.floor(x)
  frac = x - j0
  for j, weight in ((j0, 1 - frac), (j0 + 1, frac)):
    np.add.at(w, (np.arange(m), np.clip(j, 0, n - 1).astype(int)), weight)
  return w


def apply_per_axis(a, layout, matrices):
  a = np.asarray(a, np.float64)
  for axis, mat in zip(_spatial_axes(layout), matrices):
    a = np.moveaxis(np.tensordot(mat, np.moveaxis(a, axis, 0), axes=1), 0, axis)
  return a


@st.composite
def resize_examples(draw):
  nd = draw(st.integers(1, 3))
  layout = draw(st.sampled_from(layouts(nd, channels_optional=True)))
  batch = draw(st.sampled_from([0, 1, 2])) if "N" in layout else 1
  channels = draw(st.sampled_from([0, 1, 2])) if "C" in layout else 1
  sizes = tuple(draw(st.integers(1, 5)) for _ in range(nd))
  out = tuple(draw(st.integers(1, 9)) for _ in range(nd))
  method = draw(st.sampled_from(["linear", "nearest"]))
  if method == "linear":
    mode = draw(st.sampled_from(sorted(COORDINATES)))
    rounding = None
    kw = dict(method="linear", coordinate_transformation_mode=mode)
  else:
    mode = draw(st.sampled_from(["half_pixel", "asymmetric", "pytorch_half_pixel",
                                 "align_corners"]))
    rounding = draw(st.sampled_from(sorted(ROUNDING)))
    kw = dict(method="nearest", coordinate_transformation_mode=mode, nearest_mode=rounding)
  x = _normal(draw, shape_for(layout, sizes, batch, channels))
  matrices = [interpolation_matrix(n, m, method, mode, rounding) for n, m in zip(sizes, out)]
  return Example(
      "resize", lambda a: jaxup.resize(a, out, layout=layout, **kw), (x,),
      _dtype(draw, method == "nearest"), shape_for(layout, out, batch, channels), layout,
      down=lambda y: apply_per_axis(y, layout, [m.T for m in matrices]),
      reference=lambda a: apply_per_axis(a, layout, matrices),
      reference_name="per-axis interpolation matrices", exact=method == "nearest",
      info=dict(kw=kw))


def _pool_draw(draw, overlapping=st.booleans()):
  nd = draw(st.integers(1, 3))
  layout = draw(st.sampled_from(layouts(nd, channels_optional=True)))
  batch = draw(st.sampled_from([0, 1, 2])) if "N" in layout else 1
  channels = draw(st.sampled_from([0, 1, 2])) if "C" in layout else 1
  windows = tuple(draw(st.integers(1, 3)) for _ in range(nd))
  overlapping = draw(overlapping)
  strides = tuple(draw(st.integers(1, 3)) for _ in range(nd)) if overlapping else windows
  pads = tuple(draw(st.integers(0, k // 2)) for k in windows)
  sizes = tuple(draw(st.integers(max(1, k - 2 * p), 6)) for k, p in zip(windows, pads))
  return nd, layout, batch, channels, windows, strides, pads, sizes


@st.composite
def max_pool_examples(draw):
  nd, layout, batch, channels, windows, strides, pads, sizes = _pool_draw(draw)
  dilations = tuple(draw(st.integers(1, 2)) for _ in range(nd)) if all(
      p == 0 for p in pads) else (1,) * nd
  sizes = tuple(max(n, d * (k - 1) + 1) for n, k, d in zip(sizes, windows, dilations))
  ceil_mode = draw(st.booleans())
  # Halves: windows hold ties, where PyTorch's rule (the first position wins) is what the
  # reference tests; at a tie there is no derivative to compare with finite differences.
  ties = draw(st.booleans())
  x = _normal(draw, shape_for(layout, sizes, batch, channels))
  x = np.round(2 * x) / 2 if ties else x
  kw = dict(stride=strides, padding=pads, dilation=dilations, ceil_mode=ceil_mode,
            layout=layout)
  out = []
  for n, k, s, p, d in zip(sizes, windows, strides, pads, dilations):
    o = jaxup.conv_output_size(n, k, stride=s, padding=(p, p + (s - 1 if ceil_mode else 0)),
                               dilation=d)
    out.append(o - 1 if ceil_mode and (o - 1) * s >= n + p else o)

  def reference(x):
    import torch
    y, i = getattr(torch.nn.functional, f"max_pool{nd}d")(
        torch.from_numpy(to_ncs(x, layout)), windows, strides, pads, dilations,
        ceil_mode=ceil_mode, return_indices=True)
    return from_ncs(y.numpy(), layout), from_ncs(i.numpy(), layout)

  return Example(
      "max_pool", lambda a: jaxup.max_pool(a, windows, return_indices=True, **kw), (x,),
      _dtype(draw, True), shape_for(layout, out, batch, channels), layout, linear=False,
      differentiable=not ties, reference=reference,
      reference_name="torch.nn.functional.max_pool", exact=True)


def _gather(y, indices, layout):
  """The named adjoint of max_unpool: each plane of ``y`` gathered at ``indices``."""
  y, idx = to_ncs(np.asarray(y), layout), to_ncs(np.asarray(indices), layout)
  flat = y.reshape(y.shape[:2] + (-1,))
  out = np.take_along_axis(flat, idx.reshape(idx.shape[:2] + (-1,)), axis=2)
  return from_ncs(out.reshape(idx.shape), layout)


@st.composite
def max_unpool_examples(draw):
  # Mostly non-overlapping windows: distinct indices, where the gather is the named adjoint.
  nd, layout, batch, channels, windows, strides, pads, sizes = _pool_draw(
      draw, st.sampled_from([False, False, False, True]))
  source = _normal(draw, shape_for(layout, sizes, batch, channels))
  _, indices = jaxup.max_pool(source, windows, stride=strides, padding=pads,
                              return_indices=True, layout=layout)
  indices = np.asarray(indices)
  x = _normal(draw, indices.shape)
  kw = dict(stride=strides, padding=pads, output_size=sizes, layout=layout)
  unique = all(len(set(plane.ravel())) == plane.size
               for plane in to_ncs(indices, layout).reshape(-1, math.prod(indices.shape) or 1)
               ) if indices.size else True

  def reference(x, indices):
    import torch
    y = getattr(torch.nn.functional, f"max_unpool{nd}d")(
        torch.from_numpy(to_ncs(x, layout)), torch.from_numpy(to_ncs(indices, layout).astype(
            np.int64)), windows, strides, pads, output_size=sizes)
    return from_ncs(y.numpy(), layout)

  def last_wins(x, indices):
    """Repeated indices: PyTorch's CPU kernel writes them in an order that depends on its
    threads, so the reference is the documented rule, each value in row-major order
    overwriting its target."""
    xs, ids = to_ncs(x, layout), to_ncs(indices, layout)
    out = np.zeros(xs.shape[:2] + (math.prod(sizes),))
    for b in range(xs.shape[0]):
      for c in range(xs.shape[1]):
        for v, i in zip(xs[b, c].ravel(), ids[b, c].ravel()):
          out[b, c, i] = v
    return from_ncs(out.reshape(xs.shape[:2] + tuple(sizes)), layout)

  planes = (batch if "N" in layout else 1) * (channels if "C" in layout else 1)
  return Example(
      "max_unpool", lambda a, i: jaxup.max_unpool(a, i, windows, **kw), (x, indices),
      _dtype(draw, True), shape_for(layout, sizes, batch, channels), layout,
      down=(lambda y: _gather(y, indices, layout)) if unique and planes else None,
      reference=reference if unique else last_wins,
      reference_name="torch.nn.functional.max_unpool" if unique else "last-wins NumPy model",
      exact=True)


@st.composite
def index_converter_examples(draw):
  nd = draw(st.integers(1, 3))
  layout = draw(st.sampled_from(layouts(nd, channels_optional=True)))
  batch = draw(st.sampled_from([0, 1, 3])) if "N" in layout else 1
  channels = draw(st.sampled_from([0, 1, 2])) if "C" in layout else 1
  sizes = tuple(draw(st.integers(1, 4)) for _ in range(nd))
  pooled = tuple(draw(st.integers(1, 3)) for _ in range(nd))
  shape = shape_for(layout, pooled, batch, channels)
  rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
  indices = rng.integers(0, math.prod(sizes), shape).astype(np.int32)
  kind = draw(st.sampled_from(["tf", "tf_batch", "onnx0", "onnx1"]))
  b = np.indices(shape)[layout.index("N")] if "N" in layout else np.zeros(shape, int)
  c = np.indices(shape)[layout.index("C")] if "C" in layout else np.zeros(shape, int)
  nc = channels if "C" in layout else 1
  plane = math.prod(sizes)
  if kind.startswith("tf"):
    with_batch = kind == "tf_batch"
    expected = ((b * plane if with_batch else 0) + indices) * nc + c
    to = lambda i: jaxup.indices_to_tf(i, sizes, include_batch_in_index=with_batch,
                                       layout=layout, dtype=jnp.int64)
    back = lambda i: jaxup.indices_from_tf(i, sizes, include_batch_in_index=with_batch,
                                           layout=layout)
  else:
    order = int(kind[-1])
    coords = np.unravel_index(indices, sizes)
    q = np.ravel_multi_index(coords[::-1], sizes[::-1]) if order else indices
    expected = (b * nc + c) * plane + q
    to = lambda i: jaxup.indices_to_onnx(i, sizes, storage_order=order, layout=layout,
                                         dtype=jnp.int64)
    back = lambda i: jaxup.indices_from_onnx(i, sizes, storage_order=order, layout=layout)
  return indices, expected, to, back, layout


# upfirdn and the blurs: an independent NumPy model of the four documented steps.
def upfirdn_model(x, f, layout, ups, downs, pads, *, gain=1.0, flip_filter=False):
  """Zero insertion, padding (negative crops), true convolution over the fully overlapping
  positions, subsampling; ``f`` 1-D (separable, ``gain ** (1 / n)`` per axis) or n-D."""
  a = to_ncs(np.asarray(x, np.float64), layout)
  nd = a.ndim - 2
  f = np.asarray(f, np.float64)
  if f.ndim == 1:
    f = math.prod(np.ix_(*([f * gain ** (1 / nd)] * nd)))
  else:
    f = f * gain
  g = f if flip_filter else f[(slice(None, None, -1),) * nd]  # correlation filter
  for i, (u, (lo, hi)) in enumerate(zip(ups, pads)):
    axis = i + 2
    z = np.zeros(a.shape[:axis] + (a.shape[axis] * u,) + a.shape[axis + 1:])
    z[(slice(None),) * axis + (slice(None, None, u),)] = a
    z = np.pad(z, [(0, 0)] * axis + [(max(lo, 0), max(hi, 0))] + [(0, 0)] * (nd - i - 1))
    a = z[(slice(None),) * axis + (slice(max(-lo, 0), z.shape[axis] - max(-hi, 0)),)]
  out = tuple(n - k + 1 for n, k in zip(a.shape[2:], g.shape))
  v = np.zeros(a.shape[:2] + out)
  for idx in np.ndindex(*g.shape):
    v += g[idx] * a[(slice(None), slice(None)) + tuple(
        slice(j, j + o) for j, o in zip(idx, out))]
  v = v[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in downs)]
  return from_ncs(v, layout)


def _upfirdn_adjoint_padding(sizes, ks, ups, downs, pads, out):
  """The padding of upfirdn's transpose, as its docstring states it."""
  return tuple((k - 1 - lo, (n - 1) * u + k - o * d - (k - 1 - lo))
               for n, k, u, d, (lo, _), o in zip(sizes, ks, ups, downs, pads, out))


@st.composite
def upfirdn_examples(draw):
  nd, layout, batch, channels, sizes, ups = _factor_draw(draw)
  downs = tuple(draw(st.integers(1, 3)) for _ in range(nd))
  separable = draw(st.booleans())
  ks = (draw(st.integers(1, 4)),) * nd if separable else tuple(
      draw(st.integers(1, 3)) for _ in range(nd))
  pads = []
  for n, k, u in zip(sizes, ks, ups):
    lo, hi = draw(st.integers(-1, 3)), draw(st.integers(-1, 3))
    pads.append((lo, max(hi, k - n * u - lo)))  # at least one fully overlapping position
  pads = tuple(pads)
  gain = draw(st.sampled_from([1.0, 2.0, 0.5]))
  flip = draw(st.booleans())
  x = _normal(draw, shape_for(layout, sizes, batch, channels))
  f = _normal(draw, ks[:1] if separable else ks)
  out = tuple((n * u + lo + hi - k + d) // d
              for n, k, u, d, (lo, hi) in zip(sizes, ks, ups, downs, pads))
  kw = dict(up=ups, down=downs, padding=pads, gain=gain, flip_filter=flip, layout=layout)
  adjoint = dict(up=downs, down=ups, gain=gain, flip_filter=not flip, layout=layout,
                 padding=_upfirdn_adjoint_padding(sizes, ks, ups, downs, pads, out))
  return Example(
      "upfirdn", lambda a, k: jaxup.upfirdn(a, k, **kw), (x, f), _dtype(draw, False),
      shape_for(layout, out, batch, channels), layout,
      down=lambda y: jaxup.upfirdn(y, f, **adjoint),
      reference=lambda a, k: upfirdn_model(a, k, layout, ups, downs, pads, gain=gain,
                                           flip_filter=flip),
      reference_name="NumPy zero-insert / pad / convolve / subsample", info=dict(kw=kw))


def _blur_filter(draw, nd):
  separable = draw(st.booleans())
  ks = (draw(st.integers(1, 4)),) * nd if separable else tuple(
      draw(st.integers(1, 3)) for _ in range(nd))
  rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
  return rng.uniform(0.5, 2.0, ks[:1] if separable else ks), ks  # positive: sum > 0


@st.composite
def blur_upsample_examples(draw):
  nd, layout, batch, channels, sizes, factors = _factor_draw(draw)
  f, ks = _blur_filter(draw, nd)
  x = _normal(draw, shape_for(layout, sizes, batch, channels))
  out = tuple(n * s for n, s in zip(sizes, factors))
  pads = tuple(((k + s - 1) // 2, (k - s) // 2) for k, s in zip(ks, factors))
  gain = float(math.prod(factors))
  fn = f / (f.sum() if f.ndim > 1 else f.sum())
  adjoint = dict(up=(1,) * nd, down=factors, gain=gain, flip_filter=True, layout=layout,
                 padding=_upfirdn_adjoint_padding(sizes, ks, factors, (1,) * nd, pads, out))
  return Example(
      "blur_upsample", lambda a: jaxup.blur_upsample(a, factors, filter=f, layout=layout),
      (x,), _dtype(draw, False), shape_for(layout, out, batch, channels), layout,
      # The named adjoint: blur and subsample, upfirdn with up and down exchanged.
      down=lambda y: jaxup.upfirdn(y, fn, **adjoint),
      reference=lambda a: upfirdn_model(a, fn, layout, factors, (1,) * nd, pads, gain=gain),
      reference_name="NumPy zero-insert / pad / convolve", info=dict(factors=factors))


@st.composite
def blur_pool_examples(draw):
  nd, layout, batch, channels, sizes, factors = _factor_draw(draw)
  f, ks = _blur_filter(draw, nd)
  mode = draw(st.sampled_from(["reflect", "replicate", "zeros"]))
  if mode == "reflect":  # each reflect padding must be below its axis' size
    sizes = tuple(max(n, k // 2 + 1) for n, k in zip(sizes, ks))
  x = _normal(draw, shape_for(layout, sizes, batch, channels))
  out = tuple(-(-n // s) for n, s in zip(sizes, factors))
  numpy_mode = {"reflect": "reflect", "replicate": "edge", "zeros": "constant"}[mode]

  def reference(a):  # pad, depthwise correlation with the normalised filter, subsample
    a = to_ncs(np.asarray(a), layout)
    a = np.pad(a, [(0, 0), (0, 0)] + [((k - 1) // 2, k // 2) for k in ks], mode=numpy_mode)
    return upfirdn_model(from_ncs(a, layout), (f / f.sum())[(slice(None, None, -1),) * f.ndim],
                         layout, (1,) * nd, factors, ((0, 0),) * nd)

  return Example(
      "blur_pool", lambda a: jaxup.blur_pool(a, factors, filter=f, padding_mode=mode,
                                             layout=layout),
      (x,), _dtype(draw, False), shape_for(layout, out, batch, channels), layout,
      reference=reference, reference_name="NumPy pad + depthwise correlation + subsample",
      info=dict(mode=mode))


# grid_sample: bilinear's transpose as an independent NumPy splat (scatter-add).
def _numpy_coordinate(g, size, padding_mode, align_corners):
  u = (g + 1) / 2 * (size - 1) if align_corners else ((g + 1) * size - 1) / 2
  if padding_mode == "border":
    return np.clip(u, 0, size - 1)
  if padding_mode == "reflection":
    low, high = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
    if high == low:
      return np.zeros_like(u)
    span = high - low
    c = np.abs(u - low)
    flips, extra = np.floor(c / span), np.fmod(c, span)
    return np.clip(np.where(flips % 2 == 0, low + extra, high - extra), 0, size - 1)
  return u


def bilinear_splat(y, grid, sizes, layout, padding_mode, align_corners):
  """The adjoint of bilinear grid_sample in ``x``: each output value added onto the ``2^n``
  input samples it read, with the same weights (out-of-range taps dropped)."""
  ys = to_ncs(np.asarray(y, np.float64), layout)  # [N, C, *S_out]
  g = np.asarray(grid, np.float64)
  if "N" not in layout:
    g = g[None]
  nd = len(sizes)
  out = np.zeros(ys.shape[:2] + tuple(sizes))
  coords = [_numpy_coordinate(g[..., nd - 1 - a], n, padding_mode, align_corners)
            for a, n in enumerate(sizes)]  # each [N, *S_out]
  for corner in np.ndindex(*(2,) * nd):
    weight = np.ones(g.shape[:-1])
    index, valid = [], np.ones(g.shape[:-1], bool)
    for u, c, n in zip(coords, corner, sizes):
      i = np.floor(u).astype(int) + c
      weight = weight * (1 - np.abs(u - i))
      valid &= (i >= 0) & (i < n)
      index.append(np.clip(i, 0, n - 1))
    for b in range(ys.shape[0]):
      for ch in range(ys.shape[1]):
        np.add.at(out[b, ch], tuple(ix[b] for ix in index),
                  np.where(valid[b], weight[b] * ys[b, ch], 0))
  return from_ncs(out, layout)


@st.composite
def grid_sample_examples(draw):
  nd, layout, batch, channels, sizes, _ = _factor_draw(draw)
  out = tuple(draw(st.integers(1, 3)) for _ in range(nd))
  mode = draw(st.sampled_from(["bilinear", "nearest", "bicubic"] if nd <= 2
                              else ["bilinear", "nearest"]))
  padding_mode = draw(st.sampled_from(["zeros", "border", "reflection"]))
  align_corners = draw(st.booleans())
  x = _normal(draw, shape_for(layout, sizes, batch, channels))
  grid = 0.8 * _normal(draw, ((batch,) if "N" in layout else ()) + out + (nd,))
  kw = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners, layout=layout)

  def reference(x, grid):  # PyTorch on NC(D)HW; 1-D as a height-one 2-D image read at y = 0
    import torch
    a, g = to_ncs(x, layout), grid if "N" in layout else grid[None]
    if nd == 1:
      a, g = a[:, :, None], np.stack([g[..., 0], 0 * g[..., 0]], -1)[:, None]
    y = torch.nn.functional.grid_sample(
        torch.from_numpy(a), torch.from_numpy(g), mode=mode, padding_mode=padding_mode,
        align_corners=align_corners).numpy()
    return from_ncs(y[:, :, 0] if nd == 1 else y, layout)

  return Example(
      "grid_sample", lambda a, g: jaxup.grid_sample(a, g, **kw), (x, grid),
      # nearest rounds: in a narrower dtype the grid can round to the other neighbour.
      _dtype(draw, False) if mode != "nearest" else jnp.float64,
      shape_for(layout, out, batch, channels), layout,
      differentiable=mode != "nearest",
      down=(lambda y: bilinear_splat(y, grid, sizes, layout, padding_mode, align_corners))
      if mode == "bilinear" else None,
      reference=reference, reference_name="torch.nn.functional.grid_sample",
      batch_axes=(layout.index("N"), 0) if "N" in layout else None, info=kw)


@st.composite
def affine_grid_examples(draw):
  nd = draw(st.integers(1, 3))
  batch = draw(st.sampled_from([0, 1, 2]))
  out = tuple(draw(st.integers(1, 4)) for _ in range(nd))
  align_corners = draw(st.booleans())
  theta = _normal(draw, (batch, nd, nd + 1))
  torch_size = draw(st.booleans())
  size = (batch, 1) + out if torch_size and nd > 1 and batch else out

  def reference(theta):
    import warnings

    import torch
    with warnings.catch_warnings():  # PyTorch warns on unit sizes with align_corners=True
      warnings.simplefilter("ignore", UserWarning)
      return torch.nn.functional.affine_grid(torch.from_numpy(theta), (batch, 1) + out,
                                             align_corners=align_corners).numpy()

  return Example(
      "affine_grid", lambda t: jaxup.affine_grid(t, size, align_corners=align_corners),
      (theta,), _dtype(draw, False), (batch,) + out + (nd,), "N" + SPATIAL[nd],
      reference=reference if nd > 1 else None, reference_name="torch.nn.functional.affine_grid",
      batch_axes=(0,), info=dict(size=size))


@st.composite
def scale_and_translate_examples(draw):
  nd, layout, batch, channels, sizes, _ = _factor_draw(draw)
  letters = [c for c in layout if c not in "NC"]
  axes = draw(st.sampled_from([None] + letters))
  resized = [layout.index(c) for c in (letters if axes is None else axes)]
  out = tuple(draw(st.integers(1, 6)) for _ in resized)
  scale = tuple(draw(st.sampled_from([0.5, 0.75, 1.0, 1.5, 2.0, 3.0])) for _ in resized)
  translation = tuple(draw(st.sampled_from([-1.0, -0.25, 0.0, 0.5, 2.0])) for _ in resized)
  method = draw(st.sampled_from(["linear", "cubic", "lanczos3", "lanczos5"]))
  antialias = draw(st.booleans())
  x = _normal(draw, shape_for(layout, sizes, batch, channels))
  shape = list(x.shape)
  for axis, m in zip(resized, out):
    shape[axis] = m

  def reference(a):
    return jax.image.scale_and_translate(
        jnp.asarray(a), tuple(shape), tuple(resized), jnp.asarray(scale),
        jnp.asarray(translation), method, antialias=antialias)

  return Example(
      "scale_and_translate", lambda a: jaxup.scale_and_translate(
          a, out, scale=scale, translation=translation, method=method, antialias=antialias,
          axes=axes, layout=layout),
      (x,), _dtype(draw, False), tuple(shape), layout,
      # jax.image's own transpose: an independent weight-matrix formulation.
      down=lambda y: jax.linear_transpose(reference, jnp.asarray(x))(jnp.asarray(y))[0],
      reference=reference, reference_name="jax.image.scale_and_translate",
      info=dict(method=method, axes=axes))


# ------------------------------------------------------------------ the properties


def _as_dtype(a, dtype):
  a = np.asarray(a)
  if np.issubdtype(np.dtype(dtype), np.integer):
    info = np.iinfo(np.dtype(dtype))
    return jnp.asarray(np.clip(np.round(a * 20), info.min, info.max), dtype)
  return jnp.asarray(a, dtype)


def _close(actual, expected, dtype, what):
  actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
  assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
  tol = tolerance(dtype) * (1 + (np.max(np.abs(expected)) if expected.size else 0))
  np.testing.assert_allclose(actual, expected, rtol=0, atol=tol, err_msg=what)


def _first(y):
  return y[0] if isinstance(y, tuple) else y


def _stack_batch(example, f):
  """``f`` mapped over the batch axis with vmap, or None without a non-empty batch axis."""
  if "N" not in example.layout or example.arrays[0].shape[example.layout.index("N")] == 0:
    return None
  axis = example.layout.index("N")
  axes = example.batch_axes or tuple(
      axis if i == 0 or a.shape == example.arrays[0].shape else None
      for i, a in enumerate(example.arrays))
  batched = [i for i, a in enumerate(axes) if a is not None]

  def per_item(*items):
    args = list(example.arrays)
    for i, item in zip(batched, items):
      args[i] = jnp.expand_dims(item, axes[i])
    return jax.tree.map(lambda o: jnp.squeeze(o, axis), f(*args))

  return jax.jit(jax.vmap(per_item, in_axes=tuple(axes[i] for i in batched), out_axes=axis))(
      *(jnp.asarray(example.arrays[i]) for i in batched))


def _floats64(example):
  return tuple(jnp.asarray(a) for a in example.arrays)


def check_shape(example: Example) -> bool:
  """The result's shape is the size formula's (``conv_output_size`` and friends)."""
  out = jax.eval_shape(example.call, *_floats64(example))
  assert _first(out).shape == example.expected_shape, (
      example.name, _first(out).shape, example.expected_shape)
  return True


def check_reference(example: Example) -> bool:
  """Float64 (and integer) results equal PyTorch's or the NumPy model's. PyTorch refuses some
  empty shapes: empty arrays are compared with the formulas only."""
  args64 = _floats64(example)
  if example.reference is None or not args64[0].size or (
      not HAS_TORCH and "torch" in example.reference_name):
    return False
  expected = example.reference(*example.arrays)
  got = jax.jit(example.call)(*args64)
  for g, want in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
    _close(g, want, jnp.float64, f"{example.name} vs {example.reference_name}")
  return True


def check_dtypes(example: Example) -> bool:
  """The drawn dtype keeps its dtype and equals the float64 result on the same rounded data
  within that dtype's tolerance (data movement and integers: exactly)."""
  dtype = example.dtype
  call = jax.jit(example.call)
  data = _as_dtype(example.arrays[0], dtype)
  others = [_as_dtype(a, dtype) if np.issubdtype(a.dtype, np.floating) else jnp.asarray(a)
            for a in example.arrays[1:]]
  low = call(data, *others)
  assert _first(low).dtype == dtype, (example.name, _first(low).dtype, dtype)
  wide = call(jnp.asarray(data, jnp.float64), *(
      jnp.asarray(o, jnp.float64) if jnp.issubdtype(o.dtype, jnp.floating) else o
      for o in others))
  what = f"{example.name} in {np.dtype(dtype).name}"
  if np.issubdtype(np.dtype(dtype), np.integer):
    np.testing.assert_array_equal(
        np.asarray(_first(low), np.float64),
        np.asarray(_first(wide), np.float64).astype(dtype).astype(np.float64), err_msg=what)
  elif example.exact:
    np.testing.assert_array_equal(np.asarray(_first(low), np.float64),
                                  np.asarray(_first(wide), np.float64), err_msg=what)
  else:
    _close(_first(low), _first(wide), dtype, what)
  return True


def check_adjoint(example: Example) -> bool:
  """The dot-product identity against the named down-sampler, and ``jax.linear_transpose``
  equal to it."""
  args64 = _floats64(example)
  x = args64[0]
  if not (example.linear and example.down is not None and x.size):
    return False
  up = jax.jit(lambda v: example.call(v, *args64[1:]))
  down = lambda y: jnp.asarray(example.down(y))
  testing.assert_adjoint(up, down, x)
  testing.assert_linear_transpose(up, down, x)
  return True


def check_transforms(example: Example) -> bool:
  """jit == eager, and vmap over the batch == the batched call."""
  args64 = _floats64(example)
  eager = example.call(*args64)
  jitted = jax.jit(example.call)(*args64)
  for got, want in zip(jax.tree.leaves(jitted), jax.tree.leaves(eager)):
    _close(got, want, jnp.float64, f"{example.name}: jit vs eager")
  mapped = _stack_batch(example, example.call)  # jitted inside
  if mapped is not None:
    for got, want in zip(jax.tree.leaves(mapped), jax.tree.leaves(eager)):
      _close(got, want, jnp.float64, f"{example.name}: vmap vs eager")
  return True


def gradients_apply(example: Example) -> bool:
  """Whether the example has a derivative to check: differentiable, non-empty in and out."""
  args64 = _floats64(example)
  out = _first(jax.eval_shape(example.call, *args64))
  return bool(example.differentiable and args64[0].size and math.prod(out.shape))


def check_gradients(example: Example) -> bool:
  """``jvp`` and ``grad`` against finite differences in float64 (reverse mode only where
  XLA:CPU compiles the gradient program: no input-dilated convolution)."""
  args64 = _floats64(example)
  if not gradients_apply(example):
    return False
  f = jax.jit(lambda *a: _first(example.call(*a, *args64[len(a):])))
  floats = tuple(a for a in args64 if jnp.issubdtype(a.dtype, jnp.floating))
  text = jax.jit(jax.grad(lambda *a: jnp.sum(f(*a)), argnums=tuple(range(len(floats))))
                 ).lower(*floats).as_text()
  modes = ("fwd", "rev") if not dilated(text) else ("fwd",)
  check_grads(f, floats, order=1, modes=modes, atol=1e-6, rtol=1e-6)
  return True


OPERATORS = {
    "conv": conv_examples(),
    "conv_transpose": conv_transpose_examples(),
    "upsample_conv": upsample_conv_examples(),
    "upsample_nearest": nearest_examples(),
    "bed_of_nails": bed_of_nails_examples(),
    "resize": resize_examples(),
    "max_pool": max_pool_examples(),
    "max_unpool": max_unpool_examples(),
    "pixel_shuffle": pixel_shuffle_examples(),
    "pixel_unshuffle": pixel_unshuffle_examples(),
    "upfirdn": upfirdn_examples(),
    "blur_upsample": blur_upsample_examples(),
    "blur_pool": blur_pool_examples(),
    "grid_sample": grid_sample_examples(),
    "affine_grid": affine_grid_examples(),
    "scale_and_translate": scale_and_translate_examples(),
}
# Operators with no named down-sampler: max_pool is not linear; blur_pool and affine_grid are
# linear, but their adjoints are not part of the library.
NOT_LINEAR_UPSAMPLERS = {"max_pool", "blur_pool", "affine_grid"}

# The convolutions and scale_and_translate compile the most per example: fewer of them in CI keeps
# the file's wall time on two cores about a minute. A campaign runs the full count for all.
CI_EXAMPLES = {"conv": 5, "conv_transpose": 5, "scale_and_translate": 4}
# Gradients against finite differences cost the most per example: in CI they run on every
# GRADIENT_EVERY-th example that has a derivative to check (the first included), about as
# many as the float64 draws reached when every property shared one body.
GRADIENT_EVERY = 3


def _examples(name: str) -> int:
  if os.environ.get("JAXUP_HYPOTHESIS_PROFILE", "ci") == "ci" and (
      "JAXUP_HYPOTHESIS_EXAMPLES" not in os.environ):
    return CI_EXAMPLES.get(name, SETTINGS.max_examples)
  return SETTINGS.max_examples


def run_property(name: str, check: Callable[[Example], bool], *, every: int = 1,
                 applies: Callable[[Example], bool] = lambda example: True) -> None:
  """``check`` on the drawn examples of operator ``name`` (the same examples for every
  property: the seed is derived from this function), or on every ``every``-th example the
  check ``applies`` to. Fails if no example reached the check, so that a strategy that stops
  drawing what a property needs does not pass silently."""
  reached, seen = [], [0]

  @settings(SETTINGS, max_examples=_examples(name))
  @given(OPERATORS[name])
  def run(example):
    if not applies(example):
      return
    seen[0] += 1
    if (seen[0] - 1) % every == 0 and check(example):
      reached.append(example)

  run()
  assert reached, f"no drawn example of {name} reaches {check.__name__}: widen its strategy"


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_shape(name):
  run_property(name, check_shape)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_reference(name):
  run_property(name, check_reference)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_dtypes(name):
  run_property(name, check_dtypes)


# grid_sample's CI examples reach no non-empty bilinear case (its splat adjoint is also
# tests/test_grid_sample.py::test_adjoint_in_x_is_the_bilinear_splat); a campaign checks it.
_CI_ADJOINT_GAPS = {"grid_sample"} if os.environ.get(
    "JAXUP_HYPOTHESIS_PROFILE", "ci") == "ci" else set()


@pytest.mark.parametrize("name", sorted(set(OPERATORS) - NOT_LINEAR_UPSAMPLERS - _CI_ADJOINT_GAPS))
def test_adjoint(name):
  run_property(name, check_adjoint)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_jit_eager_vmap(name):
  run_property(name, check_transforms)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_gradients(name):
  ci = os.environ.get("JAXUP_HYPOTHESIS_PROFILE", "ci") == "ci"
  run_property(name, check_gradients, every=GRADIENT_EVERY if ci else 1,
               applies=gradients_apply)


@SETTINGS
@given(index_converter_examples())
def test_index_converters_match_the_formats_and_round_trip(case):
  indices, expected, to, back, layout = case
  converted = to(indices)
  np.testing.assert_array_equal(converted, expected)
  np.testing.assert_array_equal(back(converted), indices)
  np.testing.assert_array_equal(jax.jit(to)(indices), expected)


@SETTINGS.__class__(SETTINGS, max_examples=SETTINGS.max_examples * 25)
@given(st.integers(1, 40), st.integers(1, 7), st.integers(1, 5), st.integers(0, 6),
       st.integers(1, 3), st.data())
def test_size_formulas_invert_each_other(size, kernel, stride, padding, dilation, data):
  # The transposed size is the smallest input the convolution maps to `size`; output_padding
  # below the stride gives the others.
  reach = dilation * (kernel - 1)
  padding = min(padding, reach)
  try:
    up = jaxup.conv_transpose_output_size(size, kernel, stride=stride, padding=padding,
                                          dilation=dilation)
  except ValueError:
    assert (size - 1) * stride - 2 * padding + reach + 1 < 1
    return
  extra = data.draw(st.integers(0, stride - 1))
  assert jaxup.conv_output_size(up + extra, kernel, stride=stride, padding=padding,
                                dilation=dilation) == size
  assert jaxup.conv_transpose_output_size(size, kernel, stride=stride, padding=padding,
                                          output_padding=extra, dilation=dilation) == up + extra
  # One more stride of input gives one more output.
  assert jaxup.conv_output_size(up + stride, kernel, stride=stride, padding=padding,
                                dilation=dilation) == size + 1


@SETTINGS
@given(st.integers(1, 3), st.data())
def test_icnr_conv_then_shuffle_is_nearest_upsampling_of_the_sub_kernel(nd, data):
  # icnr returns an initialiser, not an operator on arrays: its property is the one its
  # docstring states, pixel_shuffle(conv(x, W)) == upsample_nearest(conv(x, w)).
  factors = tuple(data.draw(st.integers(1, 2)) for _ in range(nd))
  ks = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
  cin, channels = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
  order = data.draw(st.sampled_from(["CRD", "DCR", "dcr"]))
  phases = math.prod(factors)
  key = jax.random.key(data.draw(st.integers(0, 2**31 - 1)))
  kernel = jaxup.icnr(factors if nd > 1 or data.draw(st.booleans()) else factors[0],
                      order=order)(key, ks + (cin, channels * phases), jnp.float64)
  assert kernel.shape == ks + (cin, channels * phases) and kernel.dtype == jnp.float64
  sub = kernel[..., ::phases] if order == "CRD" else kernel[..., :channels]
  # Every phase of every channel is a copy of the sub-kernel.
  split = np.asarray(kernel).reshape(ks + (cin,) + (
      (channels, phases) if order == "CRD" else (phases, channels)))
  np.testing.assert_array_equal(split, np.expand_dims(
      np.asarray(sub), -1 if order == "CRD" else -2) * np.ones_like(split))
  sizes = tuple(data.draw(st.integers(1, 4)) for _ in range(nd))
  x = jnp.asarray(np.random.default_rng(data.draw(st.integers(0, 2**31 - 1))).standard_normal(
      (data.draw(st.integers(1, 2)),) + sizes + (cin,)))
  layout = "N" + SPATIAL[nd] + "C"
  shuffled = jax.jit(lambda x, k: jaxup.pixel_shuffle(
      jaxup.conv(x, k, padding="SAME"), factors, order=order, layout=layout))(x, kernel)
  plain = jax.jit(lambda x, k: jaxup.upsample_nearest(jaxup.conv(x, k, padding="SAME"),
                                                      factors, layout=layout))(x, sub)
  np.testing.assert_allclose(shuffled, plain, rtol=0, atol=1e-12)


def test_every_public_function_has_a_strategy():
  covered = set(OPERATORS) | {"icnr", "indices_to_tf", "indices_from_tf", "indices_to_onnx",
                              "indices_from_onnx", "conv_output_size",
                              "conv_transpose_output_size"}
  elsewhere = {"Layout", "parse_layout", "kernel_from_torch"}  # no array semantics to fuzz
  assert set(jaxup.__all__) - elsewhere <= covered, set(jaxup.__all__) - elsewhere - covered
