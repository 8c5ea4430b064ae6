"""The shared core: layout strings and per-axis parameter normalisation."""

import numpy as np
import pytest

from jaxup._src import geometry
from jaxup._src.layout import parse_layout


@pytest.mark.parametrize(
    "layout, ndim, batch, channel, spatial",
    [
        ("NWC", 3, 0, 2, (1,)),
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


def test_rank_3_without_a_layout_is_refused_unless_the_spatial_rank_says_nwc():
  # (H, W, C) under vmap and (N, W, C) look alike: None picks neither.
  with pytest.raises(ValueError, match=r'layout="NWC" for a batch of 1-D signals, '
                     r'layout="HWC" for one image'):
    parse_layout(None, 3)
  assert parse_layout(None, 3, num_spatial=(1,)).spec == "NWC"
  assert parse_layout(None, 3, require_batch=True).spec == "NWC"
  with pytest.raises(ValueError, match=r'pass layout="HWC" for one image'):
    parse_layout(None, 3, num_spatial=(2,))


def test_lower_case_layouts_are_upper_cased():
  assert parse_layout("nchw", 4) == parse_layout("NCHW", 4)
  assert parse_layout("hwC", 3).spec == "HWC"


def test_layout_fields_must_agree_with_the_spec():
  from jaxup import Layout
  assert Layout("NCHW", 0, 1, (2, 3)) == parse_layout("NCHW", 4)
  with pytest.raises(ValueError, match=r"spatial_axes must be \(0, 1, \(2, 3\)\) for spec 'NCHW'"):
    Layout("NCHW", 0, 3, (1, 2))
  with pytest.raises(TypeError, match="spec must be a layout string"):
    Layout(None, 0, 1, (2, 3))


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
        (None, 2, {}, ValueError,
         r"layout must be a layout string such as 'NCHW' or 'HWC' for an input of rank 2 .*"
         r"got None"),
        ("NHWC", 3, {}, ValueError, r"layout must have 3 letters, .* got 'NHWC'"),
        ("NH C", 4, {}, ValueError, r"layout must be ASCII letters: .* got 'NH C'"),
        ("NNWC", 4, {}, ValueError, r"layout must use each letter once .* got 'NNWC'"),
        ("NHW", 3, {}, ValueError, r"layout must contain a channel axis 'C', got 'NHW'"),
        ("HWC", 3, dict(require_batch=True), ValueError,
         r"layout must contain a batch axis 'N', got 'HWC'"),
        ("NC", 2, dict(require_channels=False), ValueError,
         r"layout must have a spatial axis .* got 'NC'"),
        ("NCABCD", 6, {}, ValueError, r"layout must use each letter once"),
        ("NCABDE", 6, {}, ValueError,
         r"layout must have 1 or 2 or 3 spatial axes, got 'NCABDE' with 4"),
        ("ncabde", 6, {}, ValueError,
         r"layout must have 1 or 2 or 3 spatial axes, got 'ncabde' with 4"),
        (b"NHWC", 4, {}, TypeError, r"layout must be a string"),
        ("NHWC", 4.0, {}, TypeError, r"ndim must be an int, got 4.0"),
        ("NHWC", 4, dict(require_batch="yes"), TypeError, r"require_batch must be a bool"),
    ],
)
def test_parse_layout_errors(layout, ndim, kwargs, error, match):
  with pytest.raises(error, match=match):
    parse_layout(layout, ndim, **kwargs)


def test_normalize_ints_and_padding():
  assert geometry.normalize_ints(np.int64(3), 2, "stride") == (3, 3)
  assert geometry.normalize_ints([1, 2, 3], 3, "window") == (1, 2, 3)
  assert geometry.normalize_ints(0, 1, "output_padding", minimum=0) == (0,)
  with pytest.raises(TypeError, match=r"stride must be an int, got 1.5"):
    geometry.normalize_ints(1.5, 2, "stride")
  with pytest.raises(TypeError, match=r"stride must be an int, got True"):
    geometry.normalize_ints(True, 2, "stride")
  assert geometry.normalize_padding(2, 3) == ((2, 2),) * 3
  assert geometry.normalize_padding("valid", 1) == "VALID"
  assert geometry.normalize_padding([1, (0, 2)], 2) == ((1, 1), (0, 2))
  assert geometry.normalize_padding(-1, 1, allow_negative=True) == ((-1, -1),)
  with pytest.raises(ValueError, match=r"padding must be an int, .* got 'SAME'"):
    geometry.normalize_padding("SAME", 2, allow_strings=False)


def test_same_padding_matches_lax():
  from jax import lax

  for size in range(1, 9):
    for k in range(1, 5):
      for s in range(1, 4):
        for d in (1, 2):
          expected = lax.padtype_to_pads((size,), ((k - 1) * d + 1,), (s,), "SAME")[0]
          assert geometry.same_padding(size, k, s, d) == tuple(expected)
