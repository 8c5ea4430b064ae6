"""Convolutions: jaxup.conv, conv_transpose and upsample_conv against lax and PyTorch.

Every candidate computes the same thing (the runner checks it before timing): the PyTorch
convention of each operation, channels-last. ``lax`` is what a user writes without jaxup:
``lax.conv_general_dilated``, ``lax.conv_transpose(transpose_kernel=True)``, ``jax.grad`` of
``lax.conv_general_dilated`` for the input gradient, and ``jnp.repeat`` + convolution for the
upsample-convolution.

  python benchmarks/run.py --only bench_conv      # or: python benchmarks/bench_conv.py
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
                     torch_kernel, torch_or_none)

GROUP = "convolution"
_DN = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}


def lax_conv(x, kernel, stride=1, padding=0, groups=1):
  n = x.ndim - 2
  return lax.conv_general_dilated(x, kernel, (stride,) * n, [(padding, padding)] * n,
                                  dimension_numbers=_DN[n], feature_group_count=groups)


def lax_conv_transpose(x, kernel, stride, padding, output_padding=0):
  """The PyTorch-convention transposed convolution through ``lax.conv_transpose``."""
  n = x.ndim - 2
  k = kernel.shape[0]
  pads = [(k - 1 - padding, k - 1 - padding + output_padding)] * n
  return lax.conv_transpose(x, kernel, (stride,) * n, pads, dimension_numbers=_DN[n],
                            transpose_kernel=True)


def lax_upsample_conv(x, kernel, factor, padding):
  """Nearest upsampling by ``jnp.repeat`` on every spatial axis, then the convolution."""
  for axis in range(1, x.ndim - 1):
    x = jnp.repeat(x, factor, axis=axis)
  return lax_conv(x, kernel, padding=padding)


def _torch_conv(torch, n):
  F = torch.nn.functional
  return {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]


def _torch_conv_transpose(torch, n):
  F = torch.nn.functional
  return {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[n]


def _data(shape, kernel_shape, seed=0):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
  fan_in = int(np.prod(kernel_shape[:-1]))
  kernel = jnp.asarray(rng.standard_normal(kernel_shape) / np.sqrt(fan_in), jnp.float32)
  return x, kernel


def conv_transpose_case(name, shape, k, stride, padding, out_channels, output_padding=0):
  torch = torch_or_none()
  n = len(shape) - 2
  x, kernel = _data(shape, (k,) * n + (out_channels, shape[-1]))
  cands = [
      Candidate("jaxup", lambda x, w: jaxup.conv_transpose(
          x, w, stride=stride, padding=padding, output_padding=output_padding), (x, kernel)),
      Candidate("lax", lambda x, w: lax_conv_transpose(x, w, stride, padding, output_padding),
                (x, kernel)),
  ]
  if torch is not None:
    xt, wt = torch_channels_last(torch, x), torch_kernel(torch, kernel)
    fn = _torch_conv_transpose(torch, n)

    def call():
      with torch.no_grad():
        return channels_last_view(fn(xt, wt, stride=stride, padding=padding,
                                     output_padding=output_padding))
    cands.append(Candidate("torch", call, framework="torch"))
  return Case(f"conv_transpose {name} {shape}->{out_channels}", GROUP, "forward", cands, "lax")


def conv_case(name, shape, k, stride, padding, out_channels):
  torch = torch_or_none()
  n = len(shape) - 2
  x, kernel = _data(shape, (k,) * n + (shape[-1], out_channels))
  cands = [
      Candidate("jaxup", lambda x, w: jaxup.conv(x, w, stride=stride, padding=padding),
                (x, kernel)),
      Candidate("lax", lambda x, w: lax_conv(x, w, stride, padding), (x, kernel)),
  ]
  if torch is not None:
    xt, wt = torch_channels_last(torch, x), torch_kernel(torch, kernel)
    fn = _torch_conv(torch, n)

    def call():
      with torch.no_grad():
        return channels_last_view(fn(xt, wt, stride=stride, padding=padding))
    cands.append(Candidate("torch", call, framework="torch"))
  return Case(f"conv {name} {shape}->{out_channels}", GROUP, "forward", cands, "lax")


def conv_input_grad_case(shape, k, stride, padding, out_channels):
  """The input gradient of a strided convolution (a transposed convolution in disguise)."""
  torch = torch_or_none()
  n = len(shape) - 2
  x, kernel = _data(shape, (k,) * n + (shape[-1], out_channels))

  def loss(conv):
    return lambda x, w: jnp.sum(conv(x, w) ** 2) / 2
  ours = jax.grad(loss(lambda x, w: jaxup.conv(x, w, stride=stride, padding=padding)))
  base = jax.grad(loss(lambda x, w: lax_conv(x, w, stride, padding)))
  cands = [Candidate("jaxup", ours, (x, kernel)), Candidate("lax", base, (x, kernel))]
  if torch is not None:
    xt, wt = torch_channels_last(torch, x).requires_grad_(True), torch_kernel(torch, kernel)
    fn = _torch_conv(torch, n)

    def call():
      y = fn(xt, wt, stride=stride, padding=padding)
      (g,) = torch.autograd.grad((y ** 2).sum() / 2, xt)
      return channels_last_view(g)
    cands.append(Candidate("torch", call, framework="torch"))
  return Case(f"d/dx conv k{k} s{stride} p{padding} {shape}->{out_channels}", GROUP, "grad",
              cands, "lax")


def upsample_conv_case(shape, k, factor, padding, out_channels):
  torch = torch_or_none()
  n = len(shape) - 2
  x, kernel = _data(shape, (k,) * n + (shape[-1], out_channels))
  cands = [
      Candidate("jaxup", lambda x, w: jaxup.upsample_conv(x, w, factor, padding=padding),
                (x, kernel)),
      Candidate("jaxup unfused", lambda x, w: jaxup.conv(
          jaxup.upsample_nearest(x, factor), w, padding=padding), (x, kernel)),
      Candidate("lax", lambda x, w: lax_upsample_conv(x, w, factor, padding), (x, kernel)),
  ]
  if torch is not None:
    xt, wt = torch_channels_last(torch, x), torch_kernel(torch, kernel)
    fn = _torch_conv(torch, n)
    F = torch.nn.functional

    def call():
      with torch.no_grad():
        up = F.interpolate(xt, scale_factor=factor, mode="nearest")
        return channels_last_view(fn(up, wt, padding=padding))
    cands.append(Candidate("torch", call, framework="torch"))
  return Case(f"upsample_conv {factor}x k{k} p{padding} {shape}->{out_channels}", GROUP,
              "forward", cands, "lax")


def cases(quick: bool, smoke: bool = False) -> list:
  if smoke:
    return [conv_transpose_case("k4 s2 p1", (1, 4, 4, 4), 4, 2, 1, 4)]
  b = 2 if quick else 8
  hw = 32 if quick else 64
  return [
      conv_transpose_case("k4 s2 p1 (DCGAN)", (b, hw, hw, 64), 4, 2, 1, 32),
      conv_transpose_case("k3 s2 p1 op1", (b, hw, hw, 64), 3, 2, 1, 32, output_padding=1),
      conv_transpose_case("k2 s2 (U-Net)", (b, hw, hw, 64), 2, 2, 0, 32),
      conv_transpose_case("k2 s2 (U-Net bottom)", (1, 2, 2, 1024), 2, 2, 0, 512),
      conv_transpose_case("k4 s2 p1 (DCGAN layer)", (b, 32, 32, 128), 4, 2, 1, 64),
      conv_case("k3 p1", (b, hw, hw, 64), 3, 1, 1, 64),
      conv_case("k3 p1 (small spatial)", (1, 2, 4, 512), 3, 1, 1, 512),
      conv_input_grad_case((b, hw, hw, 64), 3, 2, 1, 64),
      upsample_conv_case((b, 32, 32, 64), 3, 2, 1, 64),
      upsample_conv_case((1, 4, 4, 512), 3, 2, 1, 512),
  ]


if __name__ == "__main__":
  import run
  sys.exit(run.main(sys.argv[1:], modules=[sys.modules[__name__]]))
