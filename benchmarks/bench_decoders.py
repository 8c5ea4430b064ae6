"""Public decoders, forward and training step: a PyTorch model ported with jaxup's layers, the
same model on Flax's own layers, and PyTorch itself (CPU).

Each decoder is written here once in PyTorch, after the architecture of a public model, and once
as a Flax linen module built from a *kit* of layers, so that the two Flax builds differ only in
the layers a user picks:

* ``jaxup``: ``jaxup.flax.Conv``, ``ConvTranspose`` and ``UpsampleConv``, ``jaxup.upsample_nearest``
  and ``jaxup.resize``;
* ``flax`` (the baseline): ``flax.linen.Conv`` (``kernel_dilation`` for the atrous
  convolutions), ``flax.linen.ConvTranspose(transpose_kernel=True)``, ``jnp.repeat`` for nearest
  upsampling and ``jax.image`` for bilinear resizing;
* ``torch``: the PyTorch model, 2 threads (one per core), channels-last (``torch.channels_last``
  for the model and its inputs), ``eval()`` mode.

Normalisation and dense layers are Flax's in both builds (``nn.GroupNorm``, ``nn.BatchNorm`` with
running statistics, ``nn.Dense``). Both builds name their submodules as the PyTorch model does and
get its weights with ``jaxup.flax.load_state_dict(model.init(...), torch_model.state_dict())``;
the runner checks both against PyTorch before timing. Batch statistics are PyTorch's running ones
(``eval()``), set to random values so that the check sees them; dropout is off.

The ``train`` mode is a training step's computation: the loss ``mean(y ** 2)`` and its gradient
with respect to every parameter of the decoder (``jax.value_and_grad``; ``torch.autograd.grad``).
The inputs are the encoder's feature maps, random, as a ResNet-34 encoder would give them (fewer
channels in ``--quick`` and ``--smoke``).

* SD-VAE decoder, after diffusers' ``Decoder`` (``AutoencoderKL``): ``conv_in``; a mid block of
  two ``ResnetBlock2D`` around one single-head self-attention; up blocks of
  ``layers_per_block + 1`` ResnetBlocks, each but the last followed by ``Upsample2D`` (nearest 2x
  and a 3x3 convolution: ``UpsampleConv`` in the jaxup build); ``GroupNorm``, SiLU, ``conv_out``.
  ResnetBlock: GroupNorm, SiLU, 3x3 conv, GroupNorm, SiLU, 3x3 conv, plus the input (through a
  1x1 conv where the channels change); GroupNorm eps 1e-6.
* DeepLabV3+ decoder, after segmentation_models_pytorch's ``DeepLabV3PlusDecoder`` (with plain
  rather than depthwise-separable 3x3 convolutions): ASPP on the stride-16 features (a 1x1 branch,
  three 3x3 branches dilated 12, 24 and 36, an image-pooling branch upsampled bilinearly, a 1x1
  projection), a 3x3 conv, bilinear 4x upsampling (``align_corners=True``, as
  ``UpsamplingBilinear2d``), concatenation with the stride-4 features through a 1x1 conv, a 3x3
  conv. Conv, BatchNorm, ReLU throughout.
* U-Net decoder, after segmentation_models_pytorch's ``UnetDecoder``: five blocks of nearest 2x
  upsampling, concatenation with the skip features, two 3x3 Conv-BN-ReLU.
* FPN decoder, after segmentation_models_pytorch's ``FPNDecoder``: 1x1 lateral convolutions added
  to the nearest-2x-upsampled coarser level, then per level 3x3 Conv-GroupNorm-ReLU blocks with
  bilinear 2x upsampling (``align_corners=True``) down to stride 4, summed.
* Linknet decoder, after segmentation_models_pytorch's ``LinknetDecoder``: five blocks of a 1x1
  Conv-BN-ReLU to a quarter of the channels, a kernel-4 stride-2 transposed convolution with BN and
  ReLU, a 1x1 Conv-BN-ReLU, plus the skip features.

  python benchmarks/run.py --only bench_decoders   # or: python benchmarks/bench_decoders.py
"""

from __future__ import annotations

import os
import sys
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jaxup  # noqa: E402
import jaxup.flax as jf  # noqa: E402
import _timing  # noqa: E402
from _timing import (Candidate, Case, channels_last_view, torch_channels_last,  # noqa: E402
                     torch_or_none)

GROUP = "decoders"
# The smoke run takes every decoder (each is tiny there): it is the check that they all port.
SMOKE_ALL = True
# Forward outputs agree with PyTorch to about 1e-5 of their largest value; training steps are
# compared at 1e-2 for the reason given in bench_blocks.TRAIN_TOLERANCE (ReLUs flipped by
# float32 rounding move the gradients of earlier layers).
FORWARD_TOLERANCE = 1e-3
TRAIN_TOLERANCE = 1e-2


# ----------------------------------------------------------------------------------------------
# The two kits of layers the Flax builds are made of. Each function builds a submodule of the
# current compact module, named as PyTorch names it.


class JaxupKit:
  """What a user porting with jaxup writes."""

  @staticmethod
  def conv(features, k, *, padding=0, dilation=1, use_bias=True, name):
    return jf.Conv(features, k, padding=padding, dilation=dilation, use_bias=use_bias, name=name)

  @staticmethod
  def conv_transpose(features, k, *, stride, padding, use_bias=True, name):
    return jf.ConvTranspose(features, k, stride=stride, padding=padding, use_bias=use_bias,
                            name=name)

  @staticmethod
  def upsample_conv(features, k, *, factor, padding, name):
    return jf.UpsampleConv(features, k, factor, padding=padding, name=name)

  @staticmethod
  def nearest(x, factor):
    return jaxup.upsample_nearest(x, factor)

  @staticmethod
  def bilinear(x, size, align_corners):
    return jaxup.resize(x, size=size, method="linear", align_corners=align_corners)


def _align_corners_linear(x, size):
  """Bilinear resizing with ``align_corners=True`` on ``jax.image``: output pixel ``o`` reads
  input position ``o (S_in - 1) / (S_out - 1)``, a scale-and-translate of the half-pixel grid."""
  scales, shifts = [], []
  for s_in, s_out in zip(x.shape[1:3], size):
    scale = (s_out - 1) / (s_in - 1) if s_in > 1 and s_out > 1 else s_out / s_in
    scales.append(scale)
    shifts.append(0.5 - 0.5 * scale if s_in > 1 and s_out > 1 else 0.0)
  shape = (x.shape[0], *size, x.shape[3])
  return jax.image.scale_and_translate(x, shape, (1, 2), jnp.asarray(scales, x.dtype),
                                       jnp.asarray(shifts, x.dtype), "linear", antialias=False)


class FlaxKit:
  """The same layers from Flax and JAX alone."""

  @staticmethod
  def conv(features, k, *, padding=0, dilation=1, use_bias=True, name):
    return nn.Conv(features, (k, k), padding=[(padding, padding)] * 2,
                   kernel_dilation=(dilation, dilation), use_bias=use_bias, name=name)

  @staticmethod
  def conv_transpose(features, k, *, stride, padding, use_bias=True, name):
    pad = k - 1 - padding
    return nn.ConvTranspose(features, (k, k), strides=(stride, stride),
                            padding=[(pad, pad)] * 2, transpose_kernel=True, use_bias=use_bias,
                            name=name)

  @staticmethod
  def upsample_conv(features, k, *, factor, padding, name):
    conv = FlaxKit.conv(features, k, padding=padding, name=name)
    return lambda x: conv(FlaxKit.nearest(x, factor))

  @staticmethod
  def nearest(x, factor):
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)

  @staticmethod
  def bilinear(x, size, align_corners):
    if align_corners:
      return _align_corners_linear(x, size)
    return jax.image.resize(x, (x.shape[0], *size, x.shape[3]), "linear", antialias=False)


def _batch_norm(name):
  return nn.BatchNorm(use_running_average=True, momentum=0.9, epsilon=1e-5, name=name)


def _scale(x, factor):
  return tuple(factor * s for s in x.shape[1:3])


# ----------------------------------------------------------------------------------------------
# Flax builds. Submodule names are PyTorch's (dotted paths are one Flax name each).


class FlaxConvBnReLU(nn.Module):
  kit: Any
  features: int
  k: int
  padding: int = 0
  dilation: int = 1

  @nn.compact
  def __call__(self, x):
    x = self.kit.conv(self.features, self.k, padding=self.padding, dilation=self.dilation,
                      use_bias=False, name="conv")(x)
    return jax.nn.relu(_batch_norm("bn")(x))


class FlaxResnetBlock(nn.Module):
  kit: Any
  features: int
  groups: int

  @nn.compact
  def __call__(self, x):
    h = jax.nn.silu(nn.GroupNorm(self.groups, epsilon=1e-6, name="norm1")(x))
    h = self.kit.conv(self.features, 3, padding=1, name="conv1")(h)
    h = jax.nn.silu(nn.GroupNorm(self.groups, epsilon=1e-6, name="norm2")(h))
    h = self.kit.conv(self.features, 3, padding=1, name="conv2")(h)
    if x.shape[-1] != self.features:
      x = self.kit.conv(self.features, 1, name="conv_shortcut")(x)
    return x + h


class FlaxAttention(nn.Module):
  groups: int

  @nn.compact
  def __call__(self, x):
    n, h, w, c = x.shape
    t = nn.GroupNorm(self.groups, epsilon=1e-6, name="group_norm")(x).reshape(n, h * w, c)
    q, k, v = (nn.Dense(c, name=name)(t) for name in ("to_q", "to_k", "to_v"))
    weights = jax.nn.softmax(jnp.einsum("nqc,nkc->nqk", q, k) / np.sqrt(c), axis=-1)
    out = nn.Dense(c, name="to_out.0")(jnp.einsum("nqk,nkc->nqc", weights, v))
    return x + out.reshape(n, h, w, c)


class FlaxVAEDecoder(nn.Module):
  kit: Any
  channels: tuple
  layers_per_block: int
  groups: int
  out_channels: int = 3

  @nn.compact
  def __call__(self, z):
    kit, top = self.kit, self.channels[-1]
    x = kit.conv(top, 3, padding=1, name="conv_in")(z)
    x = FlaxResnetBlock(kit, top, self.groups, name="mid_block.resnets.0")(x)
    x = FlaxAttention(self.groups, name="mid_block.attentions.0")(x)
    x = FlaxResnetBlock(kit, top, self.groups, name="mid_block.resnets.1")(x)
    for i, c in enumerate(reversed(self.channels)):
      for j in range(self.layers_per_block + 1):
        x = FlaxResnetBlock(kit, c, self.groups, name=f"up_blocks.{i}.resnets.{j}")(x)
      if i < len(self.channels) - 1:
        x = kit.upsample_conv(c, 3, factor=2, padding=1,
                              name=f"up_blocks.{i}.upsamplers.0.conv")(x)
    x = jax.nn.silu(nn.GroupNorm(self.groups, epsilon=1e-6, name="conv_norm_out")(x))
    return kit.conv(self.out_channels, 3, padding=1, name="conv_out")(x)


class FlaxDeepLabV3PlusDecoder(nn.Module):
  kit: Any
  features: int
  rates: tuple
  low_features: int = 48

  @nn.compact
  def __call__(self, low, high):
    kit, f = self.kit, self.features
    branches = [FlaxConvBnReLU(kit, f, 1, name="aspp.convs.0")(high)]
    for i, rate in enumerate(self.rates):
      branches.append(FlaxConvBnReLU(kit, f, 3, padding=rate, dilation=rate,
                                     name=f"aspp.convs.{i + 1}")(high))
    pooled = jnp.mean(high, axis=(1, 2), keepdims=True)
    pooled = FlaxConvBnReLU(kit, f, 1, name=f"aspp.convs.{len(self.rates) + 1}")(pooled)
    branches.append(kit.bilinear(pooled, high.shape[1:3], align_corners=False))
    x = FlaxConvBnReLU(kit, f, 1, name="aspp.project")(jnp.concatenate(branches, axis=-1))
    x = FlaxConvBnReLU(kit, f, 3, padding=1, name="aspp_conv")(x)
    x = kit.bilinear(x, low.shape[1:3], align_corners=True)
    skip = FlaxConvBnReLU(kit, self.low_features, 1, name="block1")(low)
    return FlaxConvBnReLU(kit, f, 3, padding=1, name="block2")(
        jnp.concatenate([x, skip], axis=-1))


class FlaxUnetDecoder(nn.Module):
  kit: Any
  channels: tuple

  @nn.compact
  def __call__(self, head, *skips):
    x = head
    for i, c in enumerate(self.channels):
      x = self.kit.nearest(x, 2)
      if i < len(skips):
        x = jnp.concatenate([x, skips[i]], axis=-1)
      x = FlaxConvBnReLU(self.kit, c, 3, padding=1, name=f"blocks.{i}.conv1")(x)
      x = FlaxConvBnReLU(self.kit, c, 3, padding=1, name=f"blocks.{i}.conv2")(x)
    return x


class FlaxConvGnReLU(nn.Module):
  kit: Any
  features: int
  upsample: bool

  @nn.compact
  def __call__(self, x):
    x = self.kit.conv(self.features, 3, padding=1, use_bias=False, name="conv")(x)
    x = jax.nn.relu(nn.GroupNorm(32, epsilon=1e-5, name="gn")(x))
    return self.kit.bilinear(x, _scale(x, 2), align_corners=True) if self.upsample else x


class FlaxFPNDecoder(nn.Module):
  kit: Any
  pyramid: int
  segmentation: int

  @nn.compact
  def __call__(self, c2, c3, c4, c5):
    kit = self.kit
    p = kit.conv(self.pyramid, 1, name="p5")(c5)
    levels = [p]
    for name, skip in (("p4", c4), ("p3", c3), ("p2", c2)):
      p = kit.nearest(p, 2) + kit.conv(self.pyramid, 1, name=f"{name}.skip_conv")(skip)
      levels.append(p)
    out = 0
    for i, p in enumerate(levels):
      ups = len(levels) - 1 - i
      x = p
      for j in range(max(ups, 1)):
        x = FlaxConvGnReLU(kit, self.segmentation, ups > 0, name=f"seg_blocks.{i}.{j}")(x)
      out = out + x
    return out


class FlaxLinknetDecoder(nn.Module):
  kit: Any
  channels: tuple

  @nn.compact
  def __call__(self, head, *skips):
    x = head
    for i, (c_in, c_out) in enumerate(zip(self.channels[:-1], self.channels[1:])):
      x = FlaxConvBnReLU(self.kit, c_in // 4, 1, name=f"blocks.{i}.reduce")(x)
      x = self.kit.conv_transpose(c_in // 4, 4, stride=2, padding=1, use_bias=False,
                                  name=f"blocks.{i}.up.conv")(x)
      x = jax.nn.relu(_batch_norm(f"blocks.{i}.up.bn")(x))
      x = FlaxConvBnReLU(self.kit, c_out, 1, name=f"blocks.{i}.expand")(x)
      if i < len(skips):
        x = x + skips[i]
    return x


# ----------------------------------------------------------------------------------------------
# The PyTorch models (built lazily: PyTorch is optional for the rest of the suite).


def torch_models(torch):
  """The PyTorch decoders, as classes of a namespace (``torch`` imported by the caller)."""
  tnn, F = torch.nn, torch.nn.functional

  class ConvBnReLU(tnn.Module):
    def __init__(self, c_in, c_out, k, padding=0, dilation=1):
      super().__init__()
      self.conv = tnn.Conv2d(c_in, c_out, k, padding=padding, dilation=dilation, bias=False)
      self.bn = tnn.BatchNorm2d(c_out)

    def forward(self, x):
      return F.relu(self.bn(self.conv(x)))

  class ResnetBlock2D(tnn.Module):
    def __init__(self, c_in, c_out, groups):
      super().__init__()
      self.norm1 = tnn.GroupNorm(groups, c_in, eps=1e-6)
      self.conv1 = tnn.Conv2d(c_in, c_out, 3, padding=1)
      self.norm2 = tnn.GroupNorm(groups, c_out, eps=1e-6)
      self.conv2 = tnn.Conv2d(c_out, c_out, 3, padding=1)
      self.conv_shortcut = tnn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x):
      h = self.conv1(F.silu(self.norm1(x)))
      h = self.conv2(F.silu(self.norm2(h)))
      return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h

  class Attention(tnn.Module):
    def __init__(self, c, groups):
      super().__init__()
      self.group_norm = tnn.GroupNorm(groups, c, eps=1e-6)
      self.to_q, self.to_k, self.to_v = tnn.Linear(c, c), tnn.Linear(c, c), tnn.Linear(c, c)
      self.to_out = tnn.ModuleList([tnn.Linear(c, c), tnn.Dropout(0.0)])

    def forward(self, x):
      n, c, h, w = x.shape
      t = self.group_norm(x).reshape(n, c, h * w).transpose(1, 2)
      q, k, v = self.to_q(t), self.to_k(t), self.to_v(t)
      weights = torch.softmax(q @ k.transpose(1, 2) / c ** 0.5, dim=-1)
      out = self.to_out[1](self.to_out[0](weights @ v))
      return x + out.transpose(1, 2).reshape(n, c, h, w)

  class MidBlock(tnn.Module):
    def __init__(self, c, groups):
      super().__init__()
      self.resnets = tnn.ModuleList([ResnetBlock2D(c, c, groups), ResnetBlock2D(c, c, groups)])
      self.attentions = tnn.ModuleList([Attention(c, groups)])

    def forward(self, x):
      return self.resnets[1](self.attentions[0](self.resnets[0](x)))

  class Upsample2D(tnn.Module):
    def __init__(self, c):
      super().__init__()
      self.conv = tnn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
      return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))

  class UpDecoderBlock2D(tnn.Module):
    def __init__(self, c_in, c_out, layers, groups, upsample):
      super().__init__()
      self.resnets = tnn.ModuleList(
          [ResnetBlock2D(c_in if j == 0 else c_out, c_out, groups) for j in range(layers)])
      self.upsamplers = tnn.ModuleList([Upsample2D(c_out)]) if upsample else None

    def forward(self, x):
      for resnet in self.resnets:
        x = resnet(x)
      return x if self.upsamplers is None else self.upsamplers[0](x)

  class VAEDecoder(tnn.Module):
    def __init__(self, latent, channels, layers_per_block, groups, out_channels=3):
      super().__init__()
      top = channels[-1]
      self.conv_in = tnn.Conv2d(latent, top, 3, padding=1)
      self.mid_block = MidBlock(top, groups)
      rev = list(reversed(channels))
      self.up_blocks = tnn.ModuleList([
          UpDecoderBlock2D(rev[max(i - 1, 0)], c, layers_per_block + 1, groups,
                           i < len(rev) - 1) for i, c in enumerate(rev)])
      self.conv_norm_out = tnn.GroupNorm(groups, channels[0], eps=1e-6)
      self.conv_out = tnn.Conv2d(channels[0], out_channels, 3, padding=1)

    def forward(self, z):
      x = self.mid_block(self.conv_in(z))
      for block in self.up_blocks:
        x = block(x)
      return self.conv_out(F.silu(self.conv_norm_out(x)))

  class ASPP(tnn.Module):
    def __init__(self, c_in, c, rates):
      super().__init__()
      self.convs = tnn.ModuleList(
          [ConvBnReLU(c_in, c, 1)] + [ConvBnReLU(c_in, c, 3, r, r) for r in rates]
          + [ConvBnReLU(c_in, c, 1)])
      self.project = ConvBnReLU(c * (len(rates) + 2), c, 1)

    def forward(self, x):
      outs = [conv(x) for conv in self.convs[:-1]]
      pooled = self.convs[-1](F.adaptive_avg_pool2d(x, 1))
      outs.append(F.interpolate(pooled, size=x.shape[2:], mode="bilinear", align_corners=False))
      return self.project(torch.cat(outs, dim=1))

  class DeepLabV3PlusDecoder(tnn.Module):
    def __init__(self, c_low, c_high, c, rates, c_skip=48):
      super().__init__()
      self.aspp = ASPP(c_high, c, rates)
      self.aspp_conv = ConvBnReLU(c, c, 3, 1)
      self.up = tnn.UpsamplingBilinear2d(scale_factor=4)
      self.block1 = ConvBnReLU(c_low, c_skip, 1)
      self.block2 = ConvBnReLU(c + c_skip, c, 3, 1)

    def forward(self, low, high):
      x = self.up(self.aspp_conv(self.aspp(high)))
      return self.block2(torch.cat([x, self.block1(low)], dim=1))

  class UnetBlock(tnn.Module):
    def __init__(self, c_in, c_skip, c_out):
      super().__init__()
      self.conv1 = ConvBnReLU(c_in + c_skip, c_out, 3, 1)
      self.conv2 = ConvBnReLU(c_out, c_out, 3, 1)

    def forward(self, x, skip=None):
      x = F.interpolate(x, scale_factor=2.0, mode="nearest")
      if skip is not None:
        x = torch.cat([x, skip], dim=1)
      return self.conv2(self.conv1(x))

  class UnetDecoder(tnn.Module):
    def __init__(self, c_head, c_skips, channels):
      super().__init__()
      c_ins = [c_head, *channels[:-1]]
      c_skips = list(c_skips) + [0] * (len(channels) - len(c_skips))
      self.blocks = tnn.ModuleList(
          [UnetBlock(i, s, o) for i, s, o in zip(c_ins, c_skips, channels)])

    def forward(self, head, *skips):
      x = head
      for i, block in enumerate(self.blocks):
        x = block(x, skips[i] if i < len(skips) else None)
      return x

  class FPNBlock(tnn.Module):
    def __init__(self, c_skip, c):
      super().__init__()
      self.skip_conv = tnn.Conv2d(c_skip, c, 1)

    def forward(self, x, skip):
      return F.interpolate(x, scale_factor=2.0, mode="nearest") + self.skip_conv(skip)

  class ConvGnReLU(tnn.Module):
    def __init__(self, c_in, c_out, upsample):
      super().__init__()
      self.upsample = upsample
      self.conv = tnn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
      self.gn = tnn.GroupNorm(32, c_out)

    def forward(self, x):
      x = F.relu(self.gn(self.conv(x)))
      if self.upsample:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
      return x

  class FPNDecoder(tnn.Module):
    def __init__(self, c_enc, pyramid, segmentation):
      super().__init__()
      c2, c3, c4, c5 = c_enc
      self.p5 = tnn.Conv2d(c5, pyramid, 1)
      self.p4, self.p3, self.p2 = FPNBlock(c4, pyramid), FPNBlock(c3, pyramid), FPNBlock(
          c2, pyramid)
      self.seg_blocks = tnn.ModuleList([
          tnn.Sequential(*[ConvGnReLU(pyramid if j == 0 else segmentation, segmentation,
                                      ups > 0) for j in range(max(ups, 1))])
          for ups in (3, 2, 1, 0)])

    def forward(self, c2, c3, c4, c5):
      p5 = self.p5(c5)
      p4 = self.p4(p5, c4)
      p3 = self.p3(p4, c3)
      p2 = self.p2(p3, c2)
      return sum(block(p) for block, p in zip(self.seg_blocks, (p5, p4, p3, p2)))

  class TransposeX2(tnn.Module):
    def __init__(self, c):
      super().__init__()
      self.conv = tnn.ConvTranspose2d(c, c, 4, stride=2, padding=1, bias=False)
      self.bn = tnn.BatchNorm2d(c)

    def forward(self, x):
      return F.relu(self.bn(self.conv(x)))

  class LinknetBlock(tnn.Module):
    def __init__(self, c_in, c_out):
      super().__init__()
      self.reduce = ConvBnReLU(c_in, c_in // 4, 1)
      self.up = TransposeX2(c_in // 4)
      self.expand = ConvBnReLU(c_in // 4, c_out, 1)

    def forward(self, x, skip=None):
      x = self.expand(self.up(self.reduce(x)))
      return x if skip is None else x + skip

  class LinknetDecoder(tnn.Module):
    def __init__(self, channels):
      super().__init__()
      self.blocks = tnn.ModuleList(
          [LinknetBlock(i, o) for i, o in zip(channels[:-1], channels[1:])])

    def forward(self, head, *skips):
      x = head
      for i, block in enumerate(self.blocks):
        x = block(x, skips[i] if i < len(skips) else None)
      return x

  return dict(VAEDecoder=VAEDecoder, DeepLabV3PlusDecoder=DeepLabV3PlusDecoder,
              UnetDecoder=UnetDecoder, FPNDecoder=FPNDecoder, LinknetDecoder=LinknetDecoder)


# ----------------------------------------------------------------------------------------------
# Cases.


def _randomise_norms(torch, model, seed):
  """Random affine parameters and running statistics for every norm layer, so that the check
  against PyTorch covers them (a fresh model's are ones and zeros)."""
  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
        m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
        m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=gen))
        m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))


def decoder_cases(name, torch_model, flax_model, inputs, seed=0, baseline=True):
  """A forward case and a training-step case: ``flax_model(kit)`` on jaxup's and Flax's layers,
  each loaded from ``torch_model``'s ``state_dict``, against ``torch_model``.

  Args:
    name: the row's name.
    torch_model: the PyTorch decoder (weights as they are; norms are randomised here).
    flax_model: ``kit -> flax.linen.Module``.
    inputs: channels-last float32 NumPy arrays, the decoder's arguments.
    baseline: whether to build the Flax-layers baseline too (the smoke run checks jaxup's
      build against PyTorch only, and PyTorch is then the baseline).
  """
  torch = torch_or_none()
  _randomise_norms(torch, torch_model, seed)
  torch_model = torch_model.eval().to(_timing.TORCH_DEVICE).to(memory_format=torch.channels_last)
  xs = [jnp.asarray(x) for x in inputs]
  state_dict = torch_model.state_dict()
  names = [n for n, _ in torch_model.named_parameters()]
  params_t = [p for _, p in torch_model.named_parameters()]
  builds = {}
  for label, kit in (("jaxup", JaxupKit), ("flax", FlaxKit))[:2 if baseline else 1]:
    model = flax_model(kit)
    variables = model.init(jax.random.key(0), *xs)
    builds[label] = (model, jf.load_state_dict(variables, state_dict))
  template = {"params": builds["jaxup"][1]["params"]}

  def grads_as_tree(out):
    """PyTorch's (loss, gradients) with the gradients in the Flax parameter tree."""
    loss, grads = out
    tree = jf.load_state_dict(template, {n: g.detach().cpu() for n, g in zip(names, grads)})
    return loss, tree["params"]

  xt = [torch_channels_last(torch, x) for x in inputs]
  cases = []
  for mode in ("forward", "train"):
    cands = []
    for label, (model, variables) in builds.items():
      params = variables["params"]
      rest = {k: v for k, v in variables.items() if k != "params"}
      if mode == "forward":
        fn = lambda params, rest, *xs, model=model: model.apply({"params": params, **rest}, *xs)
      else:
        fn = jax.value_and_grad(lambda params, rest, *xs, model=model: jnp.mean(
            model.apply({"params": params, **rest}, *xs) ** 2))
      cands.append(Candidate(label, fn, (params, rest, *xs)))
    if mode == "forward":
      def call():
        with torch.no_grad():
          return channels_last_view(torch_model(*xt))
      cands.append(Candidate("torch", call, framework="torch"))
    else:
      def call():
        loss = torch.mean(torch_model(*xt) ** 2)
        return loss, torch.autograd.grad(loss, params_t)
      cands.append(Candidate("torch", call, framework="torch", to_compare=grads_as_tree))
    cases.append(Case(name, GROUP, mode, cands, "flax" if baseline else "torch",
                      tolerance=FORWARD_TOLERANCE if mode == "forward" else TRAIN_TOLERANCE))
  return cases


def _features(seed, shapes):
  rng = np.random.default_rng(seed)
  return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def vae_cases(latent, channels, layers_per_block, groups, baseline=True):
  torch = torch_or_none()
  torch.manual_seed(10)
  model = torch_models(torch)["VAEDecoder"](4, channels, layers_per_block, groups)
  z = _features(10, [(1, latent, latent, 4)])
  out = latent * 2 ** (len(channels) - 1)
  return decoder_cases(
      f"SD-VAE decoder z(1, {latent}, {latent}, 4) ch{tuple(channels)}->{out}x{out}x3", model,
      lambda kit: FlaxVAEDecoder(kit, tuple(channels), layers_per_block, groups), z, seed=10, baseline=baseline)


def deeplab_cases(size, c_low, c_high, features, rates=(12, 24, 36), baseline=True):
  torch = torch_or_none()
  torch.manual_seed(11)
  model = torch_models(torch)["DeepLabV3PlusDecoder"](c_low, c_high, features, rates)
  low, high = _features(11, [(1, size // 4, size // 4, c_low), (1, size // 16, size // 16, c_high)])
  return decoder_cases(
      f"DeepLabV3+ decoder ASPP {rates} {high.shape}+{low.shape}->{features}", model,
      lambda kit: FlaxDeepLabV3PlusDecoder(kit, features, tuple(rates)), [low, high], seed=11, baseline=baseline)


def _encoder(size, enc):
  """Feature shapes of an encoder with channels ``enc`` at strides 2, 4, 8, 16, 32, coarsest
  first (the decoders' order)."""
  return [(1, size // 2 ** (i + 1), size // 2 ** (i + 1), c) for i, c in enumerate(enc)][::-1]


def unet_cases(size, enc, channels, baseline=True):
  torch = torch_or_none()
  torch.manual_seed(12)
  shapes = _encoder(size, enc)
  model = torch_models(torch)["UnetDecoder"](enc[-1], enc[-2::-1], channels)
  feats = _features(12, shapes)
  return decoder_cases(
      f"U-Net decoder {shapes[0]}->{size}x{size}x{channels[-1]}", model,
      lambda kit: FlaxUnetDecoder(kit, tuple(channels)), feats, seed=12, baseline=baseline)


def fpn_cases(size, enc, pyramid, segmentation, baseline=True):
  torch = torch_or_none()
  torch.manual_seed(13)
  shapes = _encoder(size, enc)[:4][::-1]  # strides 4 to 32, finest first
  model = torch_models(torch)["FPNDecoder"](enc[1:], pyramid, segmentation)
  feats = _features(13, shapes)
  return decoder_cases(
      f"FPN decoder {shapes[-1]}->{size // 4}x{size // 4}x{segmentation}", model,
      lambda kit: FlaxFPNDecoder(kit, pyramid, segmentation), feats, seed=13, baseline=baseline)


def linknet_cases(size, enc, final=32, baseline=True):
  torch = torch_or_none()
  torch.manual_seed(14)
  shapes = _encoder(size, enc)
  channels = (*enc[::-1], final)
  model = torch_models(torch)["LinknetDecoder"](channels)
  feats = _features(14, shapes)
  return decoder_cases(
      f"Linknet decoder {shapes[0]}->{size}x{size}x{final}", model,
      lambda kit: FlaxLinknetDecoder(kit, channels), feats, seed=14, baseline=baseline)


RESNET34 = (64, 64, 128, 256, 512)


def cases(quick: bool, smoke: bool = False) -> list:
  if torch_or_none() is None:  # every case is checked against its PyTorch original
    return []
  if smoke:
    enc = (8, 8, 16, 16, 32)
    return [*vae_cases(4, (32, 32), 1, 8, baseline=False),
            *deeplab_cases(64, 8, 16, 16, baseline=False),
            *unet_cases(32, enc, (16, 16, 8, 8, 8), baseline=False),
            *fpn_cases(64, enc, 32, 32, baseline=False),
            *linknet_cases(32, enc, 8, baseline=False)]
  if quick:
    enc = (32, 32, 64, 128, 256)
    return [*vae_cases(8, (32, 64, 128), 1, 32), *deeplab_cases(128, 32, 256, 128),
            *unet_cases(128, enc, (128, 64, 32, 16, 16)), *fpn_cases(128, enc, 128, 64),
            *linknet_cases(128, enc)]
  return [*vae_cases(16, (32, 64, 128, 256), 1, 32), *deeplab_cases(256, 64, 512, 256),
          *unet_cases(256, RESNET34, (256, 128, 64, 32, 16)),
          *fpn_cases(256, RESNET34, 256, 128), *linknet_cases(256, RESNET34)]


if __name__ == "__main__":
  import run
  sys.exit(run.main(sys.argv[1:], modules=[sys.modules[__name__]]))
