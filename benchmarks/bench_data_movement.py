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
import resource
import statistics
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jaxup  # noqa: E402
from benchmarks._timing import compare, compile_stats, format_row  # noqa: E402

N, H, W, C, S = 8, 256, 256, 32, 2
REPEATS = 40


def nearest_repeat(x):
  return jnp.repeat(jnp.repeat(x, S, axis=1), S, axis=2)


def nearest_image_resize(x):
  n, h, w, c = x.shape
  return jax.image.resize(x, (n, h * S, w * S, c), method="nearest")


def nails_interior_pad(x):
  # lax.pad's interior padding: S - 1 zeros between values and after the last one.
  return lax.pad(x, jnp.zeros((), x.dtype),
                 [(0, 0, 0), (0, S - 1, S - 1), (0, S - 1, S - 1), (0, 0, 0)])


def nails_scatter(x):
  n, h, w, c = x.shape
  return jnp.zeros((n, h * S, w * S, c), x.dtype).at[:, ::S, ::S, :].set(x)


def nails_unit_axes(x):
  # [N, H, 1, W, 1, C] padded with S - 1 zeros at the end of the unit axes, then merged.
  n, h, w, c = x.shape
  y = lax.pad(x[:, :, None, :, None, :], jnp.zeros((), x.dtype),
              [(0, 0, 0), (0, 0, 0), (0, S - 1, 0), (0, 0, 0), (0, S - 1, 0), (0, 0, 0)])
  return y.reshape(n, h * S, w * S, c)


def shuffle_merged(order):
  # The transpose with the axes that stay neighbours merged first: fewer, longer runs.
  def shuffle(x):
    n, h, w, cs = x.shape
    c = cs // (S * S)
    if order == "CRD":  # (NH, W, C, i, j) -> (NH, i, W, j, C)
      y = lax.transpose(x.reshape(n * h, w, c, S, S), (0, 3, 1, 4, 2))
    else:  # (NH, W, i, j*C) -> (NH, i, W, j*C)
      y = lax.transpose(x.reshape(n * h, w, S, S * c), (0, 2, 1, 3))
    return y.reshape(n, h * S, w * S, c)
  return shuffle


def shuffle_slices_crd(x):
  # Channel k = i * S + j of every group is x[..., k::S*S]; stack the offsets into place.
  n, h, w, cs = x.shape
  rows = [jnp.stack([x[..., i * S + j::S * S] for j in range(S)], axis=3) for i in range(S)]
  return jnp.stack(rows, axis=2).reshape(n, h * S, w * S, cs // (S * S))


def cpu_medians(calls, repeats):
  """Median user and system CPU seconds per call, alternating like compare().

  On a shared machine the wall clock also counts waiting for a core and the kernel's page
  faults on each fresh output buffer; user CPU time is the operator's own work.
  """
  times = {name: ([], []) for name in calls}
  for _ in range(repeats):
    for name, fn in calls.items():
      before = resource.getrusage(resource.RUSAGE_SELF)
      fn().block_until_ready()
      after = resource.getrusage(resource.RUSAGE_SELF)
      times[name][0].append(after.ru_utime - before.ru_utime)
      times[name][1].append(after.ru_stime - before.ru_stime)
  return {name: (statistics.median(u), statistics.median(s)) for name, (u, s) in times.items()}


def section(title, x, baseline_input, candidates):
  """Checks candidates agree, prints compile stats and the alternating medians."""
  print(f"\n## {title}: input {x.shape} -> output {baseline_input.shape}")
  # Compile statistics first, from fresh jit objects, before anything is cached.
  stats = {"y * 2": compile_stats(lambda y: y * 2, baseline_input)}
  stats.update({name: compile_stats(fn, x) for name, fn in candidates.items()})
  double = jax.jit(lambda y: y * 2)
  jitted = {name: jax.jit(fn) for name, fn in candidates.items()}
  reference = None
  for name, fn in jitted.items():
    out = np.asarray(fn(x))
    if reference is None:
      reference = out
    np.testing.assert_array_equal(out, reference, err_msg=name)
  for name, st in stats.items():
    print(f"  {name:<28} compile {st['compile_s'] * 1e3:7.1f} ms, temp bytes "
          f"{st['temp_bytes']:>11,}, output bytes {st['output_bytes']:>11,}")
  calls = {"y * 2": lambda: double(baseline_input)}
  calls.update({name: (lambda f=fn: f(x)) for name, fn in jitted.items()})
  medians = compare(calls, repeats=REPEATS)
  print("  " + format_row("median", medians, "y * 2"))
  cpu = cpu_medians(calls, REPEATS // 2)
  base = cpu["y * 2"][0]
  print("  cpu: " + ", ".join(f"{name}=user {u * 1e3:.1f}ms ({u / base:.2f}x) sys {s * 1e3:.1f}ms"
                              for name, (u, s) in cpu.items()))


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
      "bed_of_nails (iota mask)": lambda v: jaxup.bed_of_nails(v, S),
      "lax.pad interior": nails_interior_pad,
      "pad unit axes + reshape": nails_unit_axes,
      "scatter .at[::s].set": nails_scatter,
  })
  section("pixel_shuffle", deep, out_like, {
      "pixel_shuffle CRD": lambda v: jaxup.pixel_shuffle(v, S),
      "merged-axes transpose CRD": shuffle_merged("CRD"),
      "strided slices + stack CRD": shuffle_slices_crd,
  })
  section("pixel_shuffle DCR", deep, out_like, {
      "pixel_shuffle DCR": lambda v: jaxup.pixel_shuffle(v, S, order="DCR"),
      "merged-axes transpose DCR": shuffle_merged("DCR"),
  })
  section("pixel_unshuffle (output is the deep array)", out_like, deep, {
      "pixel_unshuffle CRD": lambda v: jaxup.pixel_unshuffle(v, S),
  })


if __name__ == "__main__":
  main()
