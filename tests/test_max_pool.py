"""max_pool and the index converters: the worked example, PyTorch / ONNX / TensorFlow index
conventions, gradients, transformations and errors."""

import functools
import inspect
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxup
from tests.helpers import assert_jit_eager_vmap, random

# The worked 4x4: every 2x2 window has maximum 4, at (1, 1), (0, 2), (2, 1) and (3, 2).
WORKED = np.array([[1, 2, 4, 1],
                 [3, 4, 2, 3],
                 [1, 4, 3, 2],
                 [2, 3, 4, 1]])
SPATIAL = {1: "W", 2: "HW", 3: "DHW"}


def _pool(x, window, **kwargs):
  return jax.jit(functools.partial(jaxup.max_pool, window=window, return_indices=True, **kwargs))(x)


# Hand-computed expectations.


def test_worked_example():
  values, indices = jaxup.max_pool(WORKED, 2, return_indices=True, layout="HW")
  assert values.tolist() == [[4, 4], [4, 4]]
  assert indices.tolist() == [[5, 2], [9, 14]]
  assert values.dtype == WORKED.dtype and indices.dtype == jnp.int32
  batched = jaxup.max_pool(WORKED[None, :, :, None], 2, return_indices=True)  # NHWC
  assert [a[0, :, :, 0].tolist() for a in batched] == [[[4, 4], [4, 4]], [[5, 2], [9, 14]]]
  assert jaxup.max_pool(WORKED, 2, layout="HW").tolist() == [[4, 4], [4, 4]]


def test_ties_go_to_the_first_position_in_window_order():
  x = jnp.array([[7, 7], [7, 7]])
  assert jaxup.max_pool(x, 2, return_indices=True, layout="HW")[1].tolist() == [[0]]
  x = jnp.array([1., 3., 3., 2., 3.])
  values, indices = jaxup.max_pool(x, 3, stride=1, return_indices=True, layout="W")
  assert values.tolist() == [3, 3, 3] and indices.tolist() == [1, 1, 2]


def test_nan_is_the_maximum_and_the_last_nan_wins_like_pytorch():
  x = jnp.array([jnp.nan, 1., jnp.nan, 2., 5., 4., 3., 0.])
  values, indices = jaxup.max_pool(x, 4, return_indices=True, layout="W")
  assert np.isnan(values).tolist() == [True, False] and indices.tolist() == [2, 4]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.int8, jnp.uint8])
def test_padding_never_wins_even_against_the_dtype_minimum(dtype):
  low = -jnp.inf if jnp.issubdtype(dtype, jnp.floating) else jnp.iinfo(dtype).min
  x = jnp.full((3,), low, dtype)
  values, indices = jaxup.max_pool(x, 3, stride=1, padding=1, return_indices=True, layout="W")
  assert values.dtype == dtype
  assert values.tolist() == [low] * 3 and indices.tolist() == [0, 0, 1]


def test_ceil_mode_last_window_must_start_inside_input_or_left_padding():
  x = jnp.arange(4.)
  # ceil((4 + 2 - 2) / 3) + 1 = 3 windows, but the third would start at 6 - 1 = 5 >= 4.
  values, indices = jaxup.max_pool(
      x, 2, stride=3, padding=1, ceil_mode=True, return_indices=True, layout="W")
  assert values.tolist() == [0, 3] and indices.tolist() == [0, 3]
  values = jaxup.max_pool(jnp.arange(5.), 2, ceil_mode=True, layout="W")
  assert values.tolist() == [1, 3, 4]


def test_dilation_and_asymmetric_and_string_padding():
  x = jnp.array([5., 1., 2., 6., 0., 3.])
  values, indices = jaxup.max_pool(x, 2, stride=2, dilation=2, return_indices=True, layout="W")
  assert values.tolist() == [5, 2] and indices.tolist() == [0, 2]
  values, indices = jaxup.max_pool(x, 2, padding=[(1, 0)], return_indices=True, layout="W")
  assert values.tolist() == [5, 2, 6] and indices.tolist() == [0, 2, 3]
  same = jaxup.max_pool(x, 4, stride=1, padding="same", layout="W")  # TF: pads (1, 2)
  assert same.tolist() == [5, 6, 6, 6, 6, 3]
  assert jaxup.max_pool(x, 4, stride=1, padding="VALID", layout="W").tolist() == [6, 6, 6]


# PyTorch parity over a randomized grid.


def _torch_pool_configs(count, seed):
  rng = np.random.default_rng(seed)
  dtypes = [np.float32, np.float64, np.float16, np.int32, np.int64]
  configs = []
  while len(configs) < count:
    nd = int(rng.integers(1, 4))
    window = tuple(int(v) for v in rng.integers(1, 5, nd))
    stride = tuple(int(v) for v in rng.integers(1, 5, nd))
    dilation = tuple(int(v) for v in rng.integers(1, 3, nd))
    padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in window)  # PyTorch's limit
    size = tuple(int(v) for v in rng.integers(1, 9 if nd < 3 else 7, nd))
    span = [(k - 1) * d + 1 for k, d in zip(window, dilation)]
    if any(n + 2 * p < s or n < d for n, p, s, d in zip(size, padding, span, dilation)):
      continue  # no output, or PyTorch's windows of only padding (jaxup raises: see below)
    configs.append(dict(window=window, stride=stride, dilation=dilation, padding=padding,
                        ceil_mode=bool(rng.integers(0, 2)), size=size,
                        dtype=dtypes[int(rng.integers(0, len(dtypes)))],
                        channels_last=bool(rng.integers(0, 2)), seed=int(rng.integers(1 << 30))))
  return configs


TORCH_CONFIGS = _torch_pool_configs(40, seed=20261125)


def test_randomized_grid_covers_the_brief():
  c = TORCH_CONFIGS
  assert {len(k["window"]) for k in c} == {1, 2, 3}
  assert {v for k in c for v in k["window"]} == {1, 2, 3, 4}
  assert {v for k in c for v in k["stride"]} == {1, 2, 3, 4}
  assert {v for k in c for v in k["dilation"]} == {1, 2}
  assert any(max(k["padding"]) > 0 for k in c) and {k["ceil_mode"] for k in c} == {0, 1}
  assert any(k["stride"] == k["window"] for k in c) and any(
      s < w for k in c for s, w in zip(k["stride"], k["window"]))
  assert {k["channels_last"] for k in c} == {0, 1}
  assert {np.dtype(k["dtype"]).kind for k in c} == {"f", "i"} and len(c) == 40


@pytest.mark.parametrize("config", TORCH_CONFIGS, ids=lambda c: "-".join(
    f"{k}{v}" for k, v in c.items() if k != "seed").replace(" ", "").replace("class", ""))
def test_matches_torch_max_pool_with_indices(config):
  torch = pytest.importorskip("torch")
  functional = torch.nn.functional
  nd = len(config["window"])
  rng = np.random.default_rng(config["seed"])
  x = rng.integers(-3, 4, (2, 3) + config["size"]).astype(config["dtype"])  # many ties
  if np.issubdtype(config["dtype"], np.floating):
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.1] = -np.inf
  pool = getattr(functional, f"max_pool{nd}d")
  expected = pool(torch.from_numpy(x), config["window"], config["stride"], config["padding"],
                  config["dilation"], ceil_mode=config["ceil_mode"], return_indices=True)
  kwargs = {k: config[k] for k in ("stride", "padding", "dilation", "ceil_mode")}
  if config["channels_last"]:
    values, indices = _pool(np.moveaxis(x, 1, -1), config["window"], layout="N" + SPATIAL[nd][-nd:] + "C", **kwargs)
    values, indices = np.moveaxis(values, -1, 1), np.moveaxis(indices, -1, 1)
  else:
    values, indices = _pool(x, config["window"], layout="NC" + SPATIAL[nd][-nd:], **kwargs)
  assert values.dtype == x.dtype
  np.testing.assert_array_equal(np.asarray(values), expected[0].numpy())
  np.testing.assert_array_equal(np.asarray(indices), expected[1].numpy())


def test_bfloat16_matches_float32():
  x = random((2, 9, 7, 3), jnp.bfloat16, seed=3)
  low, high = _pool(x, 3, stride=2, padding=1), _pool(x.astype(jnp.float32), 3, stride=2,
                                                       padding=1)
  np.testing.assert_array_equal(np.asarray(low[0], np.float32), np.asarray(high[0]))
  np.testing.assert_array_equal(np.asarray(low[1]), np.asarray(high[1]))


# ONNX and TensorFlow index formats.


def _onnx_max_pool(x, window, stride, pads, storage_order, ceil_mode):
  onnx = pytest.importorskip("onnx")
  from onnx import TensorProto, helper
  from onnx.reference import ReferenceEvaluator
  node = helper.make_node("MaxPool", ["X"], ["Y", "I"], kernel_shape=list(window),
                          strides=list(stride), pads=list(pads), storage_order=storage_order,
                          ceil_mode=int(ceil_mode))
  graph = helper.make_graph(
      [node], "pool", [helper.make_tensor_value_info("X", TensorProto.DOUBLE, None)],
      [helper.make_tensor_value_info("Y", TensorProto.DOUBLE, None),
       helper.make_tensor_value_info("I", TensorProto.INT64, None)])
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
  del onnx
  return ReferenceEvaluator(model).run(None, {"X": x})


@pytest.mark.parametrize("storage_order", [0, 1])
@pytest.mark.parametrize("window,stride,padding,ceil_mode,size", [
    ((3,), (2,), (1,), True, (8,)),
    ((2, 3), (2, 1), (1, 0), False, (5, 6)),
    ((2, 2, 3), (2, 2, 2), (0, 1, 1), True, (4, 5, 5)),
])
def test_onnx_indices_match_the_onnx_reference(storage_order, window, stride, padding,
                                              ceil_mode, size):
  x = np.random.default_rng(7).integers(-3, 4, (2, 3) + size).astype(np.float64)
  pads = list(padding) * 2  # ONNX: all begins, then all ends
  expected_values, expected = _onnx_max_pool(x, window, stride, pads, storage_order, ceil_mode)
  layout = "NC" + SPATIAL[len(size)][-len(size):]
  values, indices = _pool(x, window, stride=stride, padding=padding, ceil_mode=ceil_mode,
                          layout=layout)
  np.testing.assert_array_equal(np.asarray(values), expected_values)
  onnx_indices = jaxup.indices_to_onnx(indices, size, storage_order=storage_order,
                                       dtype=jnp.int64, layout=layout)
  np.testing.assert_array_equal(np.asarray(onnx_indices), expected)
  back = jaxup.indices_from_onnx(expected, size, storage_order=storage_order, layout=layout)
  np.testing.assert_array_equal(np.asarray(back), np.asarray(indices))


def _tf_max_pool_with_argmax(x, window, stride, include_batch_in_index):
  """A direct loop over tf.nn.max_pool_with_argmax's definition (NHWC, "VALID")."""
  n, h, w, c = x.shape
  (kh, kw), (sh, sw) = window, stride
  out = np.zeros((n, (h - kh) // sh + 1, (w - kw) // sw + 1, c), np.int64)
  for b, i, j, ch in itertools.product(*map(range, out.shape)):
    patch = x[b, i * sh:i * sh + kh, j * sw:j * sw + kw, ch]
    y, xx = np.unravel_index(np.argmax(patch), patch.shape)
    y, xx = i * sh + y, j * sw + xx
    flat = (y * w + xx) * c + ch
    out[b, i, j, ch] = flat + (b * h * w * c if include_batch_in_index else 0)
  return out


@pytest.mark.parametrize("include_batch_in_index", [False, True])
def test_tf_indices_follow_max_pool_with_argmax(include_batch_in_index):
  x = np.asarray(random((2, 7, 6, 3), seed=5))  # distinct values: argmax is unambiguous
  expected = _tf_max_pool_with_argmax(x, (3, 2), (2, 2), include_batch_in_index)
  _, indices = _pool(x, (3, 2), stride=2)
  tf_indices = jaxup.indices_to_tf(indices, (7, 6), include_batch_in_index=include_batch_in_index)
  np.testing.assert_array_equal(np.asarray(tf_indices), expected)
  back = jaxup.indices_from_tf(expected, (7, 6), include_batch_in_index=include_batch_in_index)
  np.testing.assert_array_equal(np.asarray(back), np.asarray(indices))
  assert back.dtype == expected.dtype


@pytest.mark.parametrize("layout,shape", [("NWC", (2, 5, 3)), ("NCDHW", (2, 3, 3, 4, 5)),
                                          ("HWC", (4, 6, 2)), ("NHW", (2, 3, 4))])
def test_converters_round_trip(layout, shape):
  spatial = tuple(s for s, letter in zip(shape, layout) if letter not in "NC")
  indices = jnp.asarray(np.random.default_rng(1).integers(0, np.prod(spatial), shape),
                        jnp.int32)
  for kwargs in ({}, {"include_batch_in_index": True}):
    tf = jaxup.indices_to_tf(indices, spatial, layout=layout, **kwargs)
    np.testing.assert_array_equal(
        jaxup.indices_from_tf(tf, spatial, layout=layout, **kwargs), indices)
  for order in (0, 1):
    onnx = jaxup.indices_to_onnx(indices, spatial, storage_order=order, layout=layout)
    np.testing.assert_array_equal(
        jaxup.indices_from_onnx(onnx, spatial, storage_order=order, layout=layout), indices)


def test_converters_number_the_whole_tensor():
  # [N=2, W=3, C=2]: every (b, x, c) triple, as a plane offset x, gets a distinct number.
  indices = jnp.broadcast_to(jnp.arange(3)[None, :, None], (2, 3, 2))
  tf = jaxup.indices_to_tf(indices, 3, include_batch_in_index=True, layout="NWC")
  assert tf.ravel().tolist() == list(range(12))  # NWC row-major
  onnx = jaxup.indices_to_onnx(indices, 3, layout="NWC")
  assert jnp.moveaxis(onnx, -1, 1).ravel().tolist() == list(range(12))  # NCW row-major


# Properties: gradients, transformations, layouts, memory.


def test_check_grads():
  x = random((1, 5, 4, 1), seed=2)  # distinct values: the argmax is stable under perturbation
  for kwargs in ({"window": 3, "stride": 2, "padding": 1, "ceil_mode": True},
                 {"window": 2, "stride": 1, "dilation": 2}):
    check_grads(functools.partial(jaxup.max_pool, **kwargs), (x,), order=2, modes=("fwd", "rev"))


def test_gradient_goes_to_the_index_like_pytorch():
  x = jnp.asarray(np.random.default_rng(4).integers(0, 3, (2, 7, 6, 3)), jnp.float64)  # ties
  pool = lambda v: jaxup.max_pool(v, 3, stride=2, padding=1, return_indices=True)
  (values, indices), vjp = jax.vjp(pool, x)
  cotangent = random(values.shape, seed=6)
  grad = vjp((cotangent, np.zeros(indices.shape, jax.dtypes.float0)))[0]
  expected = np.zeros((2, 42, 3))
  for b, c in itertools.product(range(2), range(3)):
    np.add.at(expected[b, :, c], np.asarray(indices[b, ..., c]).ravel(),
              np.asarray(cotangent[b, ..., c]).ravel())
  np.testing.assert_allclose(grad, expected.reshape(x.shape), rtol=1e-12)


@pytest.mark.parametrize("output", [0, 1])
def test_jit_eager_vmap(output):
  x = jnp.round(random((3, 6, 7, 2), seed=8) * 2)  # ties
  fn = lambda v: jaxup.max_pool(v, 3, stride=2, padding=1, ceil_mode=True,
                                return_indices=True)[output]
  assert_jit_eager_vmap(fn, x)
  x3 = random((2, 3, 4, 5, 2), seed=9)
  assert_jit_eager_vmap(lambda v: jaxup.max_pool(v, 2, return_indices=True)[output], x3)


def test_layouts_agree():
  x = random((2, 7, 5, 3), seed=10)
  kwargs = dict(window=(3, 2), stride=(2, 1), padding=((1, 1), (0, 1)), return_indices=True)
  reference = jaxup.max_pool(x, **kwargs)
  nchw = jaxup.max_pool(jnp.transpose(x, (0, 3, 1, 2)), layout="NCHW", **kwargs)
  odd = jaxup.max_pool(jnp.transpose(x, (1, 0, 2, 3)), layout="HNWC", **kwargs)
  unbatched = jax.vmap(functools.partial(jaxup.max_pool, layout="HWC", **kwargs))(x)
  for got, perm in ((nchw, (0, 2, 3, 1)), (odd, (1, 0, 2, 3)), (unbatched, (0, 1, 2, 3))):
    for a, b in zip(got, reference):
      np.testing.assert_array_equal(jnp.transpose(a, perm), b)


def test_one_and_three_spatial_axes_and_empty_batch():
  x = random((2, 9, 3), seed=11)
  values, indices = jaxup.max_pool(x, 3, stride=2, return_indices=True, layout="NWC")
  np.testing.assert_array_equal(values, jnp.take_along_axis(x, indices, axis=1))
  x3 = random((1, 4, 4, 4, 2), seed=12)
  values, indices = jaxup.max_pool(x3, 2, return_indices=True)
  flat = x3.reshape(1, 64, 2)
  np.testing.assert_array_equal(
      values, jnp.take_along_axis(flat, indices.reshape(1, 8, 2), axis=1).reshape(values.shape))
  empty = jaxup.max_pool(jnp.zeros((0, 4, 4, 3)), 2, return_indices=True)
  assert empty[0].shape == empty[1].shape == (0, 2, 2, 3)


def test_no_window_sized_intermediate_for_non_overlapping_windows():
  x = random((2, 32, 32, 8), jnp.float32, seed=13)
  fn = lambda v: jaxup.max_pool(v, 2, return_indices=True)
  memory = jax.jit(fn).lower(x).compile().memory_analysis()
  if memory is None:
    pytest.skip("this backend reports no memory analysis")
  assert memory.temp_size_in_bytes <= x.nbytes  # 4 * x.nbytes would be a stacked window


# Errors and the API's shape.


@pytest.mark.parametrize("kwargs,error,match", [
    ({"window": 0}, ValueError, r"window must be a positive int, got 0"),
    ({"window": 2, "stride": (1, -1)}, ValueError, r"stride must be a positive int, got -1"),
    ({"window": 2, "dilation": 0}, ValueError, r"dilation must be a positive int, got 0"),
    ({"window": (2, 2, 2)}, ValueError, r"window must be .* got \(2, 2, 2\) of length 3"),
    ({"window": 2, "padding": -1}, ValueError, r"padding must be a non-negative int, got -1"),
    ({"window": 3, "padding": 3}, ValueError, r"padding=3 is too large.*sees only padding"),
    ({"window": 2, "layout": "NCH"}, ValueError, r"layout must have \d+ letters, .* got 'NCH'"),
    ({"window": 2.0}, TypeError, r"window must be an int"),
    ({"window": 9}, ValueError, r"larger than the padded input"),
])
def test_errors(kwargs, error, match):
  with pytest.raises(error, match=match):
    jaxup.max_pool(jnp.zeros((1, 5, 5, 1)), **kwargs)


def test_errors_on_windows_of_only_padding_and_bad_dtypes():
  # PyTorch accepts this (pad 1 <= 3 // 2) and returns -inf with index 1, outside the input.
  with pytest.raises(ValueError, match=r"some window sees only padding"):
    jaxup.max_pool(jnp.zeros((1, 1, 1)), 2, dilation=2, padding=1, layout="NWC")
  with pytest.raises(TypeError, match=r"x must have a real dtype \(floating point or integer\), got dtype bool"):
    jaxup.max_pool(jnp.zeros((1, 4, 1), bool), 2, layout="NWC")
  with pytest.raises(TypeError, match=r"x must be real, got a complex array \(dtype complex64\)"):
    jaxup.max_pool(jnp.zeros((1, 4, 1), jnp.complex64), 2, layout="NWC")


def test_converter_errors():
  indices = jnp.zeros((2, 3, 4), jnp.int32)
  with pytest.raises(ValueError, match=r"storage_order must be 0 \(row-major\) or 1 \(column-major\), got 2"):
    jaxup.indices_to_onnx(indices, 6, storage_order=2)
  with pytest.raises(TypeError, match=r"include_batch_in_index must be a bool .* got 'yes'"):
    jaxup.indices_to_tf(indices, 6, include_batch_in_index="yes")
  with pytest.raises(ValueError, match=r"dtype=int8 cannot hold indices up to 191"):
    jaxup.indices_to_onnx(indices, 24, dtype=jnp.int8, layout="NWC")
  with pytest.raises(TypeError, match=r"indices must have an integer dtype, got dtype float32"):
    jaxup.indices_from_tf(indices.astype(jnp.float32), 6)
  with pytest.raises(ValueError, match=r"input_size must be .* got \(6, 6\) of length 2"):
    jaxup.indices_to_tf(indices, (6, 6), layout="NWC")


@pytest.mark.parametrize("name", ["max_pool", "indices_to_tf", "indices_from_tf",
                                  "indices_to_onnx", "indices_from_onnx"])
def test_signature_array_first_then_keyword_only(name):
  params = list(inspect.signature(getattr(jaxup, name)).parameters.values())
  positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
  assert [p.default for p in positional] == [inspect.Parameter.empty] * len(positional)
  assert all(p.kind is p.KEYWORD_ONLY for p in params[len(positional):])
  assert "layout" in {p.name for p in params} and name in jaxup.__all__
