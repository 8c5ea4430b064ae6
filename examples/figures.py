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


def _show(ax, image, title, cmap=None, limits=(None, None), fontsize=10):
  image = np.asarray(image)
  if image.ndim == 3 and image.shape[-1] == 3:
    artist = ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
  else:
    artist = ax.imshow(image, cmap=cmap or "gray", vmin=limits[0], vmax=limits[1],
                       interpolation="nearest")
  ax.set_title(title, fontsize=fontsize)
  ax.set_xticks([])
  ax.set_yticks([])
  return artist


RATIO_LABEL = "value / mean\n(red: above, blue: below;\nwhite: a flat result)"


def _pyplot():
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt


# Says what "adjoint" means, under the figure's first title.
ADJOINT = ("adjoint of a linear map A: its transpose A\u1d40, the map with "
           "<Ax, y> = <x, A\u1d40y>, a down-sampler;\nshown divided by A\u1d40(ones), so that each "
           "pixel is a weighted mean of the pixels it gathers")


def save_tour_figure(path) -> pathlib.Path:
  """Writes the tour's overview figure to `path` and returns it: five columns, large enough to
  read at the README's width."""
  plt = _pyplot()
  high = photograph()
  ups = upsamplers(high)
  columns = 5
  fig = plt.figure(figsize=(11, 17), layout="constrained")
  header, first, second, boards_fig, pool_fig = fig.subfigures(
      5, 1, height_ratios=[0.5, 2.15, 2.2, 1.65, 1.3])
  header.text(0.5, 0.98, "Every upsampler on the same 64x64 input, all at 256x256 (rows 1 "
              "and 3);\nits adjoint applied to the 256x256 photograph (rows 2 and 4)",
              fontsize=15, ha="center", va="top")
  header.text(0.5, 0.0, ADJOINT, fontsize=11.5, ha="center", va="bottom", color="0.25")
  # The input and the photograph lead the first pair of rows; nine upsamplers follow.
  panels = [((area_downsample(high, FACTOR), "input 64x64\n(area 4x down)"),
             (high, "photograph 256x256"))]
  for name, down_name, up, low in ups:
    down = adjoint(up, low, jnp.asarray(high))
    if down.shape[-1] != high.shape[-1]:  # pixel_unshuffle: show the 16 phases as a 4x4 mosaic
      down = phase_mosaic(down, FACTOR)
    panels.append(((up(jnp.asarray(low)), name), (down, f"adjoint:\n{down_name}")))
  for part, chunk in ((first, panels[:columns]), (second, panels[columns:])):
    axes = part.subplots(2, columns)
    for j, ((image, title), (down, down_title)) in enumerate(chunk):
      _show(axes[0, j], image, title, fontsize=12)
      _show(axes[1, j], down, down_title, fontsize=12)

  boards_fig.suptitle("Checkerboard artefacts: a flat image upsampled 2x, each output shown "
                      "as value / mean", fontsize=15)
  boards = checkerboards()
  axes = boards_fig.subplots(1, len(boards))
  for ax, (name, image) in zip(axes, boards):
    artist = _show(ax, image / image.mean(), name.replace(", ", ",\n"), cmap="RdBu_r",
                   limits=(0.4, 1.6), fontsize=11)
  bar = boards_fig.colorbar(artist, ax=list(axes), orientation="horizontal", shrink=0.6,
                            aspect=40, pad=0.03)
  bar.set_label("value / mean: red above the mean, blue below, white a flat result "
                "(no artefact)", fontsize=12)
  bar.ax.tick_params(labelsize=10)

  pool_fig.suptitle("Max pooling with indices and max unpooling", fontsize=15)
  values, indices = jaxup.max_pool(high, FACTOR, return_indices=True, layout="HWC")
  unpooled = jaxup.max_unpool(values, indices, FACTOR, layout="HWC")
  kept = np.asarray(unpooled != 0).any(axis=-1)
  pool_panels = [(high, "x"), (values, "max_pool(x, 4)"),
                 (unpooled, "max_unpool(\nmax_pool(x, 4))"), (kept, "where the\nmaxima were"),
                 (jaxup.upsample_nearest(values, FACTOR, layout="HWC"),
                  "nearest(max_pool(x, 4)),\nfor comparison")]
  axes = pool_fig.subplots(1, columns)
  for ax, (image, title) in zip(axes, pool_panels):
    _show(ax, image, title, fontsize=12)

  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=80)
  plt.close(fig)
  return path


def _save_rows(path: pathlib.Path, rows) -> None:
  """`rows`: lists of `(image, title)` or `(image, title, show_kwargs)`, one figure row each.
  A row with a value / mean panel gets a colour bar saying what the colours mean."""
  plt = _pyplot()
  columns = max(len(row) for row in rows)
  fig, axes = plt.subplots(len(rows), columns, figsize=(2.1 * columns, 2.5 * len(rows)),
                           squeeze=False, layout="constrained")
  for ax_row, row in zip(axes, rows):
    for ax in ax_row[len(row):]:
      ax.axis("off")
    ratio = None
    for ax, (image, title, *options) in zip(ax_row, row):
      artist = _show(ax, image, title, **(options[0] if options else {}))
      if options and options[0].get("cmap") == "RdBu_r":
        ratio = artist
    if ratio is not None:
      bar = fig.colorbar(ratio, ax=list(ax_row[:len(row)]), shrink=0.8, pad=0.01)
      bar.set_label(RATIO_LABEL, fontsize=9)
      bar.ax.tick_params(labelsize=8)
  fig.savefig(path, dpi=80)
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
    return [(up(jnp.asarray(low)), name), (down, f"adjoint:\n{down_name}")]

  low = area_downsample(high, FACTOR)
  inputs = [(low, "input 64x64")]
  board = [(image / image.mean(), name.replace(", ", ",\n"),
            {"cmap": "RdBu_r", "limits": (0.4, 1.6)})
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
  pages.update({
      "grid_sample": grid_sample_rows(high),
      "icnr": icnr_rows(),
      "upfirdn": upfirdn_rows(high),
      "upsample_conv": upsample_conv_rows(high, ups),
  })
  paths = []
  for name, rows in pages.items():
    paths.append(folder / f"{name}.png")
    _save_rows(paths[-1], rows)
  paths.append(save_resize_methods_figure(folder / "resize_methods.png"))
  return paths


def _ratio_panel(image):
  """`image / mean(image)` shown on the diverging scale of the checkerboard panels."""
  image = np.asarray(image)
  return image / image.mean(), {"cmap": "RdBu_r", "limits": (0.4, 1.6)}


def grid_sample_rows(high: np.ndarray):
  """The photograph warped by `affine_grid` transforms: a rotation, and a zoom-out under each
  `padding_mode`; then the adjoint of the rotation (a splat), normalised."""
  x = jnp.asarray(high)[None]
  angle = np.deg2rad(20.0)
  rotate = jnp.array([[[np.cos(angle), -np.sin(angle), 0.0],
                       [np.sin(angle), np.cos(angle), 0.0]]], jnp.float32)
  zoom_out = jnp.array([[[1.6, 0.0, 0.0], [0.0, 1.6, 0.0]]], jnp.float32)
  size = high.shape[:2]
  rotated = jaxup.affine_grid(rotate, size)
  zoomed = jaxup.affine_grid(zoom_out, size)
  up = lambda v: jaxup.grid_sample(v, rotated)
  row = [(high, "x 256x256"),
         (up(x)[0], "rotated 20 degrees\n(bilinear)"),
         (jaxup.grid_sample(x, rotated, mode="nearest")[0], "rotated 20 degrees\n(nearest)")]
  row += [(jaxup.grid_sample(x, zoomed, padding_mode=mode)[0],
           f"zoomed out 1.6x,\npadding_mode={mode!r}") for mode in ("zeros", "border",
                                                                    "reflection")]
  row.append((adjoint(up, x, x)[0], "adjoint of the rotation:\nsplat, normalised"))
  return [row]


def icnr_rows():
  """A flat image through a fresh sub-pixel convolution (3x3 conv to 4 channels, then
  pixel_shuffle 2x): LeCun-normal phases disagree, ICNR's are one kernel copied."""
  flat = jnp.ones((1, 16, 16, 1), jnp.float32)
  row = []
  for seed in (0, 1):
    key = jax.random.key(seed)
    plain = jax.nn.initializers.lecun_normal()(key, (3, 3, 1, 4), jnp.float32)
    for kernel, name in ((plain, "LeCun normal"), (jaxup.icnr(2)(key, (3, 3, 1, 4)), "icnr(2)")):
      y = jaxup.pixel_shuffle(jaxup.conv(flat, kernel, padding=1), 2)[0, 4:-4, 4:-4, 0]
      image, options = _ratio_panel(y)
      row.append((image, f"{name} kernel,\nkey {seed}", options))
  return [row]


def _impulse_responses():
  """Each resize method's kernel, read off as the 16x upsample of one impulse."""
  impulse = jnp.zeros(13, jnp.float32).at[6].set(1.0)
  methods = [("linear", {}), ("cubic", {}), ("cubic", {"cubic_coeff_a": -0.5}),
             ("lanczos3", {}), ("lanczos5", {}), ("mitchellcubic", {}), ("gaussian", {})]
  out = []
  for method, options in methods:
    y = jaxup.resize(impulse, 13 * 16, method=method, layout="W", **options)
    label = method + (f" a={options['cubic_coeff_a']}" if options else "")
    out.append((label, (np.arange(13 * 16) + 0.5) / 16 - 6.5, np.asarray(y)))
  return out


def save_resize_methods_figure(path) -> pathlib.Path:
  """The resize methods' kernels as curves, and a 4x upsample of the photograph with three of
  them."""
  plt = _pyplot()
  high = photograph()
  low = area_downsample(high, FACTOR)
  fig = plt.figure(figsize=(12.5, 3.2), layout="constrained")
  left, right = fig.subfigures(1, 2, width_ratios=[1.9, 3])
  ax = left.subplots()
  for label, d, y in _impulse_responses():
    ax.plot(d, y / y.max(), label=label, linewidth=1.4)
  ax.axhline(0, color="0.6", linewidth=0.8)
  ax.set_xlim(-5.2, 5.2)
  ax.set_xlabel("distance from the input sample (input pixels)", fontsize=10)
  ax.set_title("kernels: 16x upsample of one impulse", fontsize=11)
  ax.legend(fontsize=9, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
  ax.tick_params(labelsize=9)
  axes = right.subplots(1, 4)
  panels = [(low, "input 64x64")] + [
      (jaxup.resize(low, scale=FACTOR, method=m, layout="HWC"), f"{m}, 4x")
      for m in ("lanczos3", "mitchellcubic", "gaussian")]
  for axis, (image, title) in zip(axes, panels):
    _show(axis, image, title)
    axis.title.set_fontsize(11)
  path = pathlib.Path(path)
  fig.savefig(path, dpi=72)
  plt.close(fig)
  return path


def zone_plate(size: int = 256) -> np.ndarray:
  """`cos(pi r^2 / (2 size))`: its frequency rises from 0 at the centre to half the Nyquist
  frequency at the edges."""
  r2 = np.add.outer((np.arange(size) - size / 2) ** 2, (np.arange(size) - size / 2) ** 2)
  return (0.5 + 0.5 * np.cos(np.pi * r2 / (2 * size))).astype(np.float32)[..., None]


def upfirdn_rows(high: np.ndarray):
  """Aliasing of plain subsampling against blur_pool on a zone plate; zero insertion against
  blur_upsample (zero insertion, then the FIR filter) on the photograph."""
  plate = zone_plate()
  low = area_downsample(high, FACTOR)
  nails = jaxup.bed_of_nails(low, FACTOR, layout="HWC")
  triangle = (1.0, 3.0, 5.0, 7.0, 7.0, 5.0, 3.0, 1.0)
  return [[
      (plate[..., 0], "zone plate 256x256"),
      (plate[::FACTOR, ::FACTOR, 0], "x[::4, ::4]:\naliased rings"),
      (jaxup.blur_pool(plate, FACTOR, filter=triangle, layout="HWC")[..., 0],
       "blur_pool(x, 4):\nfilter, then x[::4, ::4]"),
      (low, "input 64x64"),
      (nails * FACTOR**2, "zero insertion (up=4),\nbrightened 16x"),
      (jaxup.blur_upsample(low, FACTOR, filter=triangle, layout="HWC"),
       "blur_upsample(x, 4):\nzeros, then the filter"),
  ]]


def upsample_conv_rows(high: np.ndarray, ups):
  """upsample_conv on the photograph next to its adjoint, and the checkerboard test with a
  random kernel: conv_transpose prints one, upsample_conv does not."""
  name, down_name, up, low = ups["upsample_conv"]
  flat = jnp.ones((1, 16, 16, 1), jnp.float32)
  k3 = jnp.asarray(np.random.default_rng(0).uniform(size=(3, 3, 1, 1)), jnp.float32)
  transposed = jaxup.conv_transpose(flat, k3, stride=2, padding=1, output_padding=1)
  fused = jaxup.upsample_conv(flat, k3, 2, padding=1)
  boards = [(*_ratio_panel(transposed[0, 4:-4, 4:-4, 0]), "conv_transpose 3x3,\nstride 2, flat input"),
            (*_ratio_panel(fused[0, 4:-4, 4:-4, 0]), "upsample_conv 3x3,\nfactor 2, flat input")]
  return [[(low, "input 64x64"), (up(jnp.asarray(low)), name),
           (adjoint(up, low, jnp.asarray(high)), f"adjoint:\n{down_name}")]
          + [(image, title, options)
             for image, options, title in boards]]
