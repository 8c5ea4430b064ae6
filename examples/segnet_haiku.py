"""A SegNet-style Haiku encoder-decoder that unpools with the encoder's max-pool indices.

  python examples/segnet_haiku.py            # trains to held-out IoU > 0.9, saves a loss plot
  python examples/segnet_haiku.py --smoke    # a few steps, for CI

SegNet (Badrinarayanan et al. 2017) keeps no skip connections: each encoder stage max-pools
with `return_indices=True`, and the matching decoder stage puts every value back where its
maximum came from (`jaxup.haiku.MaxUnpool`), zeros elsewhere, then convolves to fill the gaps.
The indices carry the boundaries the decoder needs at full resolution.
"""

from __future__ import annotations

import haiku as hk
import jax

import jaxup.haiku
from synthetic_shapes import arguments, fit


def block(x, channels: int):
  x = jax.nn.relu(hk.Conv2D(channels, 3)(x))
  return jax.nn.relu(hk.Conv2D(channels, 3)(x))


def segnet(x, width: int = 16):                                      # [N, 32, 32, 1]
  e1 = block(x, width)                                               # [N, 32, 32, w]
  p1, i1 = jaxup.haiku.MaxPool(2, return_indices=True)(e1)           # [N, 16, 16, w]
  e2 = block(p1, 2 * width)
  p2, i2 = jaxup.haiku.MaxPool(2, return_indices=True)(e2)           # [N, 8, 8, 2w]
  bottom = block(p2, 2 * width)
  d2 = block(jaxup.haiku.MaxUnpool(2)(bottom, i2), width)            # [N, 16, 16, w]
  d1 = block(jaxup.haiku.MaxUnpool(2)(d2, i1), width)                # [N, 32, 32, w]
  return hk.Conv2D(1, 1)(d1)[..., 0]                                 # logits [N, 32, 32]


# XLA:CPU compiles parameter initialisation with the default (threefry) keys several times
# slower than with the "rbg" generator (for the U-Net, 10 s of CPU time against 3).
KEY = jax.random.key(0, impl="rbg")


def main() -> None:
  fit("segnet_haiku", arguments(__doc__), hk.without_apply_rng(hk.transform(segnet)), KEY)


if __name__ == "__main__":
  main()
