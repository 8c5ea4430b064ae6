"""Synthetic segmentation data and the training loop shared by the segmentation examples.

Each image is a smooth random background (a brightness ramp in a random direction) with
Gaussian noise, and one to three bright discs and squares whose brightness is added to the
background. The mask marks the shapes. Because the ramp varies from image to image, no single
brightness threshold separates shapes from background: a network has to compare a pixel with
its neighbourhood. The best global threshold, fitted on the training images, is the baseline the
networks must beat.
"""

from __future__ import annotations

import argparse
import pathlib
import time
from typing import Callable

import jax
import numpy as np
import optax


def make_shapes(num: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Returns images `[num, size, size, 1]` (float32) and masks `[num, size, size]` (0 or 1)."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
  images = np.empty((num, size, size, 1), np.float32)
  masks = np.zeros((num, size, size), np.float32)
  for i in range(num):
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xx + np.sin(angle) * yy
    background = rng.uniform(0.0, 0.3) + rng.uniform(0.3, 0.7) * (ramp - ramp.min())
    mask = np.zeros((size, size), bool)
    for _ in range(rng.integers(1, 4)):
      cy, cx = rng.uniform(0.15, 0.85, size=2) * size
      r = rng.uniform(0.08, 0.2) * size
      if rng.random() < 0.5:
        mask |= (yy * size - cy) ** 2 + (xx * size - cx) ** 2 <= r * r
      else:
        mask |= (np.abs(yy * size - cy) <= r) & (np.abs(xx * size - cx) <= r)
    noise = rng.normal(0.0, 0.08, size=(size, size))
    images[i, ..., 0] = background + 0.35 * mask + noise
    masks[i] = mask
  return images, masks


def iou(predicted: np.ndarray, target: np.ndarray) -> float:
  """Intersection over union of two boolean masks, pooled over the whole set."""
  predicted, target = predicted.astype(bool), target.astype(bool)
  return float((predicted & target).sum() / max((predicted | target).sum(), 1))


def best_threshold_iou(train_images, train_masks, test_images, test_masks) -> float:
  """Held-out IoU of the single brightness threshold that is best on the training images."""
  candidates = np.quantile(train_images, np.linspace(0.5, 0.99, 50))
  best = max(candidates, key=lambda t: iou(train_images[..., 0] > t, train_masks))
  return iou(test_images[..., 0] > best, test_masks)


def arguments(description: str) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument("--smoke", action="store_true",
                      help="a few steps on a few images, to check that everything runs")
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("."),
                      help="folder for the loss plot (full mode)")
  return parser.parse_args()


def train_segmentation(name: str, args: argparse.Namespace, init: Callable, step: Callable,
                       predict: Callable, *, size: int = 32, target_iou: float = 0.9,
                       max_steps: int = 3000, batch: int = 32) -> float:
  """Trains until held-out IoU passes `target_iou` (checked every 100 steps); returns it.

  `init(images)` returns the training state, `step(state, images, masks)` returns
  `(state, loss)`, `predict(state, images)` returns logits `[N, H, W]`.
  """
  start = time.perf_counter()
  if args.smoke:
    num_train, num_test, max_steps, every = 64, 32, 4, 2
  else:
    num_train, num_test, every = 2048, 256, 100
  train_x, train_y = make_shapes(num_train, size, seed=0)
  test_x, test_y = make_shapes(num_test, size, seed=1)
  baseline = best_threshold_iou(train_x, train_y, test_x, test_y)

  state = init(train_x[:batch])
  rng = np.random.default_rng(2)
  losses, held_out = [], 0.0
  progress = None
  if not args.smoke:
    from tqdm import tqdm
    progress = tqdm(total=max_steps, desc=name, unit="step")
  for i in range(1, max_steps + 1):
    pick = rng.integers(0, num_train, size=batch)
    state, loss = step(state, train_x[pick], train_y[pick])
    losses.append(float(loss))
    if progress is not None:
      progress.update(1)
    if i % every == 0:
      held_out = iou(np.asarray(predict(state, test_x)) > 0, test_y)
      if progress is not None:
        progress.set_postfix(loss=f"{losses[-1]:.4f}", iou=f"{held_out:.3f}")
      if held_out > target_iou and not args.smoke:
        break
  if progress is not None:
    progress.close()

  seconds = time.perf_counter() - start
  print(f"{name}: held-out IoU {held_out:.3f} after {i} steps ({seconds:.0f} s); baseline, "
        f"the best global threshold: IoU {baseline:.3f}")
  if not args.smoke:
    save_loss_plot(losses, args.out / f"{name}_loss.png", f"{name}: training loss")
  return held_out


def save_loss_plot(losses, path: pathlib.Path, title: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  path.parent.mkdir(parents=True, exist_ok=True)
  fig, ax = plt.subplots(figsize=(5, 3))
  ax.plot(losses, lw=0.8)
  ax.set(xlabel="step", ylabel="loss", title=title, yscale="log")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  print(f"loss plot: {path.resolve()}")


def fit(name: str, args: argparse.Namespace, model, key) -> None:
  """Trains ``model`` (anything with ``init(key, x)`` and ``apply(params, x)``: a Flax linen
  module or a transformed Haiku function) with Adam on the sigmoid cross-entropy of its logits,
  through :func:`train_segmentation`."""
  optimizer = optax.adam(3e-3)

  def init(images):
    params = jax.jit(model.init)(key, images)
    return params, optimizer.init(params)

  @jax.jit
  def step(state, images, masks):
    params, opt_state = state

    def loss_fn(p):
      return optax.sigmoid_binary_cross_entropy(model.apply(p, images), masks).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss

  predict = jax.jit(lambda state, images: model.apply(state[0], images))
  train_segmentation(name, args, init, step, predict)
