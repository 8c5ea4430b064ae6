"""The tour's figure and the documentation's per-technique figures, computed with jaxup.

`save_tour_figure(path)` writes the tour's overview; `save_technique_figures(folder)` writes one
figure per technique page (docs/make_figures.py calls both). The photograph is scikit-image's
`astronaut()`, which ships with scikit-image: nothing is downloaded.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import jaxup

FACTOR = 4


@functools.lru_cache(maxsize=None)
def photograph() -> np.ndarray:
  """The astronaut's face, `[256, 256, 3]` float32 in [0, 1]."""
  from skimage import data

  return data.astronaut()[20:276, 110:366].astype(np.float32) / 255.0


def area_downsample(x: np.ndarray, factor: int) -> np.ndarray:
  h, w, c = x.shape
  return x.reshape(h // factor, factor, w // factor, factor, c).mean(axis=(1, 3))


def bilinear_kernel(factor: int, channels: int) -> jax.Array:
  """The depthwise `[2f, 2f, 1, C]` kernel whose stride-f transpose is bilinear upsampling."""
  taps = 1.0 - np.abs(np.arange(2 * factor) - (2 * factor - 1) / 2) / factor
  kernel = np.outer(taps, taps).astype(np.float32)
  return jnp.asarray(np.broadcast_to(kernel[:, :, None, None], (*kernel.shape, 1, channels)))


def upsamplers(high: np.ndarray):
  """Every upsampler as `(name, adjoint name, up, input)`: `up` is linear in its input, maps
  `[h, w, C]` to `[FACTOR h, FACTOR w, C]`, and `input` is what it is shown on."""
  low = area_downsample(high, FACTOR)
  channels = high.shape[-1]
  kernel = bilinear_kernel(FACTOR, channels)
  box = jnp.full((3, 3, 1, channels), 1 / 9, jnp.float32)  # depthwise [kH, kW, 1, C]
  triangle = (1.0, 3.0, 5.0, 7.0, 7.0, 5.0, 3.0, 1.0)  # 4x: the [1, 3, 3, 1] of 2x is too short
  _, indices = jaxup.max_pool(high, FACTOR, return_indices=True, layout="HWC")
  pooled = jaxup.max_pool(high, FACTOR, layout="HWC")
  unshuffled = jaxup.pixel_unshuffle(high, FACTOR, layout="HWC")
  def resize(method):
    return lambda v: jaxup.resize(v, scale=FACTOR, method=method, layout="HWC")

  return [
      ("upsample_nearest", "sum pooling",
       lambda v: jaxup.upsample_nearest(v, FACTOR, layout="HWC"), low),
      ("bed_of_nails", "x[::s, ::s]", lambda v: jaxup.bed_of_nails(v, FACTOR, layout="HWC"), low),
      ("resize linear", "triangle filter", resize("linear"), low),
      ("resize cubic", "cubic filter", resize("cubic"), low),
      ("conv_transpose\n(bilinear kernel, stride 4)", "conv",
       lambda v: jaxup.conv_transpose(v, kernel, stride=FACTOR, padding=FACTOR // 2,
                                      groups=channels, layout="HWC"), low),
      ("upsample_conv\n(nearest, 3x3 box filter)", "conv, then sum pooling",
       lambda v: jaxup.upsample_conv(v, box, FACTOR, padding=1, groups=channels, layout="HWC"),
       low),
      ("blur_upsample\n(8-tap triangle filter)", "filter, then x[::s, ::s]",
       lambda v: jaxup.blur_upsample(v, FACTOR, filter=triangle, layout="HWC"), low),
      ("max_unpool\n(max_pool's indices)", "gather at indices",
       lambda v: jaxup.max_unpool(v, indices, FACTOR, layout="HWC"), pooled),
      ("pixel_shuffle\n(of pixel_unshuffle(x))", "pixel_unshuffle",
       lambda v: jaxup.pixel_shuffle(v, FACTOR, layout="HWC"), unshuffled),
  ]


def adjoint(up, example_input, y) -> np.ndarray:
  """`up`'s transpose applied to `y`, divided by the transpose applied to ones: each output
  is then a weighted mean of the pixels its input reaches."""
  (down,) = jax.linear_transpose(up, jnp.zeros_like(example_input))(y)
  (weight,) = jax.linear_transpose(up, jnp.zeros_like(example_input))(jnp.ones_like(y))
  down, weight = np.asarray(down), np.asarray(weight)
  return down / np.where(weight == 0, 1, weight)


def phase_mosaic(x: np.ndarray, factor: int) -> np.ndarray:
  """`[h, w, C f f]` in pixel shuffle's CRD order -> `[f h, f w, C]`, phase (i, j) in tile
  (i, j)."""
  h, w, deep = x.shape
  c = deep // factor**2
  tiles = x.reshape(h, w, c, factor, factor).transpose(3, 0, 4, 1, 2)
  return tiles.reshape(factor * h, factor * w, c)


def checkerboards() -> list[tuple[str, np.ndarray]]:
  """A flat 16x16 image upsampled 2x three ways, with constant and with random kernels:
  stride-2 transposed convolutions with 3x3 and 4x4 kernels, and resize-convolution (nearest 2x,
  then a 3x3 convolution). The borders are cropped: only the interior pattern matters."""
  flat = jnp.ones((16, 16, 1), jnp.float32)
  rng = np.random.default_rng(0)
  results = []
  kernels = (("all-ones kernel", np.ones), ("random kernel", lambda s: rng.uniform(size=s)))
  for label, make in kernels:
    k3 = jnp.asarray(make((3, 3, 1, 1)), jnp.float32)
    k4 = jnp.asarray(make((4, 4, 1, 1)), jnp.float32)
    k3b = jnp.asarray(make((3, 3, 1, 1)), jnp.float32)
    t3 = jaxup.conv_transpose(flat, k3, stride=2, padding=1, output_padding=1, layout="HWC")
    t4 = jaxup.conv_transpose(flat, k4, stride=2, padding=1, layout="HWC")
    rc = jaxup.conv(jaxup.upsample_nearest(flat, 2, layout="HWC"), k3b, padding=1, layout="HWC")
    results += [(f"conv_transpose 3x3, stride 2\n{label}", t3),
                (f"conv_transpose 4x4, stride 2\n{label}", t4),
                (f"nearest 2x, then conv 3x3\n{label}", rc)]
  return [(name, np.asarray(image)[4:-4, 4:-4, 0]) for name, image in results]


def _show(ax, image, title, cmap=None, limits=(None, None)):
  image = np.asarray(image)
  if image.ndim == 3 and image.shape[-1] == 3:
    ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
  else:
    ax.imshow(image, cmap=cmap or "gray", vmin=limits[0], vmax=limits[1], interpolation="nearest")
  ax.set_title(title, fontsize=8)
  ax.set_xticks([])
  ax.set_yticks([])


def _pyplot():
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt


def save_tour_figure(path) -> pathlib.Path:
  """Writes the tour's overview figure to `path` and returns it."""
  plt = _pyplot()
  high = photograph()
  ups = upsamplers(high)
  columns = len(ups) + 1
  fig = plt.figure(figsize=(1.75 * columns, 9.4), layout="constrained")
  top, middle, bottom = fig.subfigures(3, 1, height_ratios=[2.25, 1.1, 1.1])

  top.suptitle("Every upsampler on the same 64x64 input, all at 256x256 (first row); its "
               "adjoint down-sampler applied to the 256x256 photograph, normalised (second row)",
               fontsize=9)
  axes = top.subplots(2, columns)
  _show(axes[0, 0], area_downsample(high, FACTOR), "input 64x64\n(area 4x down)")
  _show(axes[1, 0], high, "photograph 256x256")
  for j, (name, down_name, up, low) in enumerate(ups, start=1):
    _show(axes[0, j], up(jnp.asarray(low)), name)
    down = adjoint(up, low, jnp.asarray(high))
    if down.shape[-1] != high.shape[-1]:  # pixel_unshuffle: show the 16 phases as a 4x4 mosaic
      down = phase_mosaic(down, FACTOR)
    _show(axes[1, j], down, f"adjoint: {down_name}")

  middle.suptitle("Checkerboard artefacts: a flat image upsampled 2x, shown as value / mean "
                  "(interior; a flat result is uniform)", fontsize=9)
  boards = checkerboards()
  axes = middle.subplots(1, columns)
  for ax in axes[len(boards):]:
    ax.axis("off")
  for ax, (name, image) in zip(axes, boards):
    _show(ax, image / image.mean(), name, cmap="RdBu_r", limits=(0.4, 1.6))

  bottom.suptitle("Max pooling with indices and max unpooling", fontsize=9)
  values, indices = jaxup.max_pool(high, FACTOR, return_indices=True, layout="HWC")
  unpooled = jaxup.max_unpool(values, indices, FACTOR, layout="HWC")
  kept = np.asarray(unpooled != 0).any(axis=-1)
  panels = [(high, "x"), (values, "max_pool(x, 4)"), (unpooled, "max_unpool(max_pool(x, 4))"),
            (kept, "where the maxima were"),
            (jaxup.upsample_nearest(values, FACTOR, layout="HWC"),
             "nearest(max_pool(x, 4)),\nfor comparison")]
  axes = bottom.subplots(1, columns)
  for ax in axes[len(panels):]:
    ax.axis("off")
  for ax, (image, title) in zip(axes, panels):
    _show(ax, image, title)

  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=72)
  plt.close(fig)
  return path


def _save_rows(path: pathlib.Path, rows) -> None:
  """`rows`: lists of `(image, title)` or `(image, title, show_kwargs)`, one figure row each."""
  plt = _pyplot()
  columns = max(len(row) for row in rows)
  fig, axes = plt.subplots(len(rows), columns, figsize=(1.8 * columns, 2.05 * len(rows)),
                           squeeze=False, layout="constrained")
  for ax_row, row in zip(axes, rows):
    for ax in ax_row[len(row):]:
      ax.axis("off")
    for ax, (image, title, *options) in zip(ax_row, row):
      _show(ax, image, title, **(options[0] if options else {}))
  fig.savefig(path, dpi=72)
  plt.close(fig)


def save_technique_figures(folder) -> list[pathlib.Path]:
  """Writes one figure per technique page into `folder`: the upsampler on the photograph next
  to its adjoint; returns the paths."""
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  high = photograph()
  ups = {name.split("\n")[0]: (name, down, up, low) for name, down, up, low in upsamplers(high)}

  def pair(key):
    name, down_name, up, low = ups[key]
    down = adjoint(up, low, jnp.asarray(high))
    if down.shape[-1] != high.shape[-1]:
      down = phase_mosaic(down, FACTOR)
    return [(up(jnp.asarray(low)), name), (down, f"adjoint: {down_name}")]

  low = area_downsample(high, FACTOR)
  inputs = [(low, "input 64x64")]
  board = [(image / image.mean(), name, {"cmap": "RdBu_r", "limits": (0.4, 1.6)})
           for name, image in checkerboards()]
  values, indices = jaxup.max_pool(high, FACTOR, return_indices=True, layout="HWC")
  unpooled = jaxup.max_unpool(values, indices, FACTOR, layout="HWC")
  phases = phase_mosaic(np.asarray(jaxup.pixel_unshuffle(high, FACTOR, layout="HWC")), FACTOR)
  pages = {
      "conv_transpose": [inputs + pair("conv_transpose") + [(high, "photograph 256x256")], board],
      "upsample_nearest": [inputs + pair("upsample_nearest") + [(high, "photograph 256x256")]],
      "resize": [inputs + pair("resize linear") + pair("resize cubic")],
      "bed_of_nails": [inputs + pair("bed_of_nails") + [(high, "photograph 256x256")]],
      "max_unpool": [[(high, "x"), (values, "max_pool(x, 4)"),
                      (unpooled, "max_unpool(max_pool(x, 4))"),
                      (np.asarray(unpooled != 0).any(axis=-1), "where the maxima were")]],
      "pixel_shuffle": [[(high, "x 256x256x3"),
                         (phases, "pixel_unshuffle(x, 4):\n48 channels, by phase"),
                         *pair("pixel_shuffle")[:1]]],
  }
  paths = []
  for name, rows in pages.items():
    paths.append(folder / f"{name}.png")
    _save_rows(paths[-1], rows)
  return paths
