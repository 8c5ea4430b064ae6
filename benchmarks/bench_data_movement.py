"""Nearest, bed-of-nails and pixel-shuffle upsampling against an elementwise pass.

Every operator here only moves data, so the bar is one XLA elementwise pass over an array of
the output's size (``y * 2`` on a precomputed output-shaped array): reading the input and
writing the output should cost no more than that. Alternative formulations are timed beside
the library's, and checked equal to it first.

float32, factor 2, input (8, 256, 256, 32) -> output (8, 512, 512, 32); pixel shuffle takes
(8, 256, 256, 128) to the same output.

Run: python benchmarks/bench_data_movement.py
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jaxup  # noqa: E402
from benchmarks._timing import compare, compile_stats, format_row  # noqa: E402

N, H, W, C, S = 8, 256, 256, 32, 2


def nearest_repeat(x):
  return jnp.repeat(jnp.repeat(x, S, axis=1), S, axis=2)


def nearest_image_resize(x):
  n, h, w, c = x.shape
  return jax.image.resize(x, (n, h * S, w * S, c), method="nearest")


def nails_unit_axes(x):
  # [N, H, 1, W, 1, C] padded to [N, H, S, W, S, C] at the high end, then merged.
  n, h, w, c = x.shape
  y = lax.pad(x[:, :, None, :, None, :], jnp.zeros((), x.dtype),
              [(0, 0, 0), (0, 0, 0), (0, S - 1, 0), (0, 0, 0), (0, S - 1, 0), (0, 0, 0)])
  return y.reshape(n, h * S, w * S, c)


def nails_scatter(x):
  n, h, w, c = x.shape
  return jnp.zeros((n, h * S, w * S, c), x.dtype).at[:, ::S, ::S, :].set(x)


def nails_where(x):
  up = jaxup.upsample_nearest(x, S)
  rows = lax.broadcasted_iota(jnp.int32, (1, up.shape[1], up.shape[2], 1), 1)
  cols = lax.broadcasted_iota(jnp.int32, (1, up.shape[1], up.shape[2], 1), 2)
  keep = (rows % S == 0) & (cols % S == 0)
  return jnp.where(keep, up, jnp.zeros((), x.dtype))


def shuffle_einshape(x):
  # The same permutation spelled with jnp.reshape / jnp.transpose (CRD order).
  n, h, w, cs = x.shape
  c = cs // (S * S)
  y = x.reshape(n, h, w, c, S, S).transpose(0, 1, 4, 2, 5, 3)
  return y.reshape(n, h * S, w * S, c)


def section(title, x, baseline_input, candidates):
  """Checks candidates agree, prints compile stats and the alternating medians."""
  print(f"\n## {title}: input {x.shape} -> output {baseline_input.shape}")
  double = jax.jit(lambda y: y * 2)
  jitted = {name: jax.jit(fn) for name, fn in candidates.items()}
  reference = None
  for name, fn in jitted.items():
    out = np.asarray(fn(x))
    if reference is None:
      reference = out
    np.testing.assert_array_equal(out, reference, err_msg=name)
  stats = {"y * 2": compile_stats(lambda y: y * 2, baseline_input)}
  stats.update({name: compile_stats(fn, x) for name, fn in candidates.items()})
  for name, st in stats.items():
    print(f"  {name:<28} compile {st['compile_s'] * 1e3:7.1f} ms, temp bytes "
          f"{st['temp_bytes']:>11,}, output bytes {st['output_bytes']:>11,}")
  calls = {"y * 2": lambda: double(baseline_input)}
  calls.update({name: (lambda f=fn: f(x)) for name, fn in jitted.items()})
  medians = compare(calls, repeats=30)
  print("  " + format_row("median", medians, "y * 2"))


def main():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((N, H, W, C)), jnp.float32)
  deep = jnp.asarray(rng.standard_normal((N, H, W, C * S * S)), jnp.float32)
  out_like = jnp.asarray(rng.standard_normal((N, H * S, W * S, C)), jnp.float32)
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, float32, factor {S}")

  section("upsample_nearest", x, out_like, {
      "upsample_nearest": lambda v: jaxup.upsample_nearest(v, S),
      "jnp.repeat x2": nearest_repeat,
      "jax.image.resize nearest": nearest_image_resize,
  })
  section("bed_of_nails", x, out_like, {
      "bed_of_nails (pad interior)": lambda v: jaxup.bed_of_nails(v, S),
      "pad unit axes + reshape": nails_unit_axes,
      "scatter .at[::s].set": nails_scatter,
      "where on iota mask": nails_where,
  })
  section("pixel_shuffle", deep, out_like, {
      "pixel_shuffle CRD": lambda v: jaxup.pixel_shuffle(v, S),
      "jnp reshape/transpose CRD": shuffle_einshape,
  })
  section("pixel_shuffle DCR", deep, out_like, {
      "pixel_shuffle DCR": lambda v: jaxup.pixel_shuffle(v, S, order="DCR"),
  })
  section("pixel_unshuffle (output is the deep array)", out_like, deep, {
      "pixel_unshuffle CRD": lambda v: jaxup.pixel_unshuffle(v, S),
  })


if __name__ == "__main__":
  main()
