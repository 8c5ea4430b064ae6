"""Weak scaling of a spatially sharded 3-D decoder: per-device memory and time per step.

  python benchmarks/bench_sharding.py                 # 1, 2, 4, 8 host devices, memory and time
  python benchmarks/bench_sharding.py --memory-only   # no timing (compile only)

One training step of the decoder of ``examples/unet3d_sharded.py`` (max pooling with indices,
strided convolution, ``conv_transpose``, trilinear ``resize``, ``upsample_conv``,
``max_unpool``) on a volume ``(1, 16 n, S, S, 4)`` sharded along its depth over ``n`` devices:
each device keeps the same ``(16, S, S)`` slab as ``n`` grows. Perfect weak scaling keeps the
per-device memory (XLA's estimate for the compiled step: arguments, outputs and scratch) and
the time per step constant. Run as a script it starts jax with 8 host devices; on a CPU the
"devices" share its cores, so the times only mean something on an otherwise idle machine with
a core per device.

Within ``benchmarks/run.py`` it contributes one case: the step on the devices that run has.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

if __name__ == "__main__":
  os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))
sys.path.insert(0, os.path.dirname(HERE))

import unet3d_sharded as decoder  # noqa: E402
from _timing import Candidate, Case  # noqa: E402

GROUP = "sharding"
SLAB = 16  # depth per device


def placed_step(devices, side):
  """The compiled step and its arguments on a mesh of ``devices`` along depth."""
  n = len(devices)
  mesh = Mesh(np.array(devices), ("depth",))
  replicated = NamedSharding(mesh, PartitionSpec())
  sharded = NamedSharding(mesh, PartitionSpec(None, "depth"))
  rng = np.random.default_rng(0)
  shape = (1, SLAB * n, side, side, decoder.CHANNELS[0])
  x = jax.device_put(rng.standard_normal(shape).astype(np.float32), sharded)
  y = jax.device_put((rng.standard_normal(shape[:-1] + (1,)) > 0).astype(np.float32), sharded)
  params = jax.device_put(decoder.init_params(jax.random.key(0)), replicated)
  compiled = jax.jit(decoder.step).lower(params, x, y).compile()
  return compiled, (params, x, y)


def measure(n, side, repeats, time_it):
  start = time.perf_counter()
  compiled, args = placed_step(jax.devices()[:n], side)
  compile_s = time.perf_counter() - start
  peak = decoder.peak_bytes(compiled)
  ms = None
  if time_it:
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
      start = time.perf_counter()
      jax.block_until_ready(compiled(*args))
      times.append(time.perf_counter() - start)
    ms = 1e3 * float(np.median(times))
  return peak, ms, compile_s


def cases(quick, smoke=False):
  """One case for ``benchmarks/run.py``: the decoder step sharded over the devices it has."""
  side = 8 if smoke or quick else 32
  n = len(jax.devices())
  compiled, args = placed_step(jax.devices(), side)
  del compiled
  return [Case(f"3-D decoder step, depth sharded over {n} device(s) (1, {SLAB * n}, {side}, "
               f"{side}, 4)", GROUP, "train",
               [Candidate("jaxup", lambda p, x, y: decoder.step(p, x, y)[1], args)], "jaxup")]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--memory-only", action="store_true", help="compile only, no timing")
  parser.add_argument("--side", type=int, default=32, help="the volume's height and width")
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args(argv)
  counts = [n for n in (1, 2, 4, 8) if n <= len(jax.devices())]
  print("| devices | volume | per-device peak MiB | vs 1 device | ms per step |")
  print("|---|---|---|---|---|")
  base = None
  for n in counts:
    peak, ms, _ = measure(n, args.side, args.repeats, not args.memory_only)
    base = base or peak
    shape = f"(1, {SLAB * n}, {args.side}, {args.side}, 4)"
    timing = "not measured" if ms is None else f"{ms:.1f}"
    print(f"| {n} | {shape} | {peak / 2**20:.2f} | {peak / base:.2f}x | {timing} |",
          flush=True)


if __name__ == "__main__":
  main()
