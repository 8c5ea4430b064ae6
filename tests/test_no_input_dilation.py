"""No public function, nor its jit, grad, jvp, vmap or linear_transpose, emits an input-dilated
convolution (``lhs_dilation != 1``): XLA:CPU aborts the process on some of them.

Programs are only lowered to StableHLO and their text searched; nothing here is compiled or
run, so a regression fails this test instead of killing the test process.
"""

from __future__ import annotations

import re
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import jaxup

# StableHLO prints a convolution's window as `lhs_dilate = [2, 2]`; the generic MLIR form
# writes `lhs_dilation = array<i64: 2, 2>`.
_LHS_DILATION = re.compile(r"lhs_dilat(?:e|ion)\s*=\s*(?:\[|array<i64:?)\s*([0-9,\s]*)[\]>]")


def input_dilations(text: str) -> list[tuple[int, ...]]:
  """The ``lhs_dilation`` of every convolution in a lowered module's text."""
  return [tuple(int(v) for v in m.group(1).replace(",", " ").split())
          for m in _LHS_DILATION.finditer(text)]


def dilated(text: str) -> list[tuple[int, ...]]:
  """The input dilations in ``text`` that are not all ones."""
  return [d for d in input_dilations(text) if any(v != 1 for v in d)]


class Case(NamedTuple):
  """A public function called on arrays built for a dtype.

  ``args(dtype)`` builds the arguments; ``floats`` are the positions of the float arguments
  (differentiated); ``linear`` the position of the argument the function is linear in (None
  if it is not linear).
  """

  name: str
  fn: Callable
  args: Callable
  floats: tuple[int, ...]
  linear: int | None


def _rand(shape, dtype, seed=0):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.standard_normal(shape), dtype)


def _ints(shape, high, seed=0):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.integers(0, high, shape), jnp.int32)


CASES = [
    Case("conv stride 2 padding 1",  # the program that aborted XLA:CPU in grad
         lambda x, k: jaxup.conv(x, k, stride=2, padding=1),
         lambda dt: (_rand((1, 1, 4, 1), dt), _rand((2, 2, 1, 1), dt, 1)), (0, 1), 0),
    Case("conv 2-D NCHW stride (2, 3) dilation 2 groups 2",
         lambda x, k: jaxup.conv(x, k, stride=(2, 3), dilation=2, groups=2, padding="SAME",
                                 layout="NCHW"),
         lambda dt: (_rand((2, 4, 9, 8), dt), _rand((3, 2, 2, 6), dt, 1)), (0, 1), 0),
    Case("conv 1-D stride 3", lambda x, k: jaxup.conv(x, k, stride=3),
         lambda dt: (_rand((2, 10, 3), dt), _rand((4, 3, 2), dt, 1)), (0, 1), 0),
    Case("conv 3-D stride 2 unbatched",
         lambda x, k: jaxup.conv(x, k, stride=2, padding=1, layout="DHWC"),
         lambda dt: (_rand((5, 6, 4, 2), dt), _rand((3, 3, 2, 2, 3), dt, 1)), (0, 1), 0),
    Case("conv_transpose stride 2 output_padding 1",
         lambda x, k: jaxup.conv_transpose(x, k, stride=2, padding=1, output_padding=1),
         lambda dt: (_rand((2, 3, 4, 3), dt), _rand((3, 3, 2, 3), dt, 1)), (0, 1), 0),
    Case("conv_transpose 1-D stride 3 dilation 2 groups 2",
         lambda x, k: jaxup.conv_transpose(x, k, stride=3, dilation=2, groups=2, layout="NCW"),
         lambda dt: (_rand((2, 4, 5), dt), _rand((3, 1, 4), dt, 1)), (0, 1), 0),
    Case("conv_transpose 3-D SAME",
         lambda x, k: jaxup.conv_transpose(x, k, stride=2, padding="SAME"),
         lambda dt: (_rand((1, 2, 3, 2, 2), dt), _rand((2, 3, 2, 3, 2), dt, 1)), (0, 1), 0),
    Case("upsample_conv polyphase groups 2",
         lambda x, k: jaxup.upsample_conv(x, k, (2, 3), padding=1, groups=2, fused=True),
         lambda dt: (_rand((2, 3, 2, 4), dt), _rand((3, 3, 2, 4), dt, 1)), (0, 1), 0),
    Case("upsample_conv unfused 1-D NCW",
         lambda x, k: jaxup.upsample_conv(x, k, 2, padding="SAME", fused=False, layout="NCW"),
         lambda dt: (_rand((2, 3, 4), dt), _rand((3, 3, 2), dt, 1)), (0, 1), 0),
    Case("upsample_nearest", lambda x: jaxup.upsample_nearest(x, (2, 3)),
         lambda dt: (_rand((2, 3, 4, 2), dt),), (0,), 0),
    Case("bed_of_nails", lambda x: jaxup.bed_of_nails(x, 2, layout="NCDHW"),
         lambda dt: (_rand((1, 2, 2, 3, 2), dt),), (0,), 0),
    Case("resize linear up", lambda x: jaxup.resize(x, (7, 9), method="linear"),
         lambda dt: (_rand((2, 3, 4, 2), dt),), (0,), 0),
    Case("resize cubic antialias down", lambda x: jaxup.resize(
        x, 3, method="cubic", antialias=True, layout="NCW"),
         lambda dt: (_rand((2, 2, 8), dt),), (0,), 0),
    Case("resize nearest scale", lambda x: jaxup.resize(x, scale=1.5, method="nearest"),
         lambda dt: (_rand((1, 3, 4, 3, 1), dt),), (0,), 0),
    Case("pixel_shuffle", lambda x: jaxup.pixel_shuffle(x, 2),
         lambda dt: (_rand((2, 3, 3, 8), dt),), (0,), 0),
    Case("pixel_unshuffle", lambda x: jaxup.pixel_unshuffle(x, 2, order="DCR", layout="NCHW"),
         lambda dt: (_rand((2, 2, 4, 6), dt),), (0,), 0),
    Case("max_pool", lambda x: jaxup.max_pool(x, 3, stride=2, padding=1, dilation=1),
         lambda dt: (_rand((2, 7, 6, 2), dt),), (0,), None),
    Case("max_pool with indices", lambda x: jaxup.max_pool(x, (2,), return_indices=True)[0],
         lambda dt: (_rand((2, 5, 3), dt),), (0,), None),
    Case("max_unpool", lambda v, i: jaxup.max_unpool(v, i, 2),
         lambda dt: (_rand((2, 3, 2, 2), dt), _ints((2, 3, 2, 2), 24)), (0,), 0),
    Case("max_unpool overlapping", lambda v, i: jaxup.max_unpool(v, i, 3, stride=2, padding=1),
         lambda dt: (_rand((2, 3, 2, 2), dt), _ints((2, 3, 2, 2), 15)), (0,), 0),
    Case("kernel_from_torch", jaxup.kernel_from_torch,
         lambda dt: (_rand((4, 3, 2, 3), dt),), (0,), 0),
    Case("upsample_conv fused",
         lambda x, k: jaxup.upsample_conv(x, k, 2, padding=1, fused=True),
         lambda dt: (_rand((2, 3, 4, 2), dt), _rand((3, 3, 2, 3), dt, 1)), (0, 1), 0),
    Case("upsample_conv 1-D unfused groups 2",
         lambda x, k: jaxup.upsample_conv(x, k, 3, groups=2, fused=False),
         lambda dt: (_rand((2, 5, 4), dt), _rand((3, 2, 4), dt, 1)), (0, 1), 0),
    Case("upfirdn up 2 down 3",
         lambda x, f: jaxup.upfirdn(x, f, up=2, down=3, padding=1),
         lambda dt: (_rand((2, 7, 6, 2), dt), _rand((4, 3), dt, 1)), (0, 1), 0),
    Case("blur_upsample", lambda x: jaxup.blur_upsample(x, 2),
         lambda dt: (_rand((2, 4, 5, 2), dt),), (0,), 0),
    Case("blur_pool", lambda x: jaxup.blur_pool(x, 2, layout="NCW"),
         lambda dt: (_rand((2, 2, 9), dt),), (0,), 0),
    Case("scale_and_translate", lambda x: jaxup.scale_and_translate(
        x, (7, 5), scale=(1.7, 1.2), translation=(0.3, -0.5), method="linear"),
         lambda dt: (_rand((2, 4, 4, 2), dt),), (0,), 0),
    Case("grid_sample", lambda x, g: jaxup.grid_sample(x, g),
         lambda dt: (_rand((2, 4, 5, 2), dt), _rand((2, 3, 3, 2), dt, 1) * 0.8), (0, 1), 0),
    Case("affine_grid", lambda t: jaxup.affine_grid(t, (2, 3, 4, 1)),
         lambda dt: (_rand((2, 2, 3), dt),), (0,), 0),
    Case("indices_to_tf", lambda i: jaxup.indices_to_tf(i, (6, 4), include_batch_in_index=True),
         lambda dt: (_ints((2, 3, 2, 2), 24),), (), None),
    Case("indices_from_tf", lambda i: jaxup.indices_from_tf(i, (6, 4)),
         lambda dt: (_ints((2, 3, 2, 2), 48),), (), None),
    Case("indices_to_onnx", lambda i: jaxup.indices_to_onnx(i, (6, 4), storage_order=1),
         lambda dt: (_ints((2, 3, 2, 2), 24),), (), None),
    Case("indices_from_onnx", lambda i: jaxup.indices_from_onnx(i, (6, 4), storage_order=1),
         lambda dt: (_ints((2, 3, 2, 2), 96),), (), None),
]

# Public names that build no array program (static size formulas, layout parsing).
NOT_PROGRAMS = {"Layout", "parse_layout", "conv_output_size", "conv_transpose_output_size",
                "icnr"}  # icnr returns an initializer, not an array program


def programs(case: Case, dtype):
  """Every transformation of ``case`` this test lowers: name -> (function, arguments)."""
  args = case.args(dtype)
  fn = case.fn
  out = {"jit": (fn, args)}
  scalar = lambda *a: jnp.sum(fn(*a))
  for i in case.floats:
    out[f"grad wrt arg {i}"] = (jax.grad(scalar, argnums=i), args)
    out[f"second derivative wrt arg {i}"] = (
        jax.grad(lambda *a: jnp.sum(jax.grad(scalar, argnums=i)(*a) ** 2), argnums=i), args)
  if case.floats:
    def jvp(*a):
      tangents = tuple(jnp.ones_like(a[i]) if i in case.floats else None
                       for i in range(len(a)))
      def at(*floats):
        full = list(a)
        for i, f in zip(case.floats, floats):
          full[i] = f
        return fn(*full)
      return jax.jvp(at, tuple(a[i] for i in case.floats),
                     tuple(t for t in tangents if t is not None))
    out["jvp"] = (jvp, args)
  stacked = (jnp.stack([args[0], args[0]]),) + tuple(args[1:])
  out["vmap"] = (jax.vmap(fn, in_axes=(0,) + (None,) * (len(args) - 1)), stacked)
  if case.linear is not None:
    i = case.linear
    def transpose(*a):
      at = lambda v: fn(*a[:i], v, *a[i + 1:])
      y = jax.eval_shape(at, a[i])
      return jax.linear_transpose(at, a[i])(jnp.ones(y.shape, y.dtype))
    out["linear_transpose"] = (transpose, args)
  return out


def test_the_detector_finds_an_input_dilated_convolution():
  x, k = jnp.ones((1, 4, 4, 1)), jnp.ones((2, 2, 1, 1))
  conv = lambda lhs: lax.conv_general_dilated(
      x, k, (1, 1), ((0, 0), (0, 0)), lhs_dilation=lhs, dimension_numbers=("NHWC", "HWIO", "NHWC"))
  assert dilated(jax.jit(lambda: conv((2, 1))).lower().as_text()) == [(2, 1)]
  plain = jax.jit(lambda: conv((1, 1))).lower().as_text()
  assert input_dilations(plain) == [(1, 1)] and dilated(plain) == []
  assert dilated("stablehlo.convolution ... lhs_dilation = array<i64: 1, 3> ...") == [(1, 3)]


def test_every_public_function_is_covered():
  covered = set()
  for case in CASES:
    for name in jaxup.__all__:
      if case.name == name or case.name.startswith(name + " "):
        covered.add(name)
  assert set(jaxup.__all__) - NOT_PROGRAMS <= covered, set(jaxup.__all__) - NOT_PROGRAMS - covered


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_no_input_dilated_convolution(case, dtype):
  found = {}
  for name, (fn, args) in programs(case, dtype).items():
    text = jax.jit(fn).lower(*args).as_text()
    if dilated(text):
      found[name] = dilated(text)
  assert not found, f"{case.name} ({np.dtype(dtype).name}): input-dilated convolutions {found}"
