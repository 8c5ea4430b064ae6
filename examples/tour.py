"""A tour of every upsampling technique in jaxup, on small hand-computed examples and a photograph.

  python examples/tour.py                 # prints the tables, writes ./tour.png
  python examples/tour.py --out fig.png   # writes the figure elsewhere

Each section prints one technique's worked example (the small input, such as [[1, 2], [3, 4]],
whose output the technique's docs page works out by hand) and shows the upsampler next to
the downsampler it is the transpose of. The figure applies every upsampler to scikit-image's
astronaut photograph (shipped with scikit-image), shows the checkerboard of transposed
convolutions against resize-convolution, a max-pool / max-unpool round trip, and each
upsampler's adjoint applied to the full-resolution photograph.
"""

from __future__ import annotations

import argparse
import pathlib
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

import jaxup


def show(title: str, array) -> None:
  print(f"{title}:")
  print(textwrap.indent(np.array2string(np.asarray(array), separator=", ", precision=2), "    "))
  print()


def section(title: str) -> None:
  print("=" * 72)
  print(title)
  print("=" * 72)


def convolution() -> None:
  section("Downsample via convolution; upsample via transposed convolution")
  x = jnp.arange(75.0).reshape(5, 5, 3)  # one (5, 5, 3) image, layout HWC
  kernel = jnp.ones((3, 3, 3, 1)) / 27.0  # [kH, kW, C_in, C_out]
  y = jaxup.conv(x, kernel, layout="HWC")
  print(f"conv: (5, 5, 3) image * (3, 3, 3) kernel, stride 1 -> {y.shape[:2]}; "
        f"conv_output_size((5, 5), 3) = {jaxup.conv_output_size((5, 5), 3)}")
  show("3x3 box mean of the (5, 5, 3) image", y[..., 0])

  x = jnp.array([[1.0, 2.0], [3.0, 4.0]])[:, :, None]
  kernel = jnp.full((2, 2, 1, 1), 5.0)
  show("conv_transpose([[1, 2], [3, 4]], 2x2 kernel of 5s, stride 1)",
       jaxup.conv_transpose(x, kernel, layout="HWC")[..., 0])
  print("conv_transpose_output_size((2, 2), 2) =", jaxup.conv_transpose_output_size((2, 2), 2))

  # The transpose is the VJP of the convolution: the same numbers come from jax.vjp.
  _, vjp = jax.vjp(lambda z: jaxup.conv(z, kernel, layout="HWC"), jnp.zeros((3, 3, 1)))
  show("the same, as jax.vjp of conv", vjp(x)[0][..., 0])

  x = jnp.array([[1.0, 2.0], [3.0, 4.0]])[:, :, None]
  show("conv_transpose, 3x3 kernel of 1s, stride 2, padding 1, output_padding 1 (2x upsample)",
       jaxup.conv_transpose(x, jnp.ones((3, 3, 1, 1)), stride=2, padding=1, output_padding=1,
                            layout="HWC")[..., 0])


def nearest() -> None:
  section("K-nearest neighbours: repeat each value K = 4 times (factor 2)")
  x = jnp.array([[1, 2], [3, 4]])
  y = jaxup.upsample_nearest(x, 2, layout="HW")
  show("upsample_nearest([[1, 2], [3, 4]], 2)", y)
  # Its transpose is non-overlapping sum pooling.
  (pooled,) = jax.linear_transpose(lambda v: jaxup.upsample_nearest(v, 2, layout="HW"),
                                   x.astype(jnp.float32))(
                                       jnp.arange(16, dtype=jnp.float32).reshape(4, 4))
  show("its transpose on arange(16).reshape(4, 4): 2x2 sum pooling", pooled)


def interpolation() -> None:
  section("Bilinear interpolation (and nearest, cubic, in every framework's convention)")
  image = jnp.array([[10, 20], [30, 40]])
  show("resize([[10, 20], [30, 40]], 4): half-pixel bilinear on an integer image, truncated",
       jaxup.resize(image, 4, method="linear", layout="HW"))
  show("the same on a float image",
       jaxup.resize(image.astype(jnp.float32), 4, method="linear", layout="HW"))
  show("align_corners=True (PyTorch's bilinear with align_corners)",
       jaxup.resize(image.astype(jnp.float32), 4, method="linear", align_corners=True,
                    layout="HW"))
  show("bicubic, PyTorch's a = -0.75",
       jaxup.resize(image.astype(jnp.float32), 4, method="cubic", layout="HW"))
  show("nearest at scale 1.5 (PyTorch's 'nearest': asymmetric, floor)",
       jaxup.resize(image, scale=1.5, method="nearest", layout="HW"))

  # Linear resizing is linear: its transpose is the matching triangle-filter downsample.
  up = lambda v: jaxup.resize(v, 4, method="linear", layout="HW")
  x = jnp.array([[1.0, 2.0], [3.0, 4.0]])
  (down,) = jax.linear_transpose(up, x)(jnp.ones((4, 4)))
  show("transpose of the 2x bilinear upsample applied to ones (each input's total weight)", down)


def bed_of_nails() -> None:
  section("Bed of nails: each value in the top-left corner of its cell, zeros elsewhere")
  x = jnp.array([[1, 2], [3, 4]])
  show("bed_of_nails([[1, 2], [3, 4]], 2)", jaxup.bed_of_nails(x, 2, layout="HW"))
  (sub,) = jax.linear_transpose(lambda v: jaxup.bed_of_nails(v, 2, layout="HW"),
                                x.astype(jnp.float32))(
                                    jnp.arange(16, dtype=jnp.float32).reshape(4, 4))
  show("its transpose on arange(16).reshape(4, 4): strided subsampling x[::2, ::2]", sub)


def unpooling() -> None:
  section("Max pooling with indices; max unpooling")
  x = jnp.array([[1, 2, 4, 1],
                 [3, 4, 2, 3],
                 [1, 4, 3, 2],
                 [2, 3, 4, 1]])
  values, indices = jaxup.max_pool(x, 2, return_indices=True, layout="HW")
  show("max_pool(4x4, window 2): values", values)
  show("indices (PyTorch's flat offsets in the 4x4 plane)", indices)
  show("max_unpool([[1, 2], [3, 4]], those indices, window 2)",
       jaxup.max_unpool(jnp.array([[1, 2], [3, 4]]), indices, 2, layout="HW"))


def pixel_shuffle() -> None:
  section("Pixel shuffle: depth to space")
  x = jnp.arange(8).reshape(1, 1, 8)  # [H, W, C]: 8 channels -> 2 channels at 2x resolution
  for order, who in (("CRD", "PyTorch's PixelShuffle"), ("DCR", "TensorFlow's depth_to_space")):
    y = jaxup.pixel_shuffle(x, 2, order=order, layout="HWC")
    show(f"order={order!r} ({who}): channel 0 and channel 1", jnp.moveaxis(y, -1, 0))
  y = jaxup.pixel_shuffle(x, 2, layout="HWC")
  print("pixel_unshuffle(pixel_shuffle(x)) == x:",
        bool((jaxup.pixel_unshuffle(y, 2, layout="HWC") == x).all()))
  print()


SECTIONS = [convolution, nearest, interpolation, bed_of_nails, unpooling, pixel_shuffle]


def main() -> None:
  parser = argparse.ArgumentParser(description="Every upsampling technique in jaxup.")
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("tour.png"),
                      help="where to write the figure (default: ./tour.png)")
  args = parser.parse_args()
  for run in SECTIONS:
    run()
  from figures import save_tour_figure  # matplotlib and scikit-image: the examples extra

  save_tour_figure(args.out)
  print(f"figure: {args.out.resolve()}")


if __name__ == "__main__":
  main()
