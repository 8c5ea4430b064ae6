"""Max pooling with indices and max unpooling against XLA baselines and PyTorch.

float32 (8, 256, 256, 32) channels-last input, 2x2 windows at stride 2. Baselines:
``lax.reduce_window`` max pooling (values only), an XLA elementwise pass over an array of the
unpooled output's shape, and PyTorch's ``max_pool2d(return_indices=True)`` /
``max_unpool2d`` on channels-last memory. Run: ``python benchmarks/bench_pooling.py``.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jaxup  # noqa: E402
from _timing import compare, compile_stats, format_row  # noqa: E402

SHAPE = (8, 256, 256, 32)


def reduce_window_pool(x):
  return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def pool_with_indices(x):
  return jaxup.max_pool(x, 2, return_indices=True)


def unpool(values, indices):
  return jaxup.max_unpool(values, indices, 2)


def elementwise(y):
  return y * 2.0


def _stats_line(name, fn, *args):
  stats = compile_stats(fn, *args)
  return (f"  {name}: compile {stats['compile_s']:.2f}s, temp {stats['temp_bytes']} B, "
          f"output {stats['output_bytes']} B")


def main():
  rng = np.random.default_rng(0)
  x_np = rng.standard_normal(SHAPE).astype(np.float32)
  x = jnp.asarray(x_np)
  out_like = jnp.zeros(SHAPE, jnp.float32)

  print(f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}, input {SHAPE} float32")
  print("compile and memory (XLA memory_analysis):")
  print(_stats_line("reduce_window max", reduce_window_pool, x))
  print(_stats_line("max_pool(return_indices=True)", pool_with_indices, x))
  values, indices = jax.jit(pool_with_indices)(x)
  print(_stats_line("max_unpool", unpool, values, indices))
  print(_stats_line("elementwise over the output", elementwise, out_like))
  window_bytes = 4 * x.size * 4
  print(f"  (window-size x input elements x 4 bytes would be {window_bytes} B)")

  jit_rw, jit_pool = jax.jit(reduce_window_pool), jax.jit(pool_with_indices)
  jit_unpool, jit_elem = jax.jit(unpool), jax.jit(elementwise)
  candidates_pool = {
      "reduce_window": lambda: jit_rw(x),
      "max_pool+idx": lambda: jit_pool(x),
  }
  candidates_unpool = {
      "elementwise": lambda: jit_elem(out_like),
      "max_unpool": lambda: jit_unpool(values, indices),
  }
  try:
    import torch
    import torch.nn.functional as F
  except ImportError:
    torch = None
  if torch is not None:
    xt = torch.from_numpy(x_np).permute(0, 3, 1, 2)  # NCHW view of channels-last memory
    assert xt.is_contiguous(memory_format=torch.channels_last)
    tv, ti = F.max_pool2d(xt, 2, return_indices=True)
    candidates_pool["torch"] = lambda: F.max_pool2d(xt, 2, return_indices=True)
    candidates_unpool["torch"] = lambda: F.max_unpool2d(tv, ti, 2)
    same = np.array_equal(np.asarray(values), tv.permute(0, 2, 3, 1).numpy()) and (
        np.array_equal(np.asarray(indices), ti.permute(0, 2, 3, 1).numpy()))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"values and indices equal to torch: {same}")

  print("median time per call (ratio to the first candidate):")
  print(format_row("max pool 2x2", compare(candidates_pool), "reduce_window"))
  print(format_row("max unpool 2x2", compare(candidates_unpool), "elementwise"))


if __name__ == "__main__":
  main()
