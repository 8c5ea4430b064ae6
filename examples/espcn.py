"""ESPCN-style 2x super-resolution with pixel shuffle, initialised with ICNR, on a photograph.

  python examples/espcn.py            # trains, compares with bicubic, saves espcn_loss.png
  python examples/espcn.py --smoke    # a few steps, for CI

ESPCN (Shi et al. 2016) computes features at the low resolution and ends with a convolution to
`C * r**2` channels that `jaxup.pixel_shuffle` rearranges into an `r`-times larger image. A
random last kernel makes the `r**2` sub-pixel phases disagree from the first step: the
checkerboard artefact. ICNR (Aitken et al. 2017, `jaxup.icnr`) initialises the `r**2` kernels
of each output channel as copies of one, so that at initialisation the network's output is a
nearest upsample of a low-resolution image, and training starts from there.

The data is scikit-image's `camera()` photograph (shipped with the package): high-resolution
patches from its top three quarters train, patches from the bottom quarter are held out. Each
low-resolution input is the 2x2 mean of its patch. The baseline is bicubic
`jaxup.resize(..., method="cubic")` of the same input.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxup

FACTOR = 2
PATCH = 32  # high-resolution patch side


class ESPCN(nn.Module):
  @nn.compact
  def __call__(self, x):                                             # [N, h, w, 1] in [0, 1]
    x = jnp.tanh(nn.Conv(64, (5, 5))(x - 0.5))
    x = jnp.tanh(nn.Conv(32, (3, 3))(x))
    x = nn.Conv(FACTOR ** 2, (3, 3), kernel_init=jaxup.icnr(FACTOR))(x)  # [N, h, w, r*r]
    return jaxup.pixel_shuffle(x, FACTOR) + 0.5                      # [N, r h, r w, 1]


def patches(image: np.ndarray, num: int, rng: np.random.Generator) -> np.ndarray:
  rows = rng.integers(0, image.shape[0] - PATCH + 1, size=num)
  cols = rng.integers(0, image.shape[1] - PATCH + 1, size=num)
  return np.stack([image[r:r + PATCH, c:c + PATCH] for r, c in zip(rows, cols)])[..., None]


def downsample(high: np.ndarray) -> np.ndarray:
  n, h, w, c = high.shape
  return high.reshape(n, h // FACTOR, FACTOR, w // FACTOR, FACTOR, c).mean(axis=(2, 4))


def psnr(predicted, target) -> float:
  mse = float(np.mean((np.clip(np.asarray(predicted), 0, 1) - target) ** 2))
  return 10 * np.log10(1.0 / mse)


# XLA:CPU compiles parameter initialisation with the default (threefry) keys several times
# slower than with the "rbg" generator (for the U-Net, 10 s of CPU time against 3).
KEY = jax.random.key(0, impl="rbg")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="a few steps, to check that it runs")
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("."),
                      help="folder for the loss plot (full mode)")
  args = parser.parse_args()
  start = time.perf_counter()

  from skimage import data
  photo = data.camera().astype(np.float32) / 255.0                  # [512, 512]
  split = photo.shape[0] * 3 // 4
  rng = np.random.default_rng(0)
  steps, batch = (3, 8) if args.smoke else (6000, 32)
  train_high = patches(photo[:split], 64 if args.smoke else 8192, rng)
  test_high = patches(photo[split:], 32 if args.smoke else 512, rng)
  train_low, test_low = downsample(train_high), downsample(test_high)

  model = ESPCN()
  optimizer = optax.adam(optax.cosine_decay_schedule(3e-3, steps))
  params = jax.jit(model.init)(KEY, train_low[:batch])
  opt_state = optimizer.init(params)

  # ICNR: at initialisation every 2x2 cell of the output holds one value.
  y0 = model.apply(params, test_low[:4])
  starts_nearest = bool(jnp.allclose(y0, jaxup.upsample_nearest(y0[:, ::FACTOR, ::FACTOR], FACTOR)))
  print(f"espcn: at initialisation the output is a nearest upsample: {starts_nearest}")

  @jax.jit
  def step(params, opt_state, low, high):
    loss, grads = jax.value_and_grad(lambda p: jnp.mean((model.apply(p, low) - high) ** 2))(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  progress = range(steps)
  if not args.smoke:
    from tqdm import tqdm
    progress = tqdm(progress, desc="espcn", unit="step")
  losses = []
  for _ in progress:
    pick = rng.integers(0, len(train_low), size=batch)
    params, opt_state, loss = step(params, opt_state, train_low[pick], train_high[pick])
    losses.append(float(loss))

  predicted = jax.jit(model.apply)(params, test_low)
  bicubic = jaxup.resize(test_low, scale=FACTOR, method="cubic")
  nearest = jaxup.upsample_nearest(test_low, FACTOR)
  ours, baseline = psnr(predicted, test_high), psnr(bicubic, test_high)
  seconds = time.perf_counter() - start
  print(f"espcn: held-out PSNR {ours:.2f} dB after {steps} steps ({seconds:.0f} s); baseline, "
        f"bicubic resize: {baseline:.2f} dB (nearest: {psnr(nearest, test_high):.2f} dB)")
  if not args.smoke:
    from synthetic_shapes import save_loss_plot
    save_loss_plot(losses, args.out / "espcn_loss.png", "espcn: training loss (MSE)")


if __name__ == "__main__":
  main()
