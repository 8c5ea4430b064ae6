"""A small Flax (linen) U-Net whose decoder upsamples with jaxup, segmenting synthetic shapes.

  python examples/unet_flax.py            # trains to held-out IoU > 0.9, saves a loss plot
  python examples/unet_flax.py --smoke    # a few steps, for CI

The encoder halves the resolution twice with `jaxup.max_pool`. The decoder comes back up once
with a learned transposed convolution (`jaxup.flax.ConvTranspose`, kernel 4, stride 2,
padding 1: PyTorch's usual 2x upsampling layer, whose kernel size is a multiple of its stride so
that every output pixel gets the same number of taps) and once with resize-convolution
(`jaxup.resize(method="linear")` then a 3x3 convolution), each followed by the skip connection.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

import jaxup
import jaxup.flax
from synthetic_shapes import arguments, fit


class Block(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(self.features, (3, 3))(x))
    return nn.relu(nn.Conv(self.features, (3, 3))(x))


class UNet(nn.Module):
  width: int = 16

  @nn.compact
  def __call__(self, x):                                             # [N, 32, 32, 1]
    e1 = Block(self.width)(x)                                        # [N, 32, 32, w]
    e2 = Block(2 * self.width)(jaxup.max_pool(e1, 2))                # [N, 16, 16, 2w]
    bottom = Block(4 * self.width)(jaxup.max_pool(e2, 2))            # [N, 8, 8, 4w]
    up2 = jaxup.flax.ConvTranspose(2 * self.width, 4, stride=2, padding=1)(bottom)  # 16x16
    d2 = Block(2 * self.width)(jnp.concatenate([up2, e2], axis=-1))
    up1 = nn.Conv(self.width, (3, 3))(jaxup.resize(d2, scale=2, method="linear"))  # 32x32
    d1 = Block(self.width)(jnp.concatenate([up1, e1], axis=-1))
    return nn.Conv(1, (1, 1))(d1)[..., 0]                            # logits [N, 32, 32]


# XLA:CPU compiles parameter initialisation with the default (threefry) keys several times
# slower than with the "rbg" generator (for the U-Net, 10 s of CPU time against 3).
KEY = jax.random.key(0, impl="rbg")


def main() -> None:
  fit("unet_flax", arguments(__doc__), UNet(), KEY)


if __name__ == "__main__":
  main()
