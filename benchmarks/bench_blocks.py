"""Decoder blocks, forward and training step: jaxup against lax alone and PyTorch (CPU).

Each block is written once over a small set of operations and run on three backends:

* ``jaxup``: ``jaxup.conv``, ``conv_transpose``, ``upsample_conv`` and ``max_unpool``;
* ``lax``: what the same block costs on JAX without jaxup (``lax.conv_general_dilated``,
  ``lax.conv_transpose``, ``jnp.repeat`` before a convolution, a scatter for unpooling), the
  code Flax's ``nn.Conv`` / ``nn.ConvTranspose`` layers run;
* ``torch``: ``torch.nn.functional`` on channels-last tensors with one thread per core.

The ``train`` mode is a full training step's computation: the loss ``mean(y ** 2)`` and its
gradient with respect to every kernel (``jax.value_and_grad``; ``torch.autograd.grad``). Blocks
have no bias or normalisation: they measure the upsampling and convolution layers.

* DCGAN generator: ``z [N, 1, 1, 100]`` through transposed convolutions (kernel 4; stride 1
  then 2, padding 1) to ``[N, 64, 64, 3]``, ReLU between and tanh at the end;
* U-Net up path: from ``[1, 2, 2, 1024]`` to ``[1, 32, 32, 64]``, each stage a kernel-2
  stride-2 transposed convolution halving the channels, a concatenation with the skip
  connection and two 3x3 convolutions;
* SegNet decoder stage: max unpooling 2x2 with the encoder's indices, then two 3x3
  convolutions;
* SD-VAE up block: nearest 2x upsampling and a 3x3 convolution at 512 channels from 32x32 and
  at 256 channels from 64x64;
* a 3-D up block: a kernel-2 stride-2 transposed convolution, then two 3x3x3 convolutions.

  python benchmarks/run.py --only bench_blocks      # or: python benchmarks/bench_blocks.py
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jaxup  # noqa: E402
from _timing import (Candidate, Case, channels_last_view, kernel_view,  # noqa: E402
                     torch_channels_last, torch_kernel, torch_or_none)
from bench_conv import lax_conv, lax_conv_transpose, lax_upsample_conv  # noqa: E402

GROUP = "blocks"
# Gradients through ReLUs are discontinuous at zero: float32 rounding that differs between two
# correct formulations can flip one activation's sign, and that one unit's cotangent then moves
# the earlier kernels' gradients by about 1/sqrt(units) of their size. (Measured: in the DCGAN
# generator at batch 8, the matrix-product lowering of its fourth layer flips one of 524288
# activations against float64, where XLA's convolution flips none, and the first kernel's
# gradient moves by 2.1e-3; the same layer's VJP on the same data alone agrees with float64
# to 4e-7.) Training steps are therefore compared at 1e-2.
TRAIN_TOLERANCE = 1e-2


class JaxupOps:
  conv = staticmethod(lambda x, w, padding: jaxup.conv(x, w, padding=padding))
  conv_transpose = staticmethod(
      lambda x, w, stride, padding: jaxup.conv_transpose(x, w, stride=stride, padding=padding))
  upsample_conv = staticmethod(
      lambda x, w, factor, padding: jaxup.upsample_conv(x, w, factor, padding=padding))
  max_unpool = staticmethod(lambda x, indices: jaxup.max_unpool(x, indices, 2))
  relu = staticmethod(jax.nn.relu)
  tanh = staticmethod(jnp.tanh)
  concat = staticmethod(lambda a, b: jnp.concatenate([a, b], axis=-1))


def _scatter_unpool(x, indices):
  """2x2 max unpooling as a user writes it in JAX: a scatter into the flat output planes."""
  n, h, w, c = x.shape
  values = jnp.transpose(x, (0, 3, 1, 2)).reshape(n, c, h * w)
  flat = jnp.transpose(indices, (0, 3, 1, 2)).reshape(n, c, h * w)
  out = jnp.zeros((n, c, 4 * h * w), x.dtype)
  out = out.at[jnp.arange(n)[:, None, None], jnp.arange(c)[None, :, None], flat].set(values)
  return jnp.transpose(out.reshape(n, c, 2 * h, 2 * w), (0, 2, 3, 1))


class LaxOps(JaxupOps):
  conv = staticmethod(lambda x, w, padding: lax_conv(x, w, padding=padding))
  conv_transpose = staticmethod(
      lambda x, w, stride, padding: lax_conv_transpose(x, w, stride, padding))
  upsample_conv = staticmethod(lax_upsample_conv)
  max_unpool = staticmethod(_scatter_unpool)


class TorchOps:
  def __init__(self, torch):
    self.torch, self.F = torch, torch.nn.functional

  def conv(self, x, w, padding):
    return (self.F.conv2d if x.ndim == 4 else self.F.conv3d)(x, w, padding=padding)

  def conv_transpose(self, x, w, stride, padding):
    fn = self.F.conv_transpose2d if x.ndim == 4 else self.F.conv_transpose3d
    return fn(x, w, stride=stride, padding=padding)

  def upsample_conv(self, x, w, factor, padding):
    return self.conv(self.F.interpolate(x, scale_factor=factor, mode="nearest"), w, padding)

  def max_unpool(self, x, indices):
    return self.F.max_unpool2d(x, indices, 2)

  def relu(self, x):
    return self.F.relu(x)

  def tanh(self, x):
    return self.torch.tanh(x)

  def concat(self, a, b):
    return self.torch.cat([a, b], dim=1)


# ----------------------------------------------------------------------------------------------
# The blocks: block(ops, kernels, *inputs) -> output.


def dcgan(ops, ws, z):
  y = ops.relu(ops.conv_transpose(z, ws[0], 1, 0))
  for w in ws[1:-1]:
    y = ops.relu(ops.conv_transpose(y, w, 2, 1))
  return ops.tanh(ops.conv_transpose(y, ws[-1], 2, 1))


def unet_up(ops, ws, x, *skips):
  for stage, skip in enumerate(skips):
    up, conv1, conv2 = ws[3 * stage:3 * stage + 3]
    y = ops.concat(ops.conv_transpose(x, up, 2, 0), skip)
    x = ops.relu(ops.conv(ops.relu(ops.conv(y, conv1, 1)), conv2, 1))
  return x


def segnet(ops, ws, values, indices):
  y = ops.max_unpool(values, indices)
  return ops.relu(ops.conv(ops.relu(ops.conv(y, ws[0], 1)), ws[1], 1))


def sd_vae_up(ops, ws, x):
  return ops.upsample_conv(x, ws[0], 2, 1)


def up3d(ops, ws, x):
  y = ops.conv_transpose(x, ws[0], 2, 0)
  return ops.relu(ops.conv(ops.relu(ops.conv(y, ws[1], 1)), ws[2], 1))


# ----------------------------------------------------------------------------------------------
# Cases.


def _kernel(rng, shape, transpose=False):
  fan_in = int(np.prod(shape[:-2])) * shape[-1 if transpose else -2]
  return jnp.asarray(rng.standard_normal(shape) / np.sqrt(fan_in), jnp.float32)


def _block_cases(name, block, kernels, inputs, modes=("forward", "train"), tolerance=1e-3):
  """A forward case and a training-step case for ``block`` on jaxup, lax and PyTorch.

  ``inputs`` are channels-last jax arrays (integer ones are unpooling indices).
  """
  torch = torch_or_none()
  cases = []
  for mode in modes:
    cands = []
    for label, ops in (("jaxup", JaxupOps), ("lax", LaxOps)):
      if mode == "forward":
        fn = lambda ws, *xs, ops=ops: block(ops, ws, *xs)
      else:
        fn = jax.value_and_grad(
            lambda ws, *xs, ops=ops: jnp.mean(block(ops, ws, *xs) ** 2))
      cands.append(Candidate(label, fn, (list(kernels), *inputs)))
    if torch is not None:
      ops = TorchOps(torch)
      xs = [torch_channels_last(torch, np.asarray(x).astype(np.int64)
                                if jnp.issubdtype(x.dtype, jnp.integer) else x)
            for x in inputs]
      ws = [torch_kernel(torch, w).requires_grad_(mode == "train") for w in kernels]
      if mode == "forward":
        def call(ws=ws, xs=xs):
          with torch.no_grad():
            return channels_last_view(block(ops, ws, *xs))
      else:
        def call(ws=ws, xs=xs):
          loss = torch.mean(block(ops, ws, *xs) ** 2)
          grads = torch.autograd.grad(loss, ws)
          return loss, [kernel_view(g) for g in grads]
      cands.append(Candidate("torch", call, framework="torch"))
    cases.append(Case(name, GROUP, mode, cands, "lax",
                      tolerance=tolerance if mode == "forward" else TRAIN_TOLERANCE))
  return cases


def dcgan_cases(batch, width, out_channels=3):
  rng = np.random.default_rng(0)
  chans = [100, 8 * width, 4 * width, 2 * width, width, out_channels]
  kernels = [_kernel(rng, (4, 4, c_out, c_in), transpose=True)
             for c_in, c_out in zip(chans[:-1], chans[1:])]
  z = jnp.asarray(rng.standard_normal((batch, 1, 1, 100)), jnp.float32)
  return _block_cases(f"DCGAN generator z{z.shape}->64x64x{out_channels}", dcgan, kernels, (z,))


def unet_cases(batch, bottom):
  rng = np.random.default_rng(1)
  kernels, skips = [], []
  c, size = bottom, 2
  while c > bottom // 16:
    half = c // 2
    kernels += [_kernel(rng, (2, 2, half, c), transpose=True), _kernel(rng, (3, 3, c, half)),
                _kernel(rng, (3, 3, half, half))]
    size *= 2
    skips.append(jnp.asarray(rng.standard_normal((batch, size, size, half)), jnp.float32))
    c = half
  x = jnp.asarray(rng.standard_normal((batch, 2, 2, bottom)), jnp.float32)
  return _block_cases(f"U-Net up path {x.shape}->{size}x{size}x{c}", unet_up, kernels,
                      (x, *skips))


def segnet_cases(batch, size, channels):
  rng = np.random.default_rng(2)
  pre = jnp.asarray(rng.standard_normal((batch, 2 * size, 2 * size, channels)), jnp.float32)
  values, indices = jaxup.max_pool(pre, 2, return_indices=True)
  kernels = [_kernel(rng, (3, 3, channels, channels)),
             _kernel(rng, (3, 3, channels, channels // 2))]
  return _block_cases(f"SegNet decoder stage {values.shape}->{channels // 2}", segnet, kernels,
                      (values, indices))


def sd_vae_cases(batch, size, channels, modes=("forward", "train")):
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.standard_normal((batch, size, size, channels)), jnp.float32)
  kernels = [_kernel(rng, (3, 3, channels, channels))]
  return _block_cases(f"SD-VAE up (nearest 2x + 3x3) {x.shape}", sd_vae_up, kernels, (x,),
                      modes=modes)


def up3d_cases(batch, size, channels):
  rng = np.random.default_rng(4)
  half = channels // 2
  kernels = [_kernel(rng, (2, 2, 2, half, channels), transpose=True),
             _kernel(rng, (3, 3, 3, half, half)), _kernel(rng, (3, 3, 3, half, half))]
  x = jnp.asarray(rng.standard_normal((batch, size, size, size, channels)), jnp.float32)
  return _block_cases(f"3-D up block {x.shape}->{half}", up3d, kernels, (x,))


def cases(quick: bool, smoke: bool = False) -> list:
  if smoke:
    return sd_vae_cases(1, 4, 8, modes=("train",))
  if quick:
    return [*dcgan_cases(2, 16), *unet_cases(1, 256), *segnet_cases(1, 16, 32),
            *sd_vae_cases(1, 16, 128), *up3d_cases(1, 4, 32)]
  return [*dcgan_cases(8, 64), *unet_cases(1, 1024), *segnet_cases(4, 32, 128),
          *sd_vae_cases(1, 32, 512), *sd_vae_cases(1, 64, 256), *up3d_cases(1, 8, 128)]


if __name__ == "__main__":
  import run
  sys.exit(run.main(sys.argv[1:], modules=[sys.modules[__name__]]))
