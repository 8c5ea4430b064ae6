"""Nearest, bed-of-nails and pixel-shuffle upsampling against an elementwise pass.

Every operator here only moves data, so the bar is one XLA elementwise pass over an array of
the output's size (``y * 2`` on a precomputed output-shaped array): reading the input and
writing the output should cost no more than that. Alternative formulations are timed beside
the library's, and checked equal to it first.

float32, factor 2, input (8, 256, 256, 32) -> output (8, 512, 512, 32); pixel shuffle takes
(8, 256, 256, 128) to the same output.

Run: python benchmarks/run.py --only bench_data_movement (or this file on its own)
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
from _timing import (Candidate, Case, channels_last_view, torch_channels_last,  # noqa: E402
                     torch_or_none)

GROUP = "data movement"

N, H, W, C, S = 8, 256, 256, 32, 2


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


def _section(title, x, out_like, candidates):
  """A case: the library's formulation first, the alternatives (checked equal), the bar."""
  torch = torch_or_none()
  cands = [Candidate(label, fn, (x,)) for label, fn in candidates.items()]
  cands.append(Candidate("y * 2 (output-sized pass)", lambda y: y * 2, (out_like,), check=False))
  if torch is not None and title in _TORCH:
    xt = torch_channels_last(torch, x)
    fn = _TORCH[title](torch)
    cands.append(Candidate("torch", lambda: channels_last_view(fn(xt)), framework="torch"))
  return Case(f"{title} {tuple(x.shape)}", GROUP, "forward", cands,
              "y * 2 (output-sized pass)", tolerance=0.0)


# PyTorch's equivalents where one exists (channels-first functions on channels-last memory).
_TORCH = {
    "upsample_nearest": lambda torch: (
        lambda t: torch.nn.functional.interpolate(t, scale_factor=S, mode="nearest")),
    "pixel_shuffle": lambda torch: (lambda t: torch.nn.functional.pixel_shuffle(t, S)),
}


def cases(quick: bool, smoke: bool = False) -> list:
  n, h, w, c = (1, 8, 8, 4) if smoke else (2, 64, 64, 32) if quick else (N, H, W, C)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((n, h, w, c)), jnp.float32)
  deep = jnp.asarray(rng.standard_normal((n, h, w, c * S * S)), jnp.float32)
  out_like = jnp.asarray(rng.standard_normal((n, h * S, w * S, c)), jnp.float32)
  all_cases = [
      _section("upsample_nearest", x, out_like, {
          "jaxup": lambda v: jaxup.upsample_nearest(v, S),
          "jnp.repeat x2": nearest_repeat,
          "jax.image.resize nearest": nearest_image_resize,
      }),
      _section("bed_of_nails", x, out_like, {
          "jaxup": lambda v: jaxup.bed_of_nails(v, S),
          "lax.pad interior": nails_interior_pad,
          "pad unit axes + reshape": nails_unit_axes,
          "scatter .at[::s].set": nails_scatter,
      }),
      _section("pixel_shuffle", deep, out_like, {
          "jaxup": lambda v: jaxup.pixel_shuffle(v, S),
          "merged-axes transpose CRD": shuffle_merged("CRD"),
          "strided slices + stack CRD": shuffle_slices_crd,
      }),
      _section("pixel_shuffle DCR", deep, out_like, {
          "jaxup": lambda v: jaxup.pixel_shuffle(v, S, order="DCR"),
          "merged-axes transpose DCR": shuffle_merged("DCR"),
      }),
      _section("pixel_unshuffle", out_like, deep, {
          "jaxup": lambda v: jaxup.pixel_unshuffle(v, S),
      }),
  ]
  return all_cases


if __name__ == "__main__":
  import run
  sys.exit(run.main(sys.argv[1:], modules=[sys.modules[__name__]]))
