"""Every public function refuses bad arguments the same way: the exception type and a message
that names the argument and what it expected.

The matrix is a table: each public function has one ``Entry`` (a valid call and the kind of
each argument), and every kind has a list of wrong values with the exception and the message
they must give (None, strings, lists of strings, objects, floats and bools where ints belong,
complex and torch arrays, zero and negative sizes, wrong lengths, unknown options). Adding a
public function is adding one entry; ``test_every_public_callable_has_an_entry`` fails until
it is there. The checks do not use ``assert`` (they hold under ``python -O``), and
``test_the_matrix_holds_under_python_O`` runs this file again under ``python -O``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import os
import pathlib
import subprocess
import sys
from typing import Any, Callable, Optional

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


class _Opaque:
  """An object of no numeric meaning."""

  def __repr__(self):
    return "<opaque>"


OPAQUE = _Opaque()


def _torch_tensor():
  import torch  # pylint: disable=import-outside-toplevel
  return torch.zeros((1, 4, 4, 2))


ARRAY_BAD: list[Bad] = [
    (None, TypeError, r"{name} must be an array, got None"),
    ("abc", TypeError, r"{name} must be an array, got 'abc'"),
    (["a", "b"], TypeError, r"{name} must be an array of numbers, got \['a', 'b'\]"),
    (OPAQUE, TypeError, r"{name} must be an array of numbers, got <opaque>"),
    ({}, TypeError, r"{name} must be an array, got \{\}"),
    ([[1.0, 2.0], [3.0]], TypeError, r"{name} must be an array, got \[\[1.0, 2.0\], \[3.0\]\]"),
]
COMPLEX_BAD: Bad = (np.ones((1, 4, 4, 2), np.complex64), TypeError,
                    r"{name} must be real, got a complex array \(dtype complex64\)")
TORCH_BAD: Bad = ("torch", TypeError, r"{name} must be a JAX or NumPy array, got a torch.Tensor")

# Ranks without a default layout (1-D to 3-D spatial with a batch and a channel axis).
def _rank_bad(dtype=np.float64) -> list[Bad]:
  return [(np.ones(shape, dtype), ValueError,
           rf"layout must be a layout string .* rank {len(shape)} .* got None")
          for shape in ((), (4, 2), (1, 2, 2, 2, 2, 2))]


RANK_BAD = _rank_bad()

INT_BAD: list[Bad] = [
    (None, TypeError, r"{name} must be an int, got None"),
    ("2", TypeError, r"{name} must be an int, got '2'"),
    (1.5, TypeError, r"{name} must be an int, got 1.5"),
    (2.0, TypeError, r"{name} must be an int, got 2.0"),
    (np.float32(2), TypeError, r"{name} must be an int, got np.float32\(2.0\)"),
    (True, TypeError, r"{name} must be an int, got True"),
    (1j, TypeError, r"{name} must be an int, got 1j"),
    ((1, 1), TypeError, r"{name} must be an int, got \(1, 1\)"),
    (OPAQUE, TypeError, r"{name} must be an int, got <opaque>"),
]
POSITIVE_BAD: list[Bad] = [
    (0, ValueError, r"{name} must be a positive int, got 0"),
    (-1, ValueError, r"{name} must be a positive int, got -1"),
]
NON_NEGATIVE_BAD: list[Bad] = [(-1, ValueError, r"{name} must be a non-negative int, got -1")]

INTS_TYPE_BAD: list[Bad] = [
    (None, TypeError, r"{name} must be an int or a sequence of 2 ints, got None"),
    ("2", TypeError, r"{name} must be an int or a sequence of 2 ints, got '2'"),
    (["a", "b"], TypeError, r"{name} must be an int, got 'a'"),
    (OPAQUE, TypeError, r"{name} must be an int, got <opaque>"),
    (1.5, TypeError, r"{name} must be an int, got 1.5"),
    (2.0, TypeError, r"{name} must be an int, got 2.0"),
    ((2, 2.5), TypeError, r"{name} must be an int, got 2.5"),
    (np.float64(2), TypeError, r"{name} must be an int, got np.float64\(2.0\)"),
    (True, TypeError, r"{name} must be an int, got True"),
    (1j, TypeError, r"{name} must be an int, got 1j"),
    ((2, 2, 2), ValueError, r"{name} must be an int or a sequence of 2 ints \(one per spatial "
     r"axis\), got \(2, 2, 2\) of length 3"),
]
INTS_POSITIVE_BAD = INTS_TYPE_BAD + [
    (0, ValueError, r"{name} must be a positive int, got 0"),
    (-1, ValueError, r"{name} must be a positive int, got -1"),
    ((2, 0), ValueError, r"{name} must be a positive int, got 0"),
]
INTS_NON_NEGATIVE_BAD = INTS_TYPE_BAD + [
    (-1, ValueError, r"{name} must be a non-negative int, got -1"),
    ((0, -2), ValueError, r"{name} must be a non-negative int, got -2"),
]

BOOL_BAD: list[Bad] = [(v, TypeError, r"{name} must be a bool \(True or False\), got " + m)
                       for v, m in [(None, "None"), ("False", "'False'"), ("True", "'True'"),
                                    (0, "0"), (1, "1"), ({}, r"\{\}"), ([], r"\[\]"),
                                    (np.float64(1.0), r"np.float64\(1.0\)"),
                                    (OPAQUE, "<opaque>")]]

PADDING_BAD: list[Bad] = [
    (None, TypeError, r"{name} must be an int, per-axis ints or per-axis \(lo, hi\) pairs or "
     r"one of 'SAME', 'VALID', got None"),
    ("FULL", ValueError, r"{name} must be one of 'SAME', 'VALID', got 'FULL'"),
    ("", ValueError, r"{name} must be one of 'SAME', 'VALID', got ''"),
    (1.5, TypeError, r"{name} must be an int, got 1.5"),
    (True, TypeError, r"{name} must be an int, got True"),
    (OPAQUE, TypeError, r"{name} must be an int, got <opaque>"),
    (["a", "b"], TypeError, r"{name} must be an int, per-axis ints .* got \['a', 'b'\]"),
    (-1, ValueError, r"{name} must be a non-negative int, got -1"),
    ([(0, -1), 0], ValueError, r"{name} must be a non-negative int, got -1"),
    ((1, 1, 1), ValueError, r"{name} must be an int, .* one entry per spatial axis \(2\), got "
     r"\(1, 1, 1\) of length 3"),
    ([(1, 2, 3), 0], ValueError, r"{name} must be .* with an entry \(1, 2, 3\) that is not an "
     r"int or a \(lo, hi\) pair"),
]
EXPLICIT_PADDING_BAD: list[Bad] = [
    (v, e, m) for v, e, m in PADDING_BAD if not isinstance(v, str)] + [
    ("SAME", ValueError, r"{name} must be an int, per-axis ints or \(lo, hi\) pairs \(the "
     r"transposed output size needs explicit padding; for 'SAME' it is size \* stride\), got "
     r"'SAME'"),
]


def _choice_bad(*valid: str, optional: bool = False) -> list[Bad]:
  listing = ", ".join(repr(v) for v in valid)
  bad = [
      (1, TypeError, rf"{{name}} must be a string, one of {listing}, got 1"),
      ([valid[0]], TypeError, rf"{{name}} must be a string, one of {listing}, got \['"),
      ("bogus", ValueError, rf"{{name}} must be one of {listing}, got 'bogus'"),
      ("", ValueError, rf"{{name}} must be one of {listing}, got ''"),
  ]
  if not optional:
    bad.append((None, TypeError, rf"{{name}} must be a string, one of {listing}, got None"))
  return bad


LAYOUT_BAD: list[Bad] = [
    (4, TypeError, r"{name} must be a string such as 'NHWC' or None, got 4"),
    (b"NHWC", TypeError, r"{name} must be a string such as 'NHWC' or None, got b'NHWC'"),
    (["N", "H", "W", "C"], TypeError, r"{name} must be a string such as 'NHWC' or None"),
    ("NHW", ValueError, r"{name} must have 4 letters, one per axis of the input of rank 4, got "
     r"'NHW'"),
    ("NDHWC", ValueError, r"{name} must have 4 letters"),
    ("NH1C", ValueError, r"{name} must be ASCII letters: .* got 'NH1C'"),
    ("NHHC", ValueError, r"{name} must use each letter once \(one per axis\), got 'NHHC'"),
    ("NCnc", ValueError, r"{name} must use each letter once \(one per axis\), got 'NCnc'"),
]
NEEDS_CHANNELS_BAD: list[Bad] = [
    ("NHWD", ValueError, r"{name} must contain a channel axis 'C', got 'NHWD'")]

NUMBER_BAD: list[Bad] = [
    (None, TypeError, r"{name} must be a real number, got None"),
    ("0.5", TypeError, r"{name} must be a real number, got '0.5'"),
    (True, TypeError, r"{name} must be a real number, got True"),
    (1j, TypeError, r"{name} must be a real number, got 1j"),
    ([1.0], TypeError, r"{name} must be a real number, got \[1.0\]"),
    (float("nan"), ValueError, r"{name} must be finite, got nan"),
]
SCALE_BAD: list[Bad] = [
    ("2", TypeError, r"{name} must be a number or a sequence of 2 numbers, got '2'"),
    (["a", "b"], TypeError, r"{name} must be a real number, got 'a'"),
    (OPAQUE, TypeError, r"{name} must be a real number, got <opaque>"),
    (True, TypeError, r"{name} must be a real number, got True"),
    (1j, TypeError, r"{name} must be a real number, got 1j"),
    (-1.0, ValueError, r"{name} must be positive, got -1.0"),
    (0, ValueError, r"{name} must be positive, got 0.0"),
    ((2.0, -2.0), ValueError, r"{name} must be positive, got -2.0"),
    (float("nan"), ValueError, r"{name} must be finite, got nan"),
    (float("inf"), ValueError, r"{name} must be finite, got inf"),
    ((2.0, 2.0, 2.0), ValueError, r"{name} must be a number or a sequence of 2 numbers \(one "
     r"per spatial axis\), got \(2.0, 2.0, 2.0\) of length 3"),
]
INTEGER_DTYPE_BAD: list[Bad] = [
    ("float99", TypeError, r"{name} must be a dtype such as 'int32' or jnp.float32, got "
     r"'float99'"),
    (True, TypeError, r"{name} must be a dtype such as 'int32' or jnp.float32, got True"),
    (OPAQUE, TypeError, r"{name} must be a dtype such as 'int32' or jnp.float32, got <opaque>"),
    ("float32", ValueError, r"{name} must be an integer dtype, got float32"),
    (jnp.bool_, ValueError, r"{name} must be an integer dtype, got bool"),
]
STORAGE_ORDER_BAD: list[Bad] = [
    (True, TypeError, r"{name} must be an int, got True"),
    (False, TypeError, r"{name} must be an int, got False"),
    (0.0, TypeError, r"{name} must be an int, got 0.0"),
    ("0", TypeError, r"{name} must be an int, got '0'"),
    (None, TypeError, r"{name} must be an int, got None"),
    (2, ValueError, r"{name} must be 0 \(row-major\) or 1 \(column-major\), got 2"),
    (-1, ValueError, r"{name} must be 0 \(row-major\) or 1 \(column-major\), got -1"),
]
CALLABLE_BAD: list[Bad] = [
    (v, TypeError, r"{name} must be a callable \(a function of one array\), got " + m)
    for v, m in [(None, "None"), ("up", "'up'"), (OPAQUE, "<opaque>")]]


def _without(bads: list[Bad], *values) -> list[Bad]:
  """``bads`` less the cases of ``values`` (valid for that argument, or checked elsewhere)."""
  drop = {repr(v) for v in values}
  return [b for b in bads if repr(b[0]) not in drop]


def _array_bad(kind: str, *, allow_complex: bool = False, torch: bool = True) -> list[Bad]:
  """Wrong arrays for an argument whose dtype must be of ``kind``."""
  bad = list(ARRAY_BAD)
  if not allow_complex:
    bad.append(COMPLEX_BAD)
  if torch and HAVE_TORCH:
    bad.append(TORCH_BAD)
  if kind == "floating":
    bad.append((np.ones((1, 4, 4, 2), np.int32), TypeError,
                r"{name} must have a floating-point dtype \(float16, bfloat16, float32, "
                r"float64\), got dtype int32"))
  if kind == "real":
    bad.append((np.ones((1, 4, 4, 2), bool), TypeError,
                r"{name} must have a real dtype \(floating point or integer\), got dtype bool"))
  if kind == "integer":
    bad.append((np.ones((1, 2, 2, 2), np.float32), TypeError,
                r"{name} must have an integer dtype, got dtype float32"))
  return bad


@dataclasses.dataclass
class Entry:
  """A public callable, a valid call, and the wrong values for each argument.

  ``args`` maps every parameter of the signature to its wrong values (``[]`` for one that
  has nothing wrong to pass, with the reason in ``unchecked``). ``extra`` adds cases for
  combinations: ``(keyword overrides, exception, regex)``.
  """

  fn: Callable
  valid: dict
  args: dict[str, list[Bad]]
  extra: list[tuple[dict, type, str]] = dataclasses.field(default_factory=list)
  unchecked: dict[str, str] = dataclasses.field(default_factory=dict)
  # Per-argument valid calls where the default one does not reach the argument.
  valid_for: dict[str, dict] = dataclasses.field(default_factory=dict)


X = np.ones((1, 4, 4, 2))  # [N, H, W, C]
KERNEL = np.ones((3, 3, 2, 2))
POOLED = np.ones((1, 2, 2, 2))
INDICES = np.zeros((1, 2, 2, 2), np.int32)
LAYOUT = LAYOUT_BAD


def _conv_args(transpose: bool) -> dict[str, list[Bad]]:
  args = {
      "x": _array_bad("floating") + RANK_BAD,
      "kernel": _array_bad("floating") + [
          (np.ones((2, 2)), ValueError, r"kernel has rank 2 .* expected rank 4"),
          (np.ones((3, 3, 2, 2, 2)), ValueError, r"kernel has rank 5 .* expected rank 4")],
      "stride": INTS_POSITIVE_BAD,
      "padding": PADDING_BAD,
      "dilation": INTS_POSITIVE_BAD,
      "groups": INT_BAD + POSITIVE_BAD,
      "layout": LAYOUT_BAD + NEEDS_CHANNELS_BAD,
      "precision": [
          (3, TypeError, r"precision must be None, a jax.lax.Precision, one of 'default', .* "
           r"or a pair of those, got 3"),
          ("bogus", ValueError, r"precision must be one of 'default', .* got 'bogus'"),
          (("highest", 1.5), TypeError, r"precision must be None, .* got 1.5")],
      "lowering": _choice_bad("auto", "xla", "matmul"),
  }
  if transpose:
    args["output_padding"] = INTS_NON_NEGATIVE_BAD
    args["output_size"] = [b for b in INTS_POSITIVE_BAD if b[0] is not None]
  return args


_CONV_EXTRA = [
    (dict(kernel=np.ones((3, 3, 2))), ValueError, r"kernel has rank 3"),
    (dict(x=np.ones((4, 2))), ValueError, r"layout must be a layout string .* rank 2 .* got None"),
    (dict(x=np.ones((4, 4, 2))), ValueError, r"kernel has rank 4 .* expected rank 3"),
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
        {"weight": _array_bad("floating", torch=False)},
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
        {"size": _without(INTS_POSITIVE_BAD, None, "2", (2, 2, 2)) + [
            (None, TypeError, r"size must be an int, got None"),
            ("4", TypeError, r"size must be an int or a sequence of ints, got '4'")],
         "kernel_size": INTS_POSITIVE_BAD, "stride": INTS_POSITIVE_BAD,
         "padding": PADDING_BAD, "dilation": INTS_POSITIVE_BAD},
        [(dict(size=(4, 4, 4)), ValueError, r"kernel_size must be an int or a sequence of 3 "
          r"ints \(one per spatial axis\), got \(2, 2\) of length 2"),
         (dict(size=(), kernel_size=()), ValueError,
          r"size must be an int or a non-empty sequence of ints, got \(\)"),
         (dict(size=(2, 2), kernel_size=5), ValueError, r"dilated kernel \(5\) is larger")]),
    "conv_transpose_output_size": Entry(
        jaxup.conv_transpose_output_size, dict(size=(4, 4), kernel_size=(3, 3), stride=2),
        {"size": _without(INTS_POSITIVE_BAD, None, "2", (2, 2, 2)),
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
    "upsample_conv": Entry(
        jaxup.upsample_conv, dict(x=X, kernel=KERNEL, factor=2, padding=1),
        {**{k: v for k, v in _conv_args(False).items() if k != "stride"},
         "factor": INTS_POSITIVE_BAD,
         "fused": [("yes", ValueError, r"fused must be one of 'auto', got 'yes'"),
                   (1, TypeError, r"fused must be a bool \(True or False\), got 1"),
                   (None, TypeError, r"fused must be a bool \(True or False\), got None")]},
        _CONV_EXTRA + [(dict(groups=2, kernel=np.ones((3, 3, 1, 3))), ValueError,
                        r"groups must divide the output channels .* got 2")]),
    "upsample_nearest": Entry(
        jaxup.upsample_nearest, dict(x=X, factor=2),
        {"x": _array_bad("any", allow_complex=True) + RANK_BAD, "factor": INTS_POSITIVE_BAD,
         "layout": LAYOUT_BAD}),
    "bed_of_nails": Entry(
        jaxup.bed_of_nails, dict(x=X, factor=2),
        {"x": _array_bad("any", allow_complex=True) + RANK_BAD, "factor": INTS_POSITIVE_BAD,
         "layout": LAYOUT_BAD}),
    "pixel_shuffle": Entry(
        jaxup.pixel_shuffle, dict(x=np.ones((1, 2, 2, 8)), factor=2),
        {"x": _array_bad("any", allow_complex=True) + RANK_BAD, "factor": INTS_POSITIVE_BAD,
         "order": _choice_bad("CRD", "DCR"), "layout": LAYOUT_BAD + NEEDS_CHANNELS_BAD},
        [(dict(x=np.ones((1, 2, 2, 6))), ValueError, r"channels of x to be divisible")]),
    "pixel_unshuffle": Entry(
        jaxup.pixel_unshuffle, dict(x=X, factor=2),
        {"x": _array_bad("any", allow_complex=True) + RANK_BAD, "factor": INTS_POSITIVE_BAD,
         "order": _choice_bad("CRD", "DCR"), "layout": LAYOUT_BAD + NEEDS_CHANNELS_BAD},
        [(dict(factor=3), ValueError, r"not divisible by 3")]),
    "resize": Entry(
        jaxup.resize, dict(x=X, size=(8, 8), method="linear"),
        {"x": _array_bad("any") + RANK_BAD,
         "size": [b for b in INTS_POSITIVE_BAD if b[0] is not None],
         "scale": SCALE_BAD,
         "method": _choice_bad("nearest", "nearest-exact", "linear", "cubic", "box",
                               "lanczos1", "lanczos3", "lanczos5", "mitchellcubic", "gaussian",
                               "area", "area-overlap"),
         "align_corners": BOOL_BAD, "antialias": BOOL_BAD, "recompute_scale": BOOL_BAD,
         "exclude_outside": [b for b in BOOL_BAD if b[0] is not None],
         "coordinate_transformation_mode": _choice_bad(
             "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
             "asymmetric", "tf_crop_and_resize", optional=True),
         "nearest_mode": _choice_bad("round_prefer_floor", "round_prefer_ceil", "floor",
                                     "ceil", optional=True),
         "keep_aspect_ratio_policy": _choice_bad("stretch", "not_larger", "not_smaller"),
         "cubic_coeff_a": NUMBER_BAD,
         "extrapolation_value": NUMBER_BAD,
         "roi": [(0.5, TypeError, r"roi must be a sequence of 4 numbers"),
                 ((0, 0, 1), ValueError, r"roi must be a number or a sequence of 4 numbers"),
                 (("a", 0, 1, 1), TypeError, r"roi must be a real number, got 'a'")],
         "axes": [(1, TypeError, r"axes must be a string of spatial layout letters from 'HW', "
                   r"or None for all of them, got 1"),
                  (["H"], TypeError, r"axes must be a string .* got \['H'\]"),
                  ("C", ValueError, r"axes must name distinct spatial axes of layout 'NHWC' "
                   r"\(letters from 'HW'\), got 'C'"),
                  ("HH", ValueError, r"axes must name distinct .* got 'HH'"),
                  ("", ValueError, r"axes must name distinct .* got ''")],
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
        {"x": _array_bad("any") + RANK_BAD,
         "size": INTS_POSITIVE_BAD,
         "scale": SCALE_BAD,
         "translation": [("2", TypeError, r"{name} must be a number or a sequence of 2 numbers"),
                         (True, TypeError, r"{name} must be a real number, got True"),
                         (float("nan"), ValueError, r"{name} must be finite, got nan")],
         "method": [(1, TypeError, r"method must be a string"),
                    ("bogus", ValueError, r"method must be one of .* got 'bogus'"),
                    ("area", ValueError, r"method must be one of 'linear', 'cubic', .* for "
                     r"scale_and_translate, got 'area'")],
         "antialias": BOOL_BAD,
         "axes": [(1, TypeError, r"axes must be a string of spatial layout letters"),
                  ("C", ValueError, r"axes must name distinct spatial axes")],
         "layout": LAYOUT_BAD},
        [(dict(x=np.ones((1, 0, 4, 2))), ValueError, r"spatial axis 'H' of x .* is empty")]),
    "max_pool": Entry(
        jaxup.max_pool, dict(x=X, window=2),
        {"x": _array_bad("real") + RANK_BAD, "window": INTS_POSITIVE_BAD,
         "stride": [b for b in INTS_POSITIVE_BAD if b[0] is not None],
         "padding": PADDING_BAD, "dilation": INTS_POSITIVE_BAD,
         "ceil_mode": BOOL_BAD, "return_indices": BOOL_BAD, "layout": LAYOUT_BAD},
        [(dict(padding=2), ValueError, r"some window sees only padding")]),
    "max_unpool": Entry(
        jaxup.max_unpool, dict(x=POOLED, indices=INDICES, window=2),
        {"x": _array_bad("real") + RANK_BAD, "indices": _array_bad("integer") + [
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
                         ("12", TypeError, r"num_spatial must be a tuple of ints or None"),
                         ((1.5,), TypeError, r"num_spatial must be an int, got 1.5"),
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
                  (4, TypeError, r"spec must be a layout string such as 'NHWC', got 4"),
                  ("N-HW", TypeError, r"spec must be a layout string such as 'NHWC', got "
                   r"'N-HW'"),
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
                  (4, TypeError, r"size must be a sequence of spatial sizes"),
                  ("4", TypeError, r"size must be a sequence of spatial sizes"),
                  ((1, 2, 4, 4.0), TypeError, r"size must be an int, got 4.0"),
                  ((1, 2, 4, True), TypeError, r"size must be an int, got True")],
         "align_corners": BOOL_BAD}),
    "blur_pool": Entry(
        jaxup.blur_pool, dict(x=X, factor=2),
        {"x": _array_bad("floating") + RANK_BAD, "factor": INTS_POSITIVE_BAD,
         "filter": _FILTER_BAD, "padding_mode": _choice_bad("reflect", "replicate", "zeros"),
         "layout": LAYOUT_BAD}),
    "blur_upsample": Entry(
        jaxup.blur_upsample, dict(x=X, factor=2),
        {"x": _array_bad("floating") + RANK_BAD, "factor": INTS_POSITIVE_BAD,
         "filter": _FILTER_BAD, "layout": LAYOUT_BAD}),
    "grid_sample": Entry(
        jaxup.grid_sample, dict(x=X, grid=np.zeros((1, 3, 3, 2))),
        {"x": _array_bad("floating") + RANK_BAD, "grid": _array_bad("floating"),
         "mode": _choice_bad("bilinear", "nearest", "bicubic"),
         "padding_mode": _choice_bad("zeros", "border", "reflection"),
         "align_corners": BOOL_BAD, "convention": _choice_bad("pytorch", "onnx"),
         "layout": LAYOUT_BAD}),
    "icnr": Entry(
        jaxup.icnr, dict(factor=2),
        {"factor": _without(INTS_POSITIVE_BAD, None, "2", (2, 2, 2), ["a", "b"], (2, 2.5),
                            (2, 0)),
         "initializer": [(3, TypeError, r"initializer must be a callable init\(key, shape, "
                          r"dtype\) or None, got 3")],
         "order": _choice_bad("CRD", "DCR"),
         "in_axis": _without(INT_BAD, (1, 1)), "out_axis": _without(INT_BAD, (1, 1))}),
    "upfirdn": Entry(
        jaxup.upfirdn, dict(x=X, filter=np.ones(3), up=2),
        {"x": _array_bad("floating") + RANK_BAD, "filter": _FILTER_BAD,
         "up": INTS_POSITIVE_BAD, "down": INTS_POSITIVE_BAD,
         "padding": [(None, TypeError, r"padding must be"), ("FULL", ValueError,
                                                             r"padding must be")],
         "gain": NUMBER_BAD, "flip_filter": BOOL_BAD, "layout": LAYOUT_BAD}),
    "upsample_conv": Entry(
        jaxup.upsample_conv, dict(x=X, kernel=KERNEL, factor=2, padding=1),
        {"x": _array_bad("floating") + RANK_BAD, "kernel": _array_bad("floating"),
         "factor": INTS_POSITIVE_BAD, "padding": PADDING_BAD, "dilation": INTS_POSITIVE_BAD,
         "groups": INT_BAD + POSITIVE_BAD, "layout": LAYOUT_BAD + NEEDS_CHANNELS_BAD,
         "precision": [(3, TypeError, r"precision must be None, a jax.lax.Precision")],
         "fused": [("bogus", ValueError, r"fused must be one of 'auto', got 'bogus'"),
                   (None, TypeError, r"fused must be a bool"),
                   (1, TypeError, r"fused must be a bool")],
         "lowering": _choice_bad("auto", "xla", "matmul")}),
})

for _name in ("indices_to_tf", "indices_from_tf", "indices_to_onnx", "indices_from_onnx"):
  _flag = ("include_batch_in_index", BOOL_BAD) if "tf" in _name else (
      "storage_order", STORAGE_ORDER_BAD)
  ENTRIES[_name] = Entry(
      getattr(jaxup, _name), dict(indices=INDICES, input_size=(4, 4)),
      {"indices": _array_bad("integer") + _rank_bad(np.int32), "input_size": INTS_POSITIVE_BAD,
       _flag[0]: _flag[1], "dtype": INTEGER_DTYPE_BAD, "layout": LAYOUT_BAD},
      [(dict(dtype=jnp.int8, input_size=(100, 100)), ValueError,
        r"dtype=int8 cannot hold indices up to")] if "to" in _name else [])

TESTING_ENTRIES: dict[str, Entry] = {
    "assert_adjoint": Entry(
        testing.assert_adjoint, dict(up=_nearest_up, down=_sum_pool, x=X),
        {"up": CALLABLE_BAD, "down": CALLABLE_BAD, "x": _array_bad("floating"),
         "rtol": [b for b in NUMBER_BAD if b[0] is not None]
                 + [(-1.0, ValueError, r"rtol must be positive, got -1.0")],
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
             ("abc", TypeError, r"x_shape_or_example must be an array, got 'abc'"),
             ((1, -4, 4, 2), ValueError, r"x_shape_or_example must be a non-negative int, got "
              r"-4")],
         "rtol": [("1e-3", TypeError, r"rtol must be a real number, got '1e-3'")]}),
    "tolerance": Entry(
        testing.tolerance, dict(dtype="float32"),
        {"dtype": [b for b in INTEGER_DTYPE_BAD if b[1] is TypeError]
                  + [(None, TypeError, r"dtype must be a dtype such as 'int32' or "
                      r"jnp.float32, got None")]}),
}


def _linen_conv_transpose(**kwargs):
  jflax = pytest.importorskip("jaxup.flax")
  return jflax.ConvTranspose(**kwargs).init(jax.random.key(0), X)


def _nnx_conv_transpose(**kwargs):
  nnx = pytest.importorskip("flax.nnx")
  jnnx = pytest.importorskip("jaxup.nnx")
  return jnnx.ConvTranspose(**kwargs, rngs=nnx.Rngs(0))(X)


def _haiku_conv_transpose(**kwargs):
  hk = pytest.importorskip("haiku")
  jhk = pytest.importorskip("jaxup.haiku")
  return hk.transform(lambda v: jhk.ConvTranspose(**kwargs)(v)).init(jax.random.key(0), X)


def _linen_upsample_conv(**kwargs):
  jflax = pytest.importorskip("jaxup.flax")
  return jflax.UpsampleConv(**kwargs).init(jax.random.key(0), X)


def _nnx_upsample_conv(**kwargs):
  nnx = pytest.importorskip("flax.nnx")
  jnnx = pytest.importorskip("jaxup.nnx")
  return jnnx.UpsampleConv(**kwargs, rngs=nnx.Rngs(0))(X)


def _haiku_upsample_conv(**kwargs):
  hk = pytest.importorskip("haiku")
  jhk = pytest.importorskip("jaxup.haiku")
  return hk.transform(lambda v: jhk.UpsampleConv(**kwargs)(v)).init(jax.random.key(0), X)


def _equinox_upsample_conv(**kwargs):
  jeqx = pytest.importorskip("jaxup.equinox")
  return jeqx.UpsampleConv(**kwargs, key=jax.random.key(0))(X)


def _stateless(name, *arrays):
  def build_and_call(*args, **kwargs):
    from jaxup._src import layers  # pylint: disable=import-outside-toplevel
    return getattr(layers, name)(*args, **kwargs)(*arrays)
  return build_and_call


# Options the layers hand to conv_transpose unchanged: a sample of each kind shows they reach
# the same checks (the full lists run against conv_transpose itself).
_LAYER_OPTIONS = {"stride": INTS_POSITIVE_BAD[::3], "padding": PADDING_BAD[::3],
                  "output_padding": INTS_NON_NEGATIVE_BAD[::3],
                  "dilation": INTS_POSITIVE_BAD[1::3], "groups": INT_BAD + POSITIVE_BAD,
                  "layout": (LAYOUT_BAD + NEEDS_CHANNELS_BAD)[::2]}

_UPSAMPLE_CONV_OPTIONS = {"factor": INTS_POSITIVE_BAD[::3], "padding": PADDING_BAD[::3],
                          "dilation": INTS_POSITIVE_BAD[1::3], "groups": INT_BAD + POSITIVE_BAD,
                          "layout": (LAYOUT_BAD + NEEDS_CHANNELS_BAD)[::2]}
# Layers whose kernel_size is a tuple that sets the spatial rank (nnx, Equinox).
_TUPLE_KERNEL_SIZE_BAD = [
    (3, TypeError, r"kernel_size must be a tuple with one size per spatial axis, such as "
     r"\(3, 3\) .* got 3"),
    ("33", TypeError, r"kernel_size must be a tuple .* got '33'"),
    ((3, 0), ValueError, r"kernel_size must be a positive int, got 0"),
    ((3, 1.5), TypeError, r"kernel_size must be an int, got 1.5")]
_TUPLE_LAYOUT_BAD = LAYOUT_BAD[:3] + [
    ("NHW", ValueError, r"layout must contain a channel axis 'C', got 'NHW'"),
    ("NDHWC", ValueError, r"layout must have 2 spatial axes, got 'NDHWC' with 3"),
    ("NH1C", ValueError, r"layout must be ASCII letters"),
    ("NHHC", ValueError, r"layout must use each letter once")]

# The layers of jaxup.flax, jaxup.nnx, jaxup.haiku and jaxup.equinox: built and applied to X
# once.
LAYER_ENTRIES: dict[str, Entry] = {
    # Flax freezes module attributes: a list arrives as a tuple, a dict as a FrozenDict.
    "flax.ConvTranspose": Entry(
        _linen_conv_transpose, dict(features=4, kernel_size=3),
        {"features": INT_BAD + POSITIVE_BAD, "kernel_size": INTS_POSITIVE_BAD,
         "use_bias": _without(BOOL_BAD, {}, []),
         **_LAYER_OPTIONS, "padding": _without(PADDING_BAD, ["a", "b"])}),
    "nnx.ConvTranspose": Entry(
        _nnx_conv_transpose, dict(in_features=2, out_features=4, kernel_size=(3, 3)),
        {"in_features": INT_BAD + POSITIVE_BAD, "out_features": INT_BAD + POSITIVE_BAD,
         "kernel_size": [(3, TypeError, r"kernel_size must be a tuple with one size per "
                          r"spatial axis, such as \(3, 3\) .* got 3"),
                         ("33", TypeError, r"kernel_size must be a tuple .* got '33'"),
                         ((3, 0), ValueError, r"kernel_size must be a positive int, got 0"),
                         ((3, 1.5), TypeError, r"kernel_size must be an int, got 1.5")],
         "use_bias": BOOL_BAD, **_LAYER_OPTIONS,
         "layout": LAYOUT_BAD[:3] + [
             ("NHW", ValueError, r"layout must contain a channel axis 'C', got 'NHW'"),
             ("NDHWC", ValueError, r"layout must have 2 spatial axes, got 'NDHWC' with 3"),
             ("NH1C", ValueError, r"layout must be ASCII letters"),
             ("NHHC", ValueError, r"layout must use each letter once")]}),
    "haiku.ConvTranspose": Entry(
        _haiku_conv_transpose, dict(output_channels=4, kernel_size=3),
        {"output_channels": INT_BAD + POSITIVE_BAD, "kernel_size": INTS_POSITIVE_BAD,
         "with_bias": BOOL_BAD, **_LAYER_OPTIONS}),
    # UpsampleConv hands factor, padding, dilation, groups and layout to upsample_conv: a
    # sample of each, as above.
    "flax.UpsampleConv": Entry(
        _linen_upsample_conv, dict(features=4, kernel_size=3, factor=2),
        {"features": INT_BAD + POSITIVE_BAD, "kernel_size": INTS_POSITIVE_BAD,
         "use_bias": _without(BOOL_BAD, {}, []), **_UPSAMPLE_CONV_OPTIONS,
         "padding": _without(PADDING_BAD, ["a", "b"])[::3]}),
    "nnx.UpsampleConv": Entry(
        _nnx_upsample_conv, dict(in_features=2, out_features=4, kernel_size=(3, 3), factor=2),
        {"in_features": INT_BAD + POSITIVE_BAD, "out_features": INT_BAD + POSITIVE_BAD,
         "kernel_size": _TUPLE_KERNEL_SIZE_BAD, "use_bias": BOOL_BAD, **_UPSAMPLE_CONV_OPTIONS,
         "layout": _TUPLE_LAYOUT_BAD}),
    "haiku.UpsampleConv": Entry(
        _haiku_upsample_conv, dict(output_channels=4, kernel_size=3, factor=2),
        {"output_channels": INT_BAD + POSITIVE_BAD, "kernel_size": INTS_POSITIVE_BAD,
         "with_bias": BOOL_BAD, **_UPSAMPLE_CONV_OPTIONS}),
    "equinox.UpsampleConv": Entry(
        _equinox_upsample_conv,
        dict(in_features=2, out_features=4, kernel_size=(3, 3), factor=2),
        {"in_features": INT_BAD + POSITIVE_BAD, "out_features": INT_BAD + POSITIVE_BAD,
         "kernel_size": _TUPLE_KERNEL_SIZE_BAD, "use_bias": BOOL_BAD, **_UPSAMPLE_CONV_OPTIONS,
         "layout": _TUPLE_LAYOUT_BAD}),
    "UpsampleNearest": Entry(_stateless("UpsampleNearest", X), dict(factor=2),
                             {"factor": INTS_POSITIVE_BAD, "layout": LAYOUT_BAD}),
    "BedOfNails": Entry(_stateless("BedOfNails", X), dict(factor=2),
                        {"factor": INTS_POSITIVE_BAD, "layout": LAYOUT_BAD}),
    "PixelShuffle": Entry(_stateless("PixelShuffle", np.ones((1, 2, 2, 8))), dict(factor=2),
                          {"factor": INTS_POSITIVE_BAD, "order": _choice_bad("CRD", "DCR")}),
    "PixelUnshuffle": Entry(_stateless("PixelUnshuffle", X), dict(factor=2),
                            {"factor": INTS_POSITIVE_BAD, "order": _choice_bad("CRD", "DCR")}),
    "Resize": Entry(_stateless("Resize", X), dict(size=(8, 8), method="linear"),
                    {"method": _choice_bad("nearest", "nearest-exact", "linear", "cubic",
                                           "box", "lanczos1", "lanczos3", "lanczos5",
                                           "mitchellcubic", "gaussian", "area", "area-overlap"),
                     "antialias": BOOL_BAD, "align_corners": BOOL_BAD}),
    "MaxPool": Entry(_stateless("MaxPool", X), dict(window=2),
                     {"window": INTS_POSITIVE_BAD, "ceil_mode": BOOL_BAD,
                      "return_indices": BOOL_BAD, "padding": PADDING_BAD}),
    "MaxUnpool": Entry(_stateless("MaxUnpool", POOLED, INDICES), dict(window=2),
                       {"window": INTS_POSITIVE_BAD,
                        "output_size": _without(INTS_NON_NEGATIVE_BAD, None)}),
}


def _materialise(value):
  """Values that need an optional import are named by a string in the table."""
  if isinstance(value, str) and value.startswith("torch"):
    return {"torch": _torch_tensor, "torch_module": _torch_module,
            "torch_int": _torch_int_weight}[value]()
  return value


def _cases():
  """Every (function, argument, wrong value) and every combination. Under ``python -O`` (run
  by ``test_the_matrix_holds_under_python_O``) every third value per argument, and all the
  combinations, keep the second run short: the checks are shared, so a sample covers them."""
  stride = 3 if os.environ.get(_OPTIMIZED_RUN) == "1" else 1
  cases = []
  for table, entries in (("jaxup", ENTRIES), ("jaxup.testing", TESTING_ENTRIES),
                         ("layers", LAYER_ENTRIES)):
    for name, entry in entries.items():
      for arg, bads in entry.args.items():
        for i, (value, error, pattern) in enumerate(bads):
          if i % stride:
            continue
          cases.append(pytest.param(entry, {arg: value}, error, pattern.replace("{name}", arg),
                                    arg, id=f"{name}-{arg}-{i}"))
      for i, (overrides, error, pattern) in enumerate(entry.extra):
        cases.append(pytest.param(entry, overrides, error, pattern, None,
                                  id=f"{name}-combination-{i}"))
  return cases


CASES = _cases()


@pytest.mark.parametrize("entry, overrides, error, pattern, arg", CASES)
def test_bad_input(entry, overrides, error, pattern, arg):
  kwargs = dict(entry.valid_for.get(arg, entry.valid))
  kwargs.update({k: _materialise(v) for k, v in overrides.items()})
  with pytest.raises(error, match=pattern):
    entry.fn(**kwargs)


@pytest.mark.parametrize("table, entries", [("jaxup", ENTRIES),
                                            ("jaxup.testing", TESTING_ENTRIES),
                                            ("layers", LAYER_ENTRIES)])
def test_valid_calls_succeed(table, entries):
  """The baseline of every entry is a call that works, so each case changes one thing."""
  for name, entry in entries.items():
    for kwargs in [entry.valid, *entry.valid_for.values()]:
      result = entry.fn(**kwargs)
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


def test_every_public_callable_has_an_entry():
  """A public function without a row in the matrix, or an argument without wrong values (or a
  reason why it has none), fails here."""
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


@pytest.mark.skipif(os.environ.get(_OPTIMIZED_RUN) == "1", reason="a sample under python -O")
def test_matrix_size():
  """Hundreds of cases; the count is reported by the test id list (pytest --collect-only)."""
  if len(CASES) < 500:
    pytest.fail(f"only {len(CASES)} bad-input cases")


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
       "-W", "ignore::pytest.PytestConfigWarning", str(pathlib.Path(__file__).resolve())],
      cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False)
  if result.returncode != 0:
    pytest.fail(f"under python -O:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
  ran = [line for line in result.stdout.splitlines() if " passed" in line]
  if not ran or int(ran[-1].split(" passed")[0].split()[-1]) < 300:
    pytest.fail(f"under python -O too little ran:\n{result.stdout[-2000:]}")
