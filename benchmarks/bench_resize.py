"""Benchmark of jaxup.resize against jax.image and PyTorch (CPU, float32, channels-last).

Run as ``python benchmarks/bench_resize.py``. Each row alternates the candidates in one process
and reports median times with compile excluded; compile time and XLA temp bytes are printed
for the jitted JAX candidates. PyTorch runs on the same data in channels-last memory
(``contiguous(memory_format=torch.channels_last)``) with ``torch.set_num_threads(os.cpu_count())``,
the size of the thread pool XLA's CPU backend uses.
"""

from __future__ import annotations

import functools
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import compare, compile_stats, format_row  # noqa: E402

import jaxup  # noqa: E402


def _scale_and_translate_align_corners(x, out_hw):
  """``align_corners=True`` bilinear through ``jax.image.scale_and_translate``."""
  (h, w), (oh, ow) = x.shape[1:3], out_hw
  scale = jnp.array([(oh - 1) / (h - 1), (ow - 1) / (w - 1)], x.dtype)
  # Output pixel centre y + 0.5 must land on input centre y * (h-1)/(oh-1) + 0.5.
  translate = 0.5 - scale * 0.5
  return jax.image.scale_and_translate(x, x.shape[:1] + tuple(out_hw) + x.shape[3:], (1, 2),
                                       scale, translate, "linear", antialias=False)


def _stats_cell(name, stats):
  temp = stats["temp_bytes"]
  out = stats["output_bytes"]
  return (f"  {name}: compile {stats['compile_s']:.2f}s, temp {temp / 2**20:.1f} MiB, "
          f"output {out / 2**20:.1f} MiB, temp <= output: {temp <= out}")


def main():
  threads = os.cpu_count()
  try:
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
  except ImportError:
    torch = None
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {threads} CPU threads; "
        + (f"torch {torch.__version__} with torch.set_num_threads({threads})" if torch else
           "torch not installed"))
  rng = np.random.default_rng(0)

  # 1. 2x bilinear upsampling, half-pixel (PyTorch bilinear, align_corners=False).
  x_np = rng.standard_normal((8, 256, 256, 32), dtype=np.float32)
  x = jnp.asarray(x_np)
  ours = jax.jit(lambda v: jaxup.resize(v, 512, method="linear"))
  image = jax.jit(lambda v: jax.image.resize(v, (8, 512, 512, 32), "linear", antialias=False))
  np.testing.assert_allclose(ours(x), image(x), atol=1e-5)
  candidates = {"jaxup": lambda: ours(x), "jax.image": lambda: image(x)}
  if torch is not None:
    xt = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    torch_fn = functools.partial(F.interpolate, xt, size=(512, 512), mode="bilinear",
                                 align_corners=False)
    np.testing.assert_allclose(np.asarray(ours(x)), torch_fn().permute(0, 2, 3, 1).numpy(),
                               atol=1e-5)
    candidates["torch"] = torch_fn
  print(format_row("2x bilinear (8,256,256,32)->(512,512)", compare(candidates, repeats=15),
                   "jaxup"))
  print(_stats_cell("jaxup", compile_stats(lambda v: jaxup.resize(v, 512, method="linear"), x)))
  print(_stats_cell("jax.image", compile_stats(
      lambda v: jax.image.resize(v, (8, 512, 512, 32), "linear", antialias=False), x)))

  # 2. Arbitrary size, align_corners=True.
  x_np = rng.standard_normal((8, 200, 200, 32), dtype=np.float32)
  x = jnp.asarray(x_np)
  ours = jax.jit(lambda v: jaxup.resize(v, 333, method="linear", align_corners=True))
  sat = jax.jit(lambda v: _scale_and_translate_align_corners(v, (333, 333)))
  np.testing.assert_allclose(ours(x), sat(x), atol=1e-4)
  candidates = {"jaxup": lambda: ours(x), "scale_and_translate": lambda: sat(x)}
  if torch is not None:
    xt = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    torch_fn = functools.partial(F.interpolate, xt, size=(333, 333), mode="bilinear",
                                 align_corners=True)
    # PyTorch computes align_corners source coordinates in float32.
    np.testing.assert_allclose(np.asarray(ours(x)), torch_fn().permute(0, 2, 3, 1).numpy(),
                               atol=5e-4)
    candidates["torch"] = torch_fn
  print(format_row("align_corners (8,200,200,32)->(333,333)", compare(candidates, repeats=15),
                   "jaxup"))
  print(_stats_cell("jaxup", compile_stats(lambda v: jaxup.resize(v, 333, method="linear", align_corners=True),
                                           x)))
  print(_stats_cell("scale_and_translate", compile_stats(
      lambda v: _scale_and_translate_align_corners(v, (333, 333)), x)))


if __name__ == "__main__":
  main()
