"""Every public callable refuses bad arguments the same way: the exception type and a message
that names the argument and what it expected.

The matrix is a table: each public callable has one ``Entry`` (a valid call and, for each
argument, one or two wrong values with the exception and the message they must give). What
each validator accepts and refuses is tested once, directly, in tests/test_checks.py; here a
case shows that the callable hands the argument to the right validator under the right name.
Combinations (``extra``) pin the checks that belong to one function. Every layer of every
framework (``jaxup.flax``, ``jaxup.nnx``, ``jaxup.haiku``, ``jaxup.equinox``) is built and
called with bad arguments too; for layers only the argument's name is pinned.

Adding a public function is adding one entry; ``test_every_public_callable_has_an_entry`` fails
until it is there. The checks do not use ``assert`` (they hold under ``python -O``), and
``test_the_matrix_holds_under_python_O`` runs this file again under ``python -O``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import os
import pathlib
import re
import subprocess
import sys
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxup
from jaxup import testing

_OPTIMIZED_RUN = "JAXUP_BAD_INPUTS_UNDER_O"
HAVE_TORCH = importlib.util.find_spec("torch") is not None

# One wrong value: the value, the exception, and a regular expression its message must match
# ("{name}" stands for the argument's name).
Bad = tuple[Any, type, str]

# One or two wrong values per kind of argument: a wrong type and, where the type can be right
# and the value wrong, a wrong value (the full lists of each kind: tests/test_checks.py).
INT_BAD: list[Bad] = [(1.5, TypeError, r"{name} must be an int, got 1.5")]
POSITIVE_BAD: list[Bad] = [(0, ValueError, r"{name} must be a positive int, got 0")]
NON_NEGATIVE_BAD: list[Bad] = [(-1, ValueError, r"{name} must be a non-negative int, got -1")]

INTS_TYPE_BAD: list[Bad] = [
    ("2", TypeError, r"{name} must be an int or a sequence of 2 ints, got '2'")]
INTS_POSITIVE_BAD = INTS_TYPE_BAD + [((2, 0), ValueError, r"{name} must be a positive int, got 0")]
INTS_NON_NEGATIVE_BAD = INTS_TYPE_BAD + [
    ((0, -2), ValueError, r"{name} must be a non-negative int, got -2")]

BOOL_BAD: list[Bad] = [
    ("False", TypeError, r"{name} must be a bool \(True or False\), got 'False'"),
    (1, TypeError, r"{name} must be a bool \(True or False\), got 1")]

PADDING_BAD: list[Bad] = [
    ("FULL", ValueError, r"{name} must be one of 'SAME', 'VALID', got 'FULL'"),
    (-1, ValueError, r"{name} must be a non-negative int, got -1")]
EXPLICIT_PADDING_BAD: list[Bad] = [
    (-1, ValueError, r"{name} must be a non-negative int, got -1"),
    ("SAME", ValueError, r"{name} must be an int, per-axis ints or \(lo, hi\) pairs \(the "
     r"transposed output size needs explicit padding; for 'SAME' it is size \* stride\), got "
     r"'SAME'")]


def _choice_bad(*valid: str) -> list[Bad]:
  listing = ", ".join(repr(v) for v in valid)
  return [(1, TypeError, rf"{{name}} must be a string, one of {listing}, got 1"),
          ("bogus", ValueError, rf"{{name}} must be one of {listing}, got 'bogus'")]


LAYOUT_BAD: list[Bad] = [
    (4, TypeError, r"{name} must be a string such as 'NHWC' or None, got 4"),
    ("NHW", ValueError, r"{name} must have 4 letters, one per axis of the input of rank 4, got "
     r"'NHW'")]
# For callables that need a channel axis: a string of the right length without one.
CHANNELS_LAYOUT_BAD: list[Bad] = LAYOUT_BAD[:1] + [
    ("NHWD", ValueError, r"{name} must contain a channel axis 'C', got 'NHWD'")]

NUMBER_BAD: list[Bad] = [
    ("0.5", TypeError, r"{name} must be a real number, got '0.5'"),
    (float("nan"), ValueError, r"{name} must be finite, got nan")]
SCALE_BAD: list[Bad] = [
    ("2", TypeError, r"{name} must be a number or a sequence of 2 numbers, got '2'"),
    (-1.0, ValueError, r"{name} must be positive, got -1.0")]
INTEGER_DTYPE_BAD: list[Bad] = [
    ("float99", TypeError, r"{name} must be a dtype such as 'int32' or jnp.float32, got "
     r"'float99'"),
    ("float32", ValueError, r"{name} must be an integer dtype, got float32")]
STORAGE_ORDER_BAD: list[Bad] = [
    (True, TypeError, r"{name} must be an int, got True"),
    (2, ValueError, r"{name} must be 0 \(row-major\) or 1 \(column-major\), got 2")]
CALLABLE_BAD: list[Bad] = [
    (None, TypeError, r"{name} must be a callable \(a function of one array\), got None")]

_KIND_BAD = {
    "floating": (np.ones((1, 4, 4, 2), np.int32), r"{name} must have a floating-point dtype "
                 r"\(float16, bfloat16, float32, float64\), got dtype int32"),
    "real": (np.ones((1, 4, 4, 2), bool), r"{name} must have a real dtype \(floating point or "
             r"integer\), got dtype bool"),
    "integer": (np.ones((1, 2, 2, 2), np.float32),
                r"{name} must have an integer dtype, got dtype float32"),
    "any": (["a", "b"], r"{name} must be an array of numbers, got \['a', 'b'\]"),
}


def _array_bad(kind: str) -> list[Bad]:
  """``None``, and an array of the wrong kind of dtype for an argument of ``kind``."""
  value, message = _KIND_BAD[kind]
  return [(None, TypeError, r"{name} must be an array, got None"), (value, TypeError, message)]


@dataclasses.dataclass
class Entry:
  """A public callable, a valid call, and the wrong values for each argument.

  ``args`` maps every parameter of the signature to its wrong values (``[]`` for one that
  has nothing wrong to pass, with the reason in ``unchecked``). ``extra`` adds cases for
  combinations: ``(keyword overrides, exception, regex)``. ``xfail`` maps a case id (the
  argument and the value's position, ``"use_bias-0"``) to the reason it fails today.
  """

  fn: Callable
  valid: dict
  args: dict[str, list[Bad]]
  extra: list[tuple[dict, type, str]] = dataclasses.field(default_factory=list)
  unchecked: dict[str, str] = dataclasses.field(default_factory=dict)
  # Per-argument valid calls where the default one does not reach the argument.
  valid_for: dict[str, dict] = dataclasses.field(default_factory=dict)
  xfail: dict[str, str] = dataclasses.field(default_factory=dict)


X = np.ones((1, 4, 4, 2))  # [N, H, W, C]
KERNEL = np.ones((3, 3, 2, 2))
POOLED = np.ones((1, 2, 2, 2))
INDICES = np.zeros((1, 2, 2, 2), np.int32)


def _conv_args(transpose: bool) -> dict[str, list[Bad]]:
  args = {
      "x": _array_bad("floating"),
      "kernel": _array_bad("floating")[:1] + [
          (np.ones((2, 2)), ValueError, r"kernel has rank 2 .* expected rank 4")],
      "stride": INTS_POSITIVE_BAD,
      "padding": PADDING_BAD,
      "dilation": INTS_POSITIVE_BAD,
      "groups": INT_BAD + POSITIVE_BAD,
      "layout": CHANNELS_LAYOUT_BAD,
      "precision": [
          (3, TypeError, r"precision must be None, a jax.lax.Precision, one of 'default', .* "
           r"or a pair of those, got 3"),
          ("bogus", ValueError, r"precision must be one of 'default', .* got 'bogus'")],
      "lowering": _choice_bad("auto", "xla", "matmul"),
  }
  if transpose:
    args["output_padding"] = INTS_NON_NEGATIVE_BAD
    args["output_size"] = [b for b in INTS_POSITIVE_BAD if b[0] is not None]
  return args


_CONV_EXTRA = [
    (dict(kernel=np.ones((3, 3, 2))), ValueError, r"kernel has rank 3"),
    (dict(x=np.ones((4, 2))), ValueError, r"layout must be a layout string .* rank 2 .* got None"),
    # Rank 3 with a 2-D kernel: one image, which needs layout="HWC" (None would read NWC).
    (dict(x=np.ones((4, 4, 2))), ValueError, r"layout must be given for an input of rank 3 "
     r"with 2 spatial axes: pass layout=\"HWC\" for one image"),
    (dict(x=np.ones((1, 4, 2)), kernel=np.ones((3, 3, 2, 2, 2))), ValueError,
     r"layout must be given for an input of rank 3, which reads two ways"),
    (dict(x=np.ones((1, 4, 2)), kernel=np.ones((3, 3, 2, 2, 2)), layout="NWC"), ValueError,
     r"kernel has rank 5 .* expected rank 3"),
    (dict(groups=3), ValueError, r"groups must divide the input channels \(2\), got 3"),
    (dict(groups=np.float64(1)), TypeError, r"groups must be an int, got np.float64\(1.0\)"),
]
if HAVE_TORCH:
  _CONV_EXTRA.append(
      (dict(kernel="torch"), TypeError,
       r"kernel must be a JAX or NumPy array, got a torch.Tensor .*; convert PyTorch weights "
       r"with jaxup.kernel_from_torch\(module.weight\)"))


def _torch_module():
  import torch  # pylint: disable=import-outside-toplevel
  return torch.nn.ConvTranspose2d(2, 2, 3)


def _torch_int_weight():
  import torch  # pylint: disable=import-outside-toplevel
  return torch.zeros((2, 2, 3, 3), dtype=torch.int32)


def _nearest_up(v):
  return jaxup.upsample_nearest(v, 2)


def _sum_pool(y):
  return y.reshape(1, 4, 2, 4, 2, 2).sum(axis=(2, 4))


ENTRIES: dict[str, Entry] = {
    "conv": Entry(jaxup.conv, dict(x=X, kernel=KERNEL, padding=1), _conv_args(False),
                  _CONV_EXTRA + [(dict(groups=2, kernel=np.ones((3, 3, 1, 3))), ValueError,
                                  r"groups must divide the output channels .* got 2")]),
    "conv_transpose": Entry(
        jaxup.conv_transpose, dict(x=X, kernel=KERNEL, padding=1), _conv_args(True),
        _CONV_EXTRA + [
            (dict(groups=2, kernel=np.ones((3, 3, 1, 3))), ValueError,
             r"x has 2 channels but the kernel's last axis .* is 3"),
            (dict(stride=2, output_padding=2), ValueError,
             r"output_padding must be smaller than the stride \(\(2, 2\)\) or the dilation "
             r"\(\(1, 1\)\) along each axis, got 2"),
        ]),
    "kernel_from_torch": Entry(
        jaxup.kernel_from_torch, dict(weight=np.ones((2, 2, 3, 3))),
        {"weight": _array_bad("floating")},
        [(dict(weight=np.ones((2, 3))), ValueError,
          r"weight must have rank 3 or 4 or 5 \(a PyTorch convolution weight .*\), got shape "
          r"\(2, 3\)")]
        + ([(dict(weight="torch_module"), TypeError,
             r"weight must be a convolution weight tensor, got a torch.nn.Module "
             r"\(ConvTranspose2d\); pass module.weight"),
            (dict(weight="torch_int"), TypeError,
             r"weight must have a floating-point dtype .* got a torch.Tensor of dtype "
             r"torch.int32")] if HAVE_TORCH else [])),
    "conv_output_size": Entry(
        jaxup.conv_output_size, dict(size=(4, 4), kernel_size=(2, 2)),
        {"size": [("4", TypeError, r"size must be an int or a sequence of ints, got '4'"),
                  ((2, 0), ValueError, r"size must be a positive int, got 0")],
         "kernel_size": INTS_POSITIVE_BAD, "stride": INTS_POSITIVE_BAD,
         "padding": PADDING_BAD, "dilation": INTS_POSITIVE_BAD},
        [(dict(size=(4, 4, 4)), ValueError, r"kernel_size must be an int or a sequence of 3 "
          r"ints \(one per spatial axis\), got \(2, 2\) of length 2"),
         (dict(size=(), kernel_size=()), ValueError,
          r"size must be an int or a non-empty sequence of ints, got \(\)"),
         (dict(size=(2, 2), kernel_size=5), ValueError, r"dilated kernel \(5\) is larger")]),
    "conv_transpose_output_size": Entry(
        jaxup.conv_transpose_output_size, dict(size=(4, 4), kernel_size=(3, 3), stride=2),
        {"size": [((2, 0), ValueError, r"size must be a positive int, got 0")],
         "kernel_size": INTS_POSITIVE_BAD, "stride": INTS_POSITIVE_BAD,
         "padding": EXPLICIT_PADDING_BAD, "output_padding": INTS_NON_NEGATIVE_BAD,
         "dilation": INTS_POSITIVE_BAD},
        [(dict(output_padding=2), ValueError,
          r"output_padding must be smaller than the stride \(\(2, 2\)\) or the dilation "
          r"\(\(1, 1\)\) along each axis, got 2"),
         (dict(output_padding=(1, 3)), ValueError, r"output_padding must be smaller .* got "
          r"\(1, 3\)"),
         (dict(size=4, kernel_size=3, stride=1, output_padding=1), ValueError,
          r"output_padding must be smaller than the stride \(\(1,\)\)"),
         (dict(padding=5), ValueError, r"output size would be -1 for size=4")]),
    "upsample_nearest": Entry(
        jaxup.upsample_nearest, dict(x=X, factor=2),
        {"x": _array_bad("any"), "factor": INTS_POSITIVE_BAD,
         "layout": LAYOUT_BAD}),
    "bed_of_nails": Entry(
        jaxup.bed_of_nails, dict(x=X, factor=2),
        {"x": _array_bad("any"), "factor": INTS_POSITIVE_BAD,
         "layout": LAYOUT_BAD}),
    "pixel_shuffle": Entry(
        jaxup.pixel_shuffle, dict(x=np.ones((1, 2, 2, 8)), factor=2),
        {"x": _array_bad("any"), "factor": INTS_POSITIVE_BAD,
         "order": _choice_bad("CRD", "DCR"), "layout": CHANNELS_LAYOUT_BAD},
        [(dict(x=np.ones((1, 2, 2, 6))), ValueError, r"channels of x to be divisible")]),
    "pixel_unshuffle": Entry(
        jaxup.pixel_unshuffle, dict(x=X, factor=2),
        {"x": _array_bad("any"), "factor": INTS_POSITIVE_BAD,
         "order": _choice_bad("CRD", "DCR"), "layout": CHANNELS_LAYOUT_BAD},
        [(dict(factor=3), ValueError, r"not divisible by 3")]),
    "resize": Entry(
        jaxup.resize, dict(x=X, size=(8, 8), method="linear"),
        {"x": _array_bad("any"),
         "size": [b for b in INTS_POSITIVE_BAD if b[0] is not None],
         "scale": SCALE_BAD,
         "method": _choice_bad("nearest", "nearest-exact", "linear", "cubic", "box",
                               "lanczos1", "lanczos3", "lanczos5", "mitchellcubic", "gaussian",
                               "area", "area-overlap"),
         "align_corners": BOOL_BAD, "antialias": BOOL_BAD, "recompute_scale": BOOL_BAD,
         "exclude_outside": BOOL_BAD,
         "coordinate_transformation_mode": _choice_bad(
             "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
             "asymmetric", "tf_crop_and_resize"),
         "nearest_mode": _choice_bad("round_prefer_floor", "round_prefer_ceil", "floor",
                                     "ceil"),
         "keep_aspect_ratio_policy": _choice_bad("stretch", "not_larger", "not_smaller"),
         "cubic_coeff_a": NUMBER_BAD,
         "extrapolation_value": NUMBER_BAD,
         "roi": [(0.5, TypeError, r"roi must be a sequence of 4 numbers"),
                 ((0, 0, 1), ValueError, r"roi must be a number or a sequence of 4 numbers")],
         "axes": [(1, TypeError, r"axes must be a string of spatial layout letters from 'HW', "
                   r"or None for all of them, got 1"),
                  ("C", ValueError, r"axes must name distinct spatial axes of layout 'NHWC' "
                   r"\(letters from 'HW'\), got 'C'")],
         "layout": LAYOUT_BAD},
        [(dict(size=None), ValueError,
          r"exactly one of size and scale must be given, got size=None, scale=None"),
         (dict(scale=2.0), ValueError, r"exactly one of size and scale must be given"),
         (dict(x=np.ones((1, 4, 4, 2), bool)), TypeError, r"cannot interpolate a boolean"),
         (dict(x=np.ones((1, 0, 4, 2))), ValueError, r"spatial axis 'H' of x .* is empty"),
         (dict(recompute_scale=True), ValueError, r"recompute_scale=True applies to a scale"),
         (dict(method="nearest", antialias=True), ValueError,
          r"antialias=True applies to method 'linear', 'cubic', .* not method='nearest'"),
         (dict(nearest_mode="floor"), ValueError,
          r"nearest_mode='floor' applies only to method='nearest'"),
         (dict(roi=(0, 0, 1, 1)), ValueError, r"roi=\(0, 0, 1, 1\) applies only to "
          r"coordinate_transformation_mode='tf_crop_and_resize'"),
         (dict(coordinate_transformation_mode="tf_crop_and_resize"), ValueError,
          r"'tf_crop_and_resize' needs roi")],
        valid_for={"scale": dict(x=X, scale=2.0, method="linear"),
                   "recompute_scale": dict(x=X, scale=2.0, method="linear"),
                   "nearest_mode": dict(x=X, size=(8, 8), method="nearest"),
                   "roi": dict(x=X, size=(8, 8), method="linear", roi=(0, 0, 1, 1),
                               coordinate_transformation_mode="tf_crop_and_resize")}),
    "scale_and_translate": Entry(
        jaxup.scale_and_translate,
        dict(x=X, size=(8, 8), scale=2.0, translation=0.0, method="linear"),
        {"x": _array_bad("any"),
         "size": INTS_POSITIVE_BAD,
         "scale": SCALE_BAD,
         "translation": [("2", TypeError, r"{name} must be a number or a sequence of 2 numbers"),
                         (float("nan"), ValueError, r"{name} must be finite, got nan")],
         "method": [(1, TypeError, r"method must be a string"),
                    ("area", ValueError, r"method must be one of 'linear', 'cubic', .* for "
                     r"scale_and_translate, got 'area'")],
         "antialias": BOOL_BAD,
         "axes": [(1, TypeError, r"axes must be a string of spatial layout letters"),
                  ("C", ValueError, r"axes must name distinct spatial axes")],
         "layout": LAYOUT_BAD},
        [(dict(x=np.ones((1, 0, 4, 2))), ValueError, r"spatial axis 'H' of x .* is empty")]),
    "max_pool": Entry(
        jaxup.max_pool, dict(x=X, window=2),
        {"x": _array_bad("real"), "window": INTS_POSITIVE_BAD,
         "stride": [b for b in INTS_POSITIVE_BAD if b[0] is not None],
         "padding": PADDING_BAD, "dilation": INTS_POSITIVE_BAD,
         "ceil_mode": BOOL_BAD, "return_indices": BOOL_BAD, "layout": LAYOUT_BAD},
        [(dict(padding=2), ValueError, r"some window sees only padding")]),
    "max_unpool": Entry(
        jaxup.max_unpool, dict(x=POOLED, indices=INDICES, window=2),
        {"x": _array_bad("real"), "indices": _array_bad("integer")[:1] + [
            (np.zeros((2, 2), np.int32), ValueError, r"indices must have the shape of x")],
         "window": INTS_POSITIVE_BAD,
         "stride": [b for b in INTS_POSITIVE_BAD if b[0] is not None],
         "padding": PADDING_BAD,
         "output_size": [b for b in INTS_NON_NEGATIVE_BAD if b[0] is not None],
         "layout": LAYOUT_BAD},
        [(dict(indices=np.zeros((1, 2, 3, 2), np.int32)), ValueError,
          r"indices must have the shape of x \(1, 2, 2, 2\)"),
         (dict(output_size=(6, 4)), ValueError, r"output_size=\(6, 4\) cannot be reached"),
         (dict(padding="SAME"), ValueError, r"padding='SAME' depends on the size before")]),
    "parse_layout": Entry(
        jaxup.parse_layout, dict(layout="NHWC", ndim=4),
        {"layout": LAYOUT_BAD,
         "ndim": INT_BAD + NON_NEGATIVE_BAD,
         "name": [(1, TypeError, r"name must be a string, got 1"),
                  (None, TypeError, r"name must be a string, got None")],
         "require_batch": BOOL_BAD, "require_channels": BOOL_BAD,
         "num_spatial": [(2, TypeError, r"num_spatial must be a tuple of ints or None, got 2"),
                         ((0,), ValueError, r"num_spatial must be a positive int, got 0")]},
        [(dict(layout="HWC", ndim=3, require_batch=True), ValueError,
          r"layout must contain a batch axis 'N', got 'HWC'"),
         (dict(layout="NC", ndim=2, require_channels=False), ValueError,
          r"layout must have a spatial axis"),
         (dict(layout="NCABDE", ndim=6), ValueError,
          r"layout must have 1 or 2 or 3 spatial axes, got 'NCABDE' with 4"),
         (dict(layout="NHWC", ndim=4, name="data_format", require_batch=True,
               num_spatial=(1,)), ValueError, r"data_format must have 1 spatial axes")]),
    "Layout": Entry(
        jaxup.Layout, dict(spec="NCHW", batch_axis=0, channel_axis=1, spatial_axes=(2, 3)),
        {"spec": [(None, TypeError, r"spec must be a layout string such as 'NHWC', got None"),
                  ("NHWC", ValueError, r"batch_axis, channel_axis and spatial_axes must be "
                   r"\(0, 3, \(1, 2\)\) for spec 'NHWC', got \(0, 1, \(2, 3\)\)")],
         "batch_axis": [(None, ValueError, r"must be \(0, 1, \(2, 3\)\) for spec 'NCHW'"),
                        (1, ValueError, r"must be \(0, 1, \(2, 3\)\) for spec 'NCHW'")],
         "channel_axis": [(3, ValueError, r"must be \(0, 1, \(2, 3\)\) for spec 'NCHW'")],
         "spatial_axes": [([2, 3], ValueError, r"must be \(0, 1, \(2, 3\)\) for spec 'NCHW'"),
                          ((3, 2), ValueError, r"must be \(0, 1, \(2, 3\)\) for spec")]}),
}

_FILTER_BAD = _array_bad("real")
ENTRIES.update({
    "affine_grid": Entry(
        jaxup.affine_grid, dict(theta=np.zeros((1, 2, 3)), size=(1, 2, 4, 4)),
        {"theta": _array_bad("floating"),
         "size": [(None, TypeError, r"size must be a sequence of spatial sizes"),
                  ((1, 2, 4, 4.0), TypeError, r"size must be an int, got 4.0")],
         "align_corners": BOOL_BAD}),
    "blur_pool": Entry(
        jaxup.blur_pool, dict(x=X, factor=2),
        {"x": _array_bad("floating"), "factor": INTS_POSITIVE_BAD,
         "filter": _FILTER_BAD, "padding_mode": _choice_bad("reflect", "replicate", "zeros"),
         "layout": LAYOUT_BAD}),
    "blur_upsample": Entry(
        jaxup.blur_upsample, dict(x=X, factor=2),
        {"x": _array_bad("floating"), "factor": INTS_POSITIVE_BAD,
         "filter": _FILTER_BAD, "layout": LAYOUT_BAD}),
    "grid_sample": Entry(
        jaxup.grid_sample, dict(x=X, grid=np.zeros((1, 3, 3, 2))),
        {"x": _array_bad("floating"), "grid": _array_bad("floating"),
         "mode": _choice_bad("bilinear", "nearest", "bicubic"),
         "padding_mode": _choice_bad("zeros", "border", "reflection"),
         "align_corners": BOOL_BAD, "convention": _choice_bad("pytorch", "onnx"),
         "layout": LAYOUT_BAD}),
    "icnr": Entry(
        jaxup.icnr, dict(factor=2),
        {"factor": [(1.5, TypeError, r"factor must be an int, got 1.5"),
                    (0, ValueError, r"factor must be a positive int, got 0")],
         "initializer": [(3, TypeError, r"initializer must be a callable init\(key, shape, "
                          r"dtype\) or None, got 3")],
         "order": _choice_bad("CRD", "DCR"),
         "in_axis": INT_BAD, "out_axis": INT_BAD}),
    "upfirdn": Entry(
        jaxup.upfirdn, dict(x=X, filter=np.ones(3), up=2),
        {"x": _array_bad("floating"), "filter": _FILTER_BAD,
         "up": INTS_POSITIVE_BAD, "down": INTS_POSITIVE_BAD,
         "padding": [(None, TypeError, r"padding must be"), ("FULL", ValueError,
                                                             r"padding must be")],
         "gain": NUMBER_BAD, "flip_filter": BOOL_BAD, "layout": LAYOUT_BAD}),
    "upsample_conv": Entry(
        jaxup.upsample_conv, dict(x=X, kernel=KERNEL, factor=2, padding=1),
        {"x": _array_bad("floating"), "kernel": _array_bad("floating"),
         "factor": INTS_POSITIVE_BAD, "padding": PADDING_BAD, "dilation": INTS_POSITIVE_BAD,
         "groups": INT_BAD + POSITIVE_BAD, "layout": CHANNELS_LAYOUT_BAD,
         "precision": [(3, TypeError, r"precision must be None, a jax.lax.Precision")],
         "fused": [("bogus", ValueError, r"fused must be one of 'auto', got 'bogus'"),
                   (1, TypeError, r"fused must be a bool \(True or False\), got 1")],
         "lowering": _choice_bad("auto", "xla", "matmul")},
        _CONV_EXTRA + [(dict(groups=2, kernel=np.ones((3, 3, 1, 3))), ValueError,
                        r"groups must divide the output channels .* got 2")]),
})

for _name in ("indices_to_tf", "indices_from_tf", "indices_to_onnx", "indices_from_onnx"):
  _flag = ("include_batch_in_index", BOOL_BAD) if "tf" in _name else (
      "storage_order", STORAGE_ORDER_BAD)
  ENTRIES[_name] = Entry(
      getattr(jaxup, _name), dict(indices=INDICES, input_size=(4, 4)),
      {"indices": _array_bad("integer"), "input_size": INTS_POSITIVE_BAD,
       _flag[0]: _flag[1], "dtype": INTEGER_DTYPE_BAD, "layout": LAYOUT_BAD},
      [(dict(dtype=jnp.int8, input_size=(100, 100)), ValueError,
        r"dtype=int8 cannot hold indices up to")] if "to" in _name else [])

TESTING_ENTRIES: dict[str, Entry] = {
    "assert_adjoint": Entry(
        testing.assert_adjoint, dict(up=_nearest_up, down=_sum_pool, x=X),
        {"up": CALLABLE_BAD, "down": CALLABLE_BAD, "x": _array_bad("floating"),
         "rtol": NUMBER_BAD[:1] + [(-1.0, ValueError, r"rtol must be positive, got -1.0")],
         "seed": INT_BAD + NON_NEGATIVE_BAD}),
    "assert_linear_transpose": Entry(
        testing.assert_linear_transpose, dict(up=_nearest_up, down=_sum_pool, x=X),
        {"up": CALLABLE_BAD, "down": CALLABLE_BAD, "x": _array_bad("floating"),
         "rtol": [(0.0, ValueError, r"rtol must be positive, got 0.0")],
         "seed": INT_BAD + NON_NEGATIVE_BAD}),
    "assert_transpose_is_vjp": Entry(
        testing.assert_transpose_is_vjp,
        dict(transposed=_sum_pool, forward=_nearest_up, y=np.ones((1, 8, 8, 2)),
             x_shape_or_example=(1, 4, 4, 2)),
        {"transposed": CALLABLE_BAD, "forward": CALLABLE_BAD, "y": _array_bad("floating"),
         "x_shape_or_example": [
             (None, TypeError, r"x_shape_or_example must be an array, got None"),
             ((1, -4, 4, 2), ValueError, r"x_shape_or_example must be a non-negative int, got "
              r"-4")],
         "rtol": [("1e-3", TypeError, r"rtol must be a real number, got '1e-3'")]}),
    "tolerance": Entry(
        testing.tolerance, dict(dtype="float32"),
        {"dtype": [b for b in INTEGER_DTYPE_BAD if b[1] is TypeError]
                  + [(None, TypeError, r"dtype must be a dtype such as 'int32' or "
                      r"jnp.float32, got None")]}),
}


# ------------------------------------------------------------------ layers of every framework

FRAMEWORKS = ("flax", "nnx", "haiku", "equinox")
# The layers with parameters, built by each framework's own mechanism; the others are
# stateless (built, then called).
PARAMETRIC = ("Conv", "ConvTranspose", "UpsampleConv")


def _layer(framework: str, layer: str, *arrays):
  """A function of the layer's options that builds the layer and applies it to ``arrays``."""

  def build_and_call(**kwargs):
    module = pytest.importorskip(f"jaxup.{framework}")
    cls = getattr(module, layer)
    key = jax.random.key(0)
    if layer not in PARAMETRIC:
      return cls(**kwargs)(*arrays)
    if framework == "flax":
      return cls(**kwargs).init(key, *arrays)
    if framework == "nnx":
      nnx = pytest.importorskip("flax.nnx")
      return cls(**kwargs, rngs=nnx.Rngs(0))(*arrays)
    if framework == "haiku":
      hk = pytest.importorskip("haiku")
      return hk.transform(lambda *a: cls(**kwargs)(*a)).init(key, *arrays)
    return cls(**kwargs, key=key)(*arrays)

  return build_and_call


def _from_torch(framework: str):
  def build(**kwargs):
    module = pytest.importorskip(f"jaxup.{framework}")
    return module.from_torch(kwargs.pop("module"), **kwargs)
  return build


# The options of the layers with parameters, one or two wrong values each. Flax and Haiku take
# the output channels and an int or per-axis kernel_size; nnx and Equinox take both channel
# counts and a tuple kernel_size (its length sets the spatial rank).
_TUPLE_KERNEL_SIZE_BAD: list[Bad] = [(3, TypeError, ""), ((3, 0), ValueError, "")]
_SHARED = {"stride": INTS_POSITIVE_BAD, "padding": PADDING_BAD, "dilation": INTS_POSITIVE_BAD,
           "groups": INT_BAD + POSITIVE_BAD, "layout": CHANNELS_LAYOUT_BAD,
           "precision": [(3, TypeError, ""), ("bogus", ValueError, "")]}
_FEATURES_BAD = INT_BAD + POSITIVE_BAD


def _parametric_args(framework: str, layer: str) -> tuple[dict, dict[str, list[Bad]]]:
  """The valid options and the wrong values of ``framework``'s ``layer``."""
  if framework in ("flax", "haiku"):
    features = "features" if framework == "flax" else "output_channels"
    valid = {features: 4, "kernel_size": 3}
    args = {features: _FEATURES_BAD, "kernel_size": INTS_POSITIVE_BAD}
  else:
    valid = {"in_features": 2, "out_features": 4, "kernel_size": (3, 3)}
    args = {"in_features": _FEATURES_BAD, "out_features": _FEATURES_BAD,
            "kernel_size": _TUPLE_KERNEL_SIZE_BAD}
  args["with_bias" if framework == "haiku" else "use_bias"] = BOOL_BAD
  args.update(_SHARED)
  if layer == "Conv":
    args["padding_mode"] = _choice_bad("zeros", "reflect", "replicate", "circular")
  if layer == "ConvTranspose":
    args["output_padding"] = INTS_NON_NEGATIVE_BAD
  if layer == "UpsampleConv":
    valid["factor"] = 2
    del args["stride"]
    args["factor"] = INTS_POSITIVE_BAD
    args["fused"] = [("bogus", ValueError, ""), (1, TypeError, "")]
    args["lowering"] = _choice_bad("auto", "xla", "matmul")
  return valid, args


# Known drift between the frameworks' layers: these cases fail today and pass once every
# framework validates the option the same way (the layer specs of jaxup/_src/layers.py closed
# the rest).
_DRIFT: dict = {}

_FROM_TORCH_DRIFT = {
    framework: {"layout-1": f"jaxup.{framework}.from_torch accepts any layout string when it "
                            "builds the model (nnx and Equinox check it)"}
    for framework in ("flax", "haiku")}

# The stateless layers: the options each hands to its function.
_STATELESS = {
    "UpsampleNearest": ((X,), dict(factor=2),
                        {"factor": INTS_POSITIVE_BAD, "layout": LAYOUT_BAD}),
    "BedOfNails": ((X,), dict(factor=2), {"factor": INTS_POSITIVE_BAD, "layout": LAYOUT_BAD}),
    "PixelShuffle": ((np.ones((1, 2, 2, 8)),), dict(factor=2),
                     {"factor": INTS_POSITIVE_BAD, "order": _choice_bad("CRD", "DCR"),
                      "layout": CHANNELS_LAYOUT_BAD}),
    "PixelUnshuffle": ((X,), dict(factor=2),
                       {"factor": INTS_POSITIVE_BAD, "order": _choice_bad("CRD", "DCR"),
                        "layout": CHANNELS_LAYOUT_BAD}),
    "Resize": ((X,), dict(size=(8, 8), method="linear"),
               {"size": INTS_POSITIVE_BAD, "method": _choice_bad("nearest", "linear"),
                "antialias": BOOL_BAD, "align_corners": BOOL_BAD, "layout": LAYOUT_BAD}),
    "MaxPool": ((X,), dict(window=2),
                {"window": INTS_POSITIVE_BAD, "stride": INTS_POSITIVE_BAD,
                 "padding": PADDING_BAD, "ceil_mode": BOOL_BAD, "return_indices": BOOL_BAD,
                 "layout": LAYOUT_BAD}),
    "MaxUnpool": ((POOLED, INDICES), dict(window=2),
                  {"window": INTS_POSITIVE_BAD, "stride": INTS_POSITIVE_BAD,
                   "output_size": INTS_NON_NEGATIVE_BAD, "layout": LAYOUT_BAD}),
}


def _layer_entries() -> dict[str, Entry]:
  entries = {}
  for framework in FRAMEWORKS:
    for layer in PARAMETRIC:
      valid, args = _parametric_args(framework, layer)
      entries[f"{framework}.{layer}"] = Entry(
          _layer(framework, layer, X), valid, args,
          xfail=_DRIFT.get((framework, layer), {}))
    for layer, (arrays, valid, args) in _STATELESS.items():
      entries[f"{framework}.{layer}"] = Entry(_layer(framework, layer, *arrays), valid, args)
    if HAVE_TORCH:
      entries[f"{framework}.from_torch"] = Entry(
          _from_torch(framework), dict(module="torch_conv"),
          {"module": [(None, TypeError, "")], "layout": CHANNELS_LAYOUT_BAD},
          xfail=_FROM_TORCH_DRIFT.get(framework, {}))
  return entries


LAYER_ENTRIES: dict[str, Entry] = _layer_entries()


def _name_only(arg: str) -> str:
  """A message that begins with the argument's name (after the layer's name, if any): the
  layers' wording may change, the name may not."""
  return rf"(^|: ){re.escape(arg)}\b"


# ------------------------------------------------------------------ the cases


def _torch_tensor():
  import torch  # pylint: disable=import-outside-toplevel
  return torch.zeros((1, 4, 4, 2))


def _torch_conv():
  import torch  # pylint: disable=import-outside-toplevel
  return torch.nn.Conv2d(2, 4, 3)


def _materialise(value):
  """Values that need an optional import are named by a string in the table."""
  if isinstance(value, str) and value.startswith("torch"):
    return {"torch": _torch_tensor, "torch_module": _torch_module,
            "torch_int": _torch_int_weight, "torch_conv": _torch_conv}[value]()
  return value


TABLES = (("jaxup", ENTRIES), ("jaxup.testing", TESTING_ENTRIES), ("layers", LAYER_ENTRIES))


def _cases():
  """Every (callable, argument, wrong value) and every combination. Under ``python -O`` (run
  by ``test_the_matrix_holds_under_python_O``) the public functions' cases run again: the
  layers reach the same checks."""
  optimized = os.environ.get(_OPTIMIZED_RUN) == "1"
  cases = []
  for table, entries in TABLES:
    if optimized and table == "layers":
      continue
    for name, entry in entries.items():
      for arg, bads in entry.args.items():
        for i, (value, error, pattern) in enumerate(bads):
          pattern = _name_only(arg) if table == "layers" else pattern.replace("{name}", arg)
          reason = entry.xfail.get(f"{arg}-{i}")
          marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
          cases.append(pytest.param(entry, {arg: value}, error, pattern, arg,
                                    id=f"{name}-{arg}-{i}", marks=marks))
      for i, (overrides, error, pattern) in enumerate(entry.extra):
        cases.append(pytest.param(entry, overrides, error, pattern, None,
                                  id=f"{name}-combination-{i}"))
  return cases


CASES = _cases()


@pytest.mark.parametrize("entry, overrides, error, pattern, arg", CASES)
def test_bad_input(entry, overrides, error, pattern, arg):
  kwargs = dict(entry.valid_for.get(arg, entry.valid), **overrides)
  kwargs = {k: _materialise(v) for k, v in kwargs.items()}
  with pytest.raises(error, match=pattern):
    entry.fn(**kwargs)


@pytest.mark.parametrize("table, entries", [pytest.param(t, e, id=t) for t, e in TABLES])
def test_valid_calls_succeed(table, entries):
  """The baseline of every entry is a call that works, so each case changes one thing."""
  for name, entry in entries.items():
    for kwargs in [entry.valid, *entry.valid_for.values()]:
      result = entry.fn(**{k: _materialise(v) for k, v in kwargs.items()})
      if name != "Layout" and table != "layers":
        jax.block_until_ready(result)


def test_natural_values_are_accepted():
  """What a config file, a shape or another framework hands over is accepted as it is."""
  x = jnp.ones((1, 4, 4, 2))
  kernel = jnp.ones((3, 3, 1, 2))
  np.testing.assert_array_equal(jaxup.conv(x, kernel, groups=np.int64(2), padding="same"),
                                jaxup.conv(x, kernel, groups=2, padding="SAME"))
  np.testing.assert_array_equal(
      jaxup.conv_transpose(x, kernel, groups=2, precision=("Highest", jax.lax.Precision.HIGHEST)),
      jaxup.conv_transpose(x, kernel, groups=2, precision="highest"))
  np.testing.assert_array_equal(jaxup.upsample_nearest(x, jnp.array(2)),
                                jaxup.upsample_nearest(x, 2))
  np.testing.assert_array_equal(jaxup.bed_of_nails(x, np.array([2, 3])),
                                jaxup.bed_of_nails(x, (2, 3)))
  np.testing.assert_array_equal(jaxup.resize(x, (8, 8), method="Bilinear", layout="nhwc"),
                                jaxup.resize(x, (8, 8), method="linear"))
  np.testing.assert_array_equal(
      jaxup.max_pool(x, np.int32(2), ceil_mode=np.bool_(True), return_indices=np.True_)[1],
      jaxup.max_pool(x, 2, ceil_mode=True, return_indices=True)[1])
  np.testing.assert_array_equal(jaxup.indices_to_onnx(INDICES, (4, 4), storage_order=np.int8(1),
                                                      dtype="int64"),
                                jaxup.indices_to_onnx(INDICES, (4, 4), storage_order=1,
                                                      dtype=jnp.int64))
  with pytest.raises(TypeError, match=r"factor must be an int, got a traced array .* must be "
                     r"static"):
    jax.jit(lambda f: jaxup.upsample_nearest(x, f))(2)
  if HAVE_TORCH:
    import torch  # pylint: disable=import-outside-toplevel
    weight = torch.nn.Conv2d(2, 4, 3).to(torch.bfloat16).weight
    kernel = jaxup.kernel_from_torch(weight)
    if kernel.dtype != jnp.bfloat16 or kernel.shape != (3, 3, 2, 4):
      pytest.fail(f"bfloat16 weight loaded as {kernel.dtype} {kernel.shape}")
    np.testing.assert_array_equal(
        kernel.astype(np.float32), weight.detach().float().numpy().transpose(2, 3, 1, 0))


# ------------------------------------------------------------------ rank 3 reads two ways

# The public callables whose first array is read through a layout, and that array's name.
_LAYOUT_ARRAY = {name: next(iter(inspect.signature(e.fn).parameters))
                 for name, e in ENTRIES.items()
                 if "layout" in inspect.signature(e.fn).parameters and name != "parse_layout"}


@pytest.mark.parametrize("name", sorted(_LAYOUT_ARRAY))
def test_rank_3_without_layout_is_refused_naming_both_readings(name):
  """A rank-3 array is a batch of 1-D signals (NWC) or one image (HWC): without layout= the
  call must not pick one. A convolution's 2-D kernel, a grid of 2-D points or a per-axis
  tuple of two sizes leaves only the image reading, which the message names."""
  entry = ENTRIES[name]
  array = _LAYOUT_ARRAY[name]
  kwargs = dict(entry.valid, **{array: np.asarray(entry.valid[array])[0]})
  if name in ("conv", "conv_transpose", "upsample_conv", "grid_sample", "resize",
              "scale_and_translate", "indices_from_tf", "indices_to_tf", "indices_from_onnx",
              "indices_to_onnx"):
    pattern = r'layout must be given .* rank 3 .*: pass layout="HWC" for one image'
  else:
    pattern = (r'layout must be given for an input of rank 3, which reads two ways: '
               r'layout="NWC" for a batch of 1-D signals, layout="HWC" for one image')
  with pytest.raises(ValueError, match=pattern):
    entry.fn(**kwargs)
  # layout="HWC" is the image reading: the same result as the batched call's first item.
  if name not in ("indices_from_tf", "indices_to_tf", "indices_from_onnx", "indices_to_onnx",
                  "max_unpool", "grid_sample"):
    one = entry.fn(**kwargs, layout="HWC")
    batched = entry.fn(**entry.valid)
    np.testing.assert_allclose(np.asarray(jax.tree.leaves(one)[0]),
                               np.asarray(jax.tree.leaves(batched)[0])[0], rtol=1e-12)


def test_resize_under_vmap_names_layout():
  images = jnp.ones((5, 4, 4, 3))
  with pytest.raises(ValueError, match=r'layout="NWC" for a batch of 1-D signals, '
                     r'layout="HWC" for one image'):
    jax.vmap(lambda im: jaxup.resize(im, scale=2, method="linear"))(images)
  out = jax.vmap(lambda im: jaxup.resize(im, scale=2, method="linear", layout="HWC"))(images)
  assert out.shape == (5, 8, 8, 3)
  assert jaxup.resize(images[:, 0], scale=2, method="linear", layout="NWC").shape == (5, 8, 3)


def test_a_1d_convolution_kernel_reads_rank_3_as_nwc():
  """Not ambiguous: a rank-3 kernel has one spatial axis, so rank 3 is a batch of signals."""
  x, kernel = jnp.ones((2, 5, 3)), jnp.ones((3, 3, 4))
  np.testing.assert_array_equal(jaxup.conv(x, kernel), jaxup.conv(x, kernel, layout="NWC"))
  assert jaxup.conv_transpose(x, jnp.ones((3, 4, 3)), stride=2).shape == (2, 11, 4)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_layers_refuse_rank_3_without_layout(framework):
  module = pytest.importorskip(f"jaxup.{framework}")
  with pytest.raises(ValueError, match=r'layout="NWC" .* layout="HWC"'):
    jax.vmap(module.Resize(scale=2, method="linear"))(jnp.ones((5, 4, 4, 3)))


# ------------------------------------------------------------------ the matrix itself


def test_every_public_callable_has_an_entry():
  """A public function without a row in the matrix, or an argument without wrong values (or a
  reason why it has none), fails here; so does a layer of a framework without a row."""
  for module, entries in ((jaxup, ENTRIES), (testing, TESTING_ENTRIES)):
    public = {n for n in module.__all__ if callable(getattr(module, n))}
    missing = public - set(entries)
    if missing:
      pytest.fail(f"{module.__name__} callables with no bad-input entry: {sorted(missing)}")
    for name, entry in entries.items():
      params = set(inspect.signature(entry.fn).parameters)
      covered = {a for a, bads in entry.args.items() if bads} | set(entry.unchecked)
      if params != covered:
        pytest.fail(f"{name}: arguments without bad-input cases: {sorted(params - covered)}; "
                    f"unknown: {sorted(covered - params)}")
  for framework in FRAMEWORKS:
    if importlib.util.find_spec("flax" if framework == "nnx" else framework) is None:
      continue
    module = importlib.import_module(f"jaxup.{framework}")
    layers = {n for n in module.__all__ if inspect.isclass(getattr(module, n))}
    missing = {f"{framework}.{n}" for n in layers} - set(LAYER_ENTRIES)
    if missing:
      pytest.fail(f"layers with no bad-input entry: {sorted(missing)}")


def test_optimized_when_asked():
  """The second run really runs without assert statements."""
  if os.environ.get(_OPTIMIZED_RUN) == "1" and not sys.flags.optimize:
    pytest.fail("the python -O run is not optimized")


@pytest.mark.skipif(os.environ.get(_OPTIMIZED_RUN) == "1", reason="already under python -O")
def test_the_matrix_holds_under_python_O():
  """``python -O`` strips ``assert`` statements: validation must not rely on them."""
  root = pathlib.Path(__file__).resolve().parent.parent
  env = dict(os.environ, **{_OPTIMIZED_RUN: "1"})
  result = subprocess.run(
      [sys.executable, "-O", "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
       "-W", "ignore::pytest.PytestConfigWarning", f"{__file__}::test_bad_input",
       f"{__file__}::test_optimized_when_asked"],
      cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False)
  if result.returncode != 0:
    pytest.fail(f"under python -O:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
  # Every case of the public functions ran (a collection error or a skip would show here).
  expected = sum(1 for c in CASES if c.id.split("-")[0].split(".")[0] not in FRAMEWORKS)
  ran = [line for line in result.stdout.splitlines() if " passed" in line]
  if not ran or int(ran[-1].split(" passed")[0].split()[-1]) != expected + 1:
    pytest.fail(f"under python -O, not every case ran ({expected} + 1 expected):\n"
                f"{result.stdout[-2000:]}")
