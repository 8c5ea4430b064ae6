"""grid_sample and upfirdn against the direct computations they replace.

* ``grid_sample`` (bilinear, zeros padding, channels-last) against
  ``jax.scipy.ndimage.map_coordinates`` (order 1, ``mode="constant"``, vmapped over batch and
  channels, with the grid un-normalised by hand) and PyTorch's ``F.grid_sample`` (NCHW);
  forward, and forward + backward in both the input and the grid.
* ``upfirdn`` upsampling by 2 with the 4-tap binomial filter (StyleGAN2's ``upsample2d``) and
  downsampling by 2 (BlurPool's filter and subsample) against the literal definition: zero
  insertion by ``lax.pad`` with interior padding, a depthwise ``lax.conv_general_dilated``,
  and a strided slice; and the same in PyTorch (``F.conv_transpose2d`` is not used: the point is
  the direct computation).

``cases(quick)`` returns the cases for ``benchmarks/run.py``;
``python benchmarks/bench_sampling.py [--quick]`` runs them on their own.
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
from _timing import Candidate, Case, channels_last_view  # noqa: E402

BINOMIAL = np.array([1.0, 3.0, 3.0, 1.0], np.float32)


def _map_coordinates_sample(x, grid):
  """Bilinear, zeros outside, align_corners=False, through map_coordinates: [N, H, W, C]."""
  h, w = x.shape[1:3]
  cols = ((grid[..., 0] + 1) * w - 1) / 2
  rows = ((grid[..., 1] + 1) * h - 1) / 2

  def one(image, r, c):  # image [H, W, C] -> [Ho, Wo, C]
    return jax.vmap(lambda plane: jax.scipy.ndimage.map_coordinates(
        plane, [r, c], order=1, mode="constant", cval=0.0), in_axes=-1, out_axes=-1)(image)

  return jax.vmap(one)(x, rows, cols)


def _train(fn):
  """Forward and backward in every argument."""
  return jax.grad(lambda *a: jnp.sum(fn(*a) ** 2), argnums=(0, 1))


def _direct_upfirdn(x, f2d, up, down, pads):
  """Zero insertion (interior padding), explicit padding, depthwise convolution, subsampling."""
  c = x.shape[-1]
  zero = jnp.zeros((), x.dtype)
  cfg = [(0, 0, 0)] + [(lo, hi + up - 1, up - 1) for lo, hi in pads] + [(0, 0, 0)]
  z = lax.pad(x, zero, cfg)
  kernel = jnp.tile(f2d[::-1, ::-1, None, None], (1, 1, 1, c))
  v = lax.conv_general_dilated(z, kernel, (1, 1), "VALID", dimension_numbers=(
      "NHWC", "HWIO", "NHWC"), feature_group_count=c)
  return v[:, ::down, ::down]


def _torch_candidates(label, make):
  try:
    import torch  # noqa: F401
  except ImportError:
    return []
  return [Candidate(label, make(), framework="torch")]


def _grid_cases(quick):
  n, h, w, c = (2, 32, 32, 8) if quick else (8, 128, 128, 16)
  rng = np.random.default_rng(0)
  x_np = rng.standard_normal((n, h, w, c)).astype(np.float32)
  g_np = rng.uniform(-1.1, 1.1, (n, h, w, 2)).astype(np.float32)
  x, grid = jnp.asarray(x_np), jnp.asarray(g_np)
  jaxup_fn = lambda a, g: jaxup.grid_sample(a, g)

  def torch_forward(train):
    def make():
      import torch
      xt = torch.from_numpy(x_np.transpose(0, 3, 1, 2).copy()).requires_grad_(train)
      gt = torch.from_numpy(g_np).requires_grad_(train)

      def run():  # outputs in the jax candidates' order: NHWC, and (d x, d grid) when training
        y = torch.nn.functional.grid_sample(xt, gt, align_corners=False)
        if train:
          gx, gg = torch.autograd.grad((y ** 2).sum(), (xt, gt))
          return channels_last_view(gx), gg
        return channels_last_view(y)
      return run
    return make

  shape = f"{(n, h, w, c)} float32"
  return [
      Case(f"grid_sample bilinear {shape}", "operators", "forward", [
          Candidate("jaxup", jaxup_fn, (x, grid)),
          Candidate("map_coordinates", _map_coordinates_sample, (x, grid)),
          *_torch_candidates("torch", torch_forward(False))], "map_coordinates"),
      Case(f"grid_sample bilinear {shape}", "operators", "train", [
          Candidate("jaxup", _train(jaxup_fn), (x, grid)),
          Candidate("map_coordinates", _train(_map_coordinates_sample), (x, grid)),
          *_torch_candidates("torch", torch_forward(True))], "map_coordinates"),
  ]


def _upfirdn_cases(quick):
  n, h, w, c = (2, 32, 32, 8) if quick else (8, 128, 128, 32)
  rng = np.random.default_rng(1)
  x_np = rng.standard_normal((n, h, w, c)).astype(np.float32)
  x = jnp.asarray(x_np)
  f = jnp.asarray(BINOMIAL / BINOMIAL.sum())
  f2d = jnp.outer(f, f)
  cases = []
  for name, up, down, pads in [("up 2", 2, 1, ((2, 1), (2, 1))),
                               ("down 2", 1, 2, ((1, 2), (1, 2)))]:
    jaxup_fn = lambda a, up=up, down=down, pads=pads: jaxup.upfirdn(
        a, f, up=up, down=down, padding=pads, gain=float(up * up))
    lax_fn = lambda a, up=up, down=down, pads=pads: up * up * _direct_upfirdn(
        a, f2d, up, down, pads)

    def torch_make(up=up, down=down, pads=pads):
      import torch
      xt = torch.from_numpy(x_np.transpose(0, 3, 1, 2).copy())
      k = torch.from_numpy(np.asarray(f2d)[::-1, ::-1].copy())[None, None].repeat(c, 1, 1, 1)

      def run():
        z = torch.zeros((n, c, h * up, w * up))
        z[:, :, ::up, ::up] = xt
        z = torch.nn.functional.pad(z, [pads[1][0], pads[1][1], pads[0][0], pads[0][1]])
        y = up * up * torch.nn.functional.conv2d(z, k, groups=c)[:, :, ::down, ::down]
        return channels_last_view(y)
      return run

    shape = f"{(n, h, w, c)} float32"
    cases.append(Case(f"upfirdn {name} [1,3,3,1] {shape}", "operators", "forward", [
        Candidate("jaxup", jaxup_fn, (x,)),
        Candidate("lax zero-insert+conv", lax_fn, (x,)),
        *_torch_candidates("torch zero-insert+conv", lambda m=torch_make: m())],
        "lax zero-insert+conv"))
    if down == 1:  # the strided convolution's gradient would dilate its input: forward only
      cases.append(Case(f"upfirdn {name} [1,3,3,1] {shape}", "operators", "train", [
          Candidate("jaxup", jax.grad(lambda a, fn=jaxup_fn: jnp.sum(fn(a) ** 2)), (x,)),
          Candidate("lax zero-insert+conv",
                    jax.grad(lambda a, fn=lax_fn: jnp.sum(fn(a) ** 2)), (x,))],
          "lax zero-insert+conv"))
  return cases


def cases(quick: bool) -> list:
  """The sampling benchmark cases; ``quick`` uses small shapes."""
  return _grid_cases(quick) + _upfirdn_cases(quick)


if __name__ == "__main__":
  import run
  sys.exit(run.main(sys.argv[1:], modules=[sys.modules[__name__]]))
