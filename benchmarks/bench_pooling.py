"""Max pooling with indices and max unpooling against XLA baselines and PyTorch.

2x2 windows at stride 2 on a float32 channels-last input. Baselines: ``lax.reduce_window`` max
pooling (values only: the least a pooling with indices can cost) and one XLA elementwise pass
over an array of the unpooled output's shape (the least an unpooling can cost); neither computes
jaxup's result, so they are timed but not checked. PyTorch's ``max_pool2d(return_indices=True)``
and ``max_unpool2d`` run on channels-last memory and are checked (indices included).

  python benchmarks/run.py --only bench_pooling      # or: python benchmarks/bench_pooling.py
"""

from __future__ import annotations

import os
import sys

import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jaxup  # noqa: E402
from _timing import (Candidate, Case, channels_last_view, torch_channels_last,  # noqa: E402
                     torch_or_none)

GROUP = "pooling"


def reduce_window_pool(x):
  return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def pool_with_indices(x):
  return jaxup.max_pool(x, 2, return_indices=True)


def unpool(values, indices):
  return jaxup.max_unpool(values, indices, 2)


def elementwise(y):
  return y * 2.0


def pool_cases(shape):
  torch = torch_or_none()
  x = jnp.asarray(np.random.default_rng(0).standard_normal(shape), jnp.float32)
  values, indices = pool_with_indices(x)
  out_like = jnp.zeros(shape, jnp.float32)
  pool = [Candidate("jaxup", pool_with_indices, (x,)),
          Candidate("reduce_window (values only)", reduce_window_pool, (x,), check=False)]
  unpool_ = [Candidate("jaxup", unpool, (values, indices)),
             Candidate("y * 2 (output-sized pass)", elementwise, (out_like,), check=False)]
  if torch is not None:
    F = torch.nn.functional
    xt = torch_channels_last(torch, x)
    tv, ti = F.max_pool2d(xt, 2, return_indices=True)

    def torch_pool():
      v, i = F.max_pool2d(xt, 2, return_indices=True)
      return channels_last_view(v), channels_last_view(i)
    pool.append(Candidate("torch", torch_pool, framework="torch"))
    unpool_.append(Candidate("torch", lambda: channels_last_view(F.max_unpool2d(tv, ti, 2)),
                             framework="torch"))
  return [Case(f"max_pool 2x2 + indices {shape}", GROUP, "forward", pool,
               "reduce_window (values only)", tolerance=0.0),
          Case(f"max_unpool 2x2 {shape}", GROUP, "forward", unpool_,
               "y * 2 (output-sized pass)", tolerance=0.0)]


def cases(quick: bool, smoke: bool = False) -> list:
  if smoke:
    return pool_cases((1, 8, 8, 4))
  return pool_cases((2, 64, 64, 32) if quick else (8, 256, 256, 32))


if __name__ == "__main__":
  import run
  sys.exit(run.main(sys.argv[1:], modules=[sys.modules[__name__]]))
