"""The shared core: layout strings and per-axis parameter normalisation."""

import numpy as np
import pytest

from jaxup._src import geometry
from jaxup._src.layout import parse_layout


@pytest.mark.parametrize(
    "layout, ndim, batch, channel, spatial",
    [
        (None, 3, 0, 2, (1,)),
        (None, 4, 0, 3, (1, 2)),
        (None, 5, 0, 4, (1, 2, 3)),
        ("NCHW", 4, 0, 1, (2, 3)),
        ("HWC", 3, None, 2, (0, 1)),
        ("CDHW", 4, None, 0, (1, 2, 3)),
        ("WNC", 3, 1, 2, (0,)),
    ],
)
def test_parse_layout(layout, ndim, batch, channel, spatial):
  lay = parse_layout(layout, ndim)
  assert (lay.batch_axis, lay.channel_axis, lay.spatial_axes) == (batch, channel, spatial)
  assert lay.spatial_shape(tuple(range(10, 10 + ndim))) == tuple(10 + a for a in spatial)


def test_with_batch_and_conv_dimension_numbers():
  lay = parse_layout("CHW", 3).with_batch()
  assert lay.spec == "NCHW"
  dn = lay.conv_dimension_numbers()
  assert dn.lhs_spec == (0, 1, 2, 3) and dn.rhs_spec == (3, 2, 0, 1)
  with pytest.raises(ValueError, match="needs both a batch axis"):
    parse_layout("CHW", 3).conv_dimension_numbers()


@pytest.mark.parametrize(
    "layout, ndim, kwargs, error, match",
    [
        (None, 2, {}, ValueError, r"layout=None has no default for an input of rank 2"),
        ("NHWC", 3, {}, ValueError, r"layout='NHWC' has 4 letters but the input has rank 3"),
        ("NH C", 4, {}, ValueError, r"must be upper-case ASCII letters"),
        ("NNWC", 4, {}, ValueError, r"repeats a letter"),
        ("NHW", 3, {}, ValueError, r"must contain a channel axis 'C'"),
        ("HWC", 3, dict(require_batch=True), ValueError, r"must contain a batch axis 'N'"),
        ("NC", 2, dict(require_channels=False), ValueError, r"has 0 spatial axes"),
        ("NCABCD", 6, {}, ValueError, r"repeats a letter"),
        ("NCABDE", 6, {}, ValueError, r"has 4 spatial axes; expected one of \(1, 2, 3\)"),
        (b"NHWC", 4, {}, TypeError, r"layout must be a string"),
    ],
)
def test_parse_layout_errors(layout, ndim, kwargs, error, match):
  with pytest.raises(error, match=match):
    parse_layout(layout, ndim, **kwargs)


def test_normalize_ints_and_padding():
  assert geometry.normalize_ints(np.int64(3), 2, "stride") == (3, 3)
  assert geometry.normalize_ints([1, 2, 3], 3, "window") == (1, 2, 3)
  assert geometry.normalize_ints(0, 1, "output_padding", minimum=0) == (0,)
  with pytest.raises(TypeError, match=r"stride must be an integer, got 1.5"):
    geometry.normalize_ints(1.5, 2, "stride")
  with pytest.raises(TypeError, match=r"stride must be an integer, got True"):
    geometry.normalize_ints(True, 2, "stride")
  assert geometry.normalize_padding(2, 3) == ((2, 2),) * 3
  assert geometry.normalize_padding("valid", 1) == "VALID"
  assert geometry.normalize_padding([1, (0, 2)], 2) == ((1, 1), (0, 2))
  assert geometry.normalize_padding(-1, 1, allow_negative=True) == ((-1, -1),)
  with pytest.raises(ValueError, match=r"padding='SAME' is not valid; expected an int"):
    geometry.normalize_padding("SAME", 2, allow_strings=False)


def test_same_padding_matches_lax():
  from jax import lax

  for size in range(1, 9):
    for k in range(1, 5):
      for s in range(1, 4):
        for d in (1, 2):
          expected = lax.padtype_to_pads((size,), ((k - 1) * d + 1,), (s,), "SAME")[0]
          assert geometry.same_padding(size, k, s, d) == tuple(expected)
