"""Resizing: jaxup.resize against jax.image and PyTorch (CPU, float32, channels-last).

Bilinear 2x with half-pixel centres (PyTorch ``align_corners=False``, ``jax.image.resize``) and
an arbitrary size with ``align_corners=True`` (``jax.image.scale_and_translate``, the only way to
get it from ``jax.image``). PyTorch's ``align_corners`` source coordinates are float32, hence the
looser tolerance of that case.

  python benchmarks/run.py --only bench_resize      # or: python benchmarks/bench_resize.py
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jaxup  # noqa: E402
from _timing import (Candidate, Case, channels_last_view, torch_channels_last,  # noqa: E402
                     torch_or_none)

GROUP = "resize"


def _scale_and_translate_align_corners(x, out_hw):
  """``align_corners=True`` bilinear through ``jax.image.scale_and_translate``."""
  (h, w), (oh, ow) = x.shape[1:3], out_hw
  scale = jnp.array([(oh - 1) / (h - 1), (ow - 1) / (w - 1)], x.dtype)
  # Output pixel centre y + 0.5 must land on input centre y * (h-1)/(oh-1) + 0.5.
  translate = 0.5 - scale * 0.5
  return jax.image.scale_and_translate(x, x.shape[:1] + tuple(out_hw) + x.shape[3:], (1, 2),
                                       scale, translate, "linear", antialias=False)


def bilinear_case(shape, out):
  torch = torch_or_none()
  x = jnp.asarray(np.random.default_rng(0).standard_normal(shape), jnp.float32)
  cands = [
      Candidate("jaxup", lambda v: jaxup.resize(v, out, method="linear"), (x,)),
      Candidate("jax.image", lambda v: jax.image.resize(
          v, (v.shape[0], out, out, v.shape[-1]), "linear", antialias=False), (x,)),
  ]
  if torch is not None:
    xt = torch_channels_last(torch, x)
    F = torch.nn.functional
    cands.append(Candidate("torch", lambda: channels_last_view(F.interpolate(
        xt, size=(out, out), mode="bilinear", align_corners=False)), framework="torch"))
  return Case(f"bilinear {shape}->{out}x{out}", GROUP, "forward", cands, "jax.image",
              tolerance=1e-5)


def align_corners_case(shape, out):
  torch = torch_or_none()
  x = jnp.asarray(np.random.default_rng(1).standard_normal(shape), jnp.float32)
  cands = [
      Candidate("jaxup", lambda v: jaxup.resize(v, out, method="linear", align_corners=True), (x,)),
      Candidate("scale_and_translate",
                lambda v: _scale_and_translate_align_corners(v, (out, out)), (x,)),
  ]
  if torch is not None:
    xt = torch_channels_last(torch, x)
    F = torch.nn.functional
    cands.append(Candidate("torch", lambda: channels_last_view(F.interpolate(
        xt, size=(out, out), mode="bilinear", align_corners=True)), framework="torch"))
  return Case(f"bilinear align_corners {shape}->{out}x{out}", GROUP, "forward", cands,
              "scale_and_translate", tolerance=1e-4)


def cases(quick: bool, smoke: bool = False) -> list:
  if smoke:
    return [bilinear_case((1, 8, 8, 4), 16)]
  if quick:
    return [bilinear_case((2, 64, 64, 32), 128), align_corners_case((2, 50, 50, 32), 83)]
  return [bilinear_case((8, 256, 256, 32), 512), align_corners_case((8, 200, 200, 32), 333)]


if __name__ == "__main__":
  import run
  sys.exit(run.main(sys.argv[1:], modules=[sys.modules[__name__]]))
