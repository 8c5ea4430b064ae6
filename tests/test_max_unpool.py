"""max_unpool: the worked example, PyTorch and ONNX parity, duplicate and out-of-range indices,
the adjoint of gathering at the indices, transformations and errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxup
from jaxup import testing
from tests.helpers import assert_jit_eager_vmap, random

WORKED = np.array([[1, 2, 4, 1],
                 [3, 4, 2, 3],
                 [1, 4, 3, 2],
                 [2, 3, 4, 1]])
WORKED_UNPOOLED = [[0, 0, 2, 0], [0, 1, 0, 0], [0, 3, 0, 0], [0, 0, 4, 0]]
SPATIAL = {1: "W", 2: "HW", 3: "DHW"}


def _unpool(x, indices, window, **kwargs):
  return jax.jit(functools.partial(jaxup.max_unpool, window=window, **kwargs))(x, indices)


def _gather(y, indices, layout="NHWC"):
  """The named adjoint: each output's value at its index, per (batch, channel) plane."""
  spec = jaxup.parse_layout(layout, y.ndim)
  ys, ids = (jnp.moveaxis(a, (spec.batch_axis, spec.channel_axis), (0, 1)) for a in
             (y, indices))
  flat = ys.reshape(ys.shape[:2] + (-1,))
  out = jnp.take_along_axis(flat, ids.reshape(ids.shape[:2] + (-1,)), axis=2)
  return jnp.moveaxis(out.reshape(ids.shape), (0, 1), (spec.batch_axis, spec.channel_axis))


# Hand-computed expectations.


def test_worked_example():
  out = jaxup.max_unpool(jnp.array([[1, 2], [3, 4]]), jnp.array([[5, 2], [9, 14]]), 2,
                         layout="HW")
  assert out.tolist() == WORKED_UNPOOLED
  values, indices = jaxup.max_pool(WORKED[None, None], 2, return_indices=True, layout="NCHW")
  assert jaxup.max_unpool(jnp.array([[[[1, 2], [3, 4]]]]), indices, 2,
                          layout="NCHW")[0, 0].tolist() == WORKED_UNPOOLED
  round_trip = jaxup.max_unpool(values, indices, 2, layout="NCHW")[0, 0]
  assert round_trip.tolist() == np.where(np.array(WORKED_UNPOOLED) > 0, 4, 0).tolist()


def test_output_size_extends_or_trims_the_default():
  x, indices = jnp.array([5., 7.]), jnp.array([1, 4])
  assert jaxup.max_unpool(x, indices, 2, layout="W").tolist() == [0, 5, 0, 0]  # 4 dropped
  # Windows [0, 2) and [2, 4): index 4 lies outside its window and is dropped, however long
  # the output; with overlapping windows any in-range index is honoured.
  assert jaxup.max_unpool(x, indices, 2, output_size=[5], layout="W").tolist() == [
      0, 5, 0, 0, 0]
  assert jaxup.max_unpool(x, jnp.array([1, 3]), 2, output_size=[5], layout="W").tolist() == [
      0, 5, 0, 7, 0]
  assert jaxup.max_unpool(x, indices, 3, stride=2, layout="W").tolist() == [0, 5, 0, 0, 7]
  full = jaxup.max_unpool(x[None, :, None], jnp.array([1, 3])[None, :, None], 2,
                          output_size=(1, 5, 1), layout="NWC")
  assert full.shape == (1, 5, 1) and full.ravel().tolist() == [0, 5, 0, 7, 0]
  assert jaxup.max_unpool(x, jnp.array([0, 2]), 2, output_size=[3], layout="W").tolist() == [
      5, 0, 7]
  padded = jaxup.max_unpool(x, jnp.array([0, 2]), 3, stride=2, padding=1, layout="W")
  assert padded.tolist() == [5, 0, 7]  # (2 - 1) * 2 - 2 + 3


def test_duplicates_last_value_in_row_major_order_wins_like_pytorch_cpu():
  x = jnp.array([[1., 2.], [3., 4.]])
  indices = jnp.array([[5, 5], [5, 0]])
  out = jaxup.max_unpool(x, indices, 3, stride=1, layout="HW")  # overlapping 3x3 windows
  assert out.ravel().tolist() == [4, 0, 0, 0, 0, 3] + [0] * 10
  overlapping = jaxup.max_unpool(jnp.array([1., 2., 3.]), jnp.array([2, 2, 1]), 2, stride=1,
                                 layout="W")
  assert overlapping.tolist() == [0, 3, 2, 0]


def test_out_of_range_indices_are_dropped():
  x = jnp.array([1., 2., 3., 4.])
  out = jaxup.max_unpool(x, jnp.array([-1, 3, 8, 100]), 2, layout="W")
  assert out.tolist() == [0, 0, 0, 2, 0, 0, 0, 0]
  out = jaxup.max_unpool(x, jnp.array([1, -8, 5, 6]), 2, layout="W")  # -8 does not wrap
  assert out.tolist() == [0, 1, 0, 0, 0, 3, 4, 0]


def test_indices_outside_their_window():
  # Non-overlapping windows (stride == window): a value lands only inside its own window, as
  # max pooling's indices always do; an index elsewhere is dropped, with no decision taken
  # from the values of the indices.
  x = jnp.array([[1., 2.]])
  assert jaxup.max_unpool(x, jnp.array([[3, 2]]), 2, layout="NW").tolist() == [[0, 0, 2, 0]]
  assert jaxup.max_unpool(x, jnp.array([[1, 2]]), 2, layout="NW").tolist() == [[0, 1, 2, 0]]
  # Overlapping windows: any in-range index is honoured, as in PyTorch.
  out = jaxup.max_unpool(x, jnp.array([[2, 0]]), 2, stride=1, layout="NW")
  assert out.tolist() == [[2, 0, 1]]


@pytest.mark.parametrize("dtype,indices_dtype", [
    (jnp.int8, jnp.int64), (jnp.uint8, jnp.uint8), (jnp.float16, jnp.int32),
    (jnp.bfloat16, jnp.int16)])
def test_dtypes_are_kept(dtype, indices_dtype):
  x = jnp.array([[1, 2], [3, 4]], dtype)
  out = jaxup.max_unpool(x, jnp.array([[5, 2], [9, 14]], indices_dtype), 2, layout="HW")
  assert out.dtype == dtype
  np.testing.assert_array_equal(np.asarray(out, np.float32), WORKED_UNPOOLED)


# PyTorch parity over a randomized grid.


def _torch_unpool_configs(count, seed):
  rng = np.random.default_rng(seed)
  configs = []
  while len(configs) < count:
    nd = int(rng.integers(1, 4))
    window = tuple(int(v) for v in rng.integers(1, 5, nd))
    stride = window if rng.random() < 0.5 else tuple(int(v) for v in rng.integers(1, 5, nd))
    padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in window)
    size = tuple(int(v) for v in rng.integers(1, 9 if nd < 3 else 7, nd))
    if any(n + 2 * p < k for n, p, k in zip(size, padding, window)):
      continue
    configs.append(dict(window=window, stride=stride, padding=padding, size=size,
                        ceil_mode=bool(rng.integers(0, 2)),
                        exact_size=bool(rng.integers(0, 2)),
                        dtype=(np.float32, np.float64, np.int64)[int(rng.integers(0, 3))],
                        channels_last=bool(rng.integers(0, 2)), seed=int(rng.integers(1 << 30))))
  return configs


TORCH_CONFIGS = _torch_unpool_configs(24, seed=112526)


def _in_own_windows(rng, indices, window, padding, out_sizes):
  """NC* indices moved to a random position of their own (non-overlapping) window, where that
  position is inside the output; the others keep their max pooling index."""
  nd = len(window)
  grid = np.meshgrid(*(np.arange(n) for n in indices.shape[2:]), indexing="ij")
  flat, inside = np.zeros(indices.shape, np.int64), np.ones(indices.shape, bool)
  for a in range(nd):
    coord = grid[a] * window[a] - padding[a] + rng.integers(0, window[a], indices.shape)
    inside &= (coord >= 0) & (coord < out_sizes[a])
    flat = flat * out_sizes[a] + coord
  return np.where(inside, flat, indices)


def test_randomized_grid_covers_the_brief():
  c = TORCH_CONFIGS
  assert {len(k["window"]) for k in c} == {1, 2, 3}
  assert {v for k in c for v in k["window"]} == {1, 2, 3, 4}
  assert any(k["stride"] == k["window"] for k in c) and any(
      s < w for k in c for s, w in zip(k["stride"], k["window"]))
  assert {k["exact_size"] for k in c} == {0, 1} and {k["ceil_mode"] for k in c} == {0, 1}
  assert {np.dtype(k["dtype"]).kind for k in c} == {"f", "i"}


@pytest.mark.parametrize("config", TORCH_CONFIGS, ids=lambda c: "-".join(
    f"{k}{v}" for k, v in c.items() if k != "seed").replace(" ", "").replace("class", ""))
def test_matches_torch_max_unpool(config):
  torch = pytest.importorskip("torch")
  functional = torch.nn.functional
  nd = len(config["window"])
  rng = np.random.default_rng(config["seed"])
  x = rng.integers(-3, 4, (2, 3) + config["size"]).astype(config["dtype"])  # ties: duplicates
  pooled, indices = getattr(functional, f"max_pool{nd}d")(
      torch.from_numpy(x), config["window"], config["stride"], config["padding"],
      ceil_mode=config["ceil_mode"], return_indices=True)
  output_size = config["size"] if config["exact_size"] else None
  unpool = getattr(functional, f"max_unpool{nd}d")
  out_sizes = [int(n) for n in functional._unpool_output_size(  # PyTorch's own size rule
      pooled, config["window"], config["stride"], config["padding"], output_size)]
  if config["stride"] == config["window"]:
    shuffled = _in_own_windows(rng, indices.numpy(), config["window"], config["padding"],
                               out_sizes)
  else:
    shuffled = rng.integers(0, max(int(np.prod(out_sizes)), 1), indices.shape)  # duplicates
  kwargs = dict(stride=config["stride"], padding=config["padding"], output_size=output_size)
  compared = 0
  candidates = [indices.numpy(), shuffled]
  if config["stride"] == config["window"] and tuple(out_sizes) != config["size"]:
    # The pooling indices number a plane of another width than the output's: their positions
    # there leave the windows (PyTorch scatters them anyway, jaxup drops them).
    candidates = [shuffled]
  for idx in candidates:
    # PyTorch has no integer unpooling: unpool small integers exactly in float64.
    try:
      expected = unpool(pooled.double(), torch.from_numpy(idx), config["window"],
                        config["stride"], config["padding"], output_size)
    except RuntimeError as error:  # an index beyond a default output smaller than the input
      assert "invalid max index" in str(error)
      continue
    expected = expected.numpy().astype(x.dtype)
    compared += 1
    values = pooled.numpy()
    if config["channels_last"]:
      out = _unpool(np.moveaxis(values, 1, -1), np.moveaxis(idx, 1, -1), config["window"],
                    **kwargs)
      out = np.moveaxis(out, -1, 1)
    else:
      out = _unpool(values, idx, config["window"], layout="NC" + SPATIAL[nd][-nd:], **kwargs)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(np.asarray(out), expected)
  assert compared >= 1


def test_matches_onnx_max_unpool():
  pytest.importorskip("onnx")
  from onnx import TensorProto, helper
  from onnx.reference import ReferenceEvaluator
  x = random((2, 3, 6, 4), seed=1)
  values, indices = jaxup.max_pool(x, 2, return_indices=True, layout="NCHW")
  onnx_indices = jaxup.indices_to_onnx(indices, (6, 4), dtype=jnp.int64, layout="NCHW")
  node = helper.make_node("MaxUnpool", ["X", "I", "S"], ["Y"], kernel_shape=[2, 2],
                          strides=[2, 2])
  graph = helper.make_graph(
      [node], "unpool", [helper.make_tensor_value_info("X", TensorProto.DOUBLE, None),
                         helper.make_tensor_value_info("I", TensorProto.INT64, None),
                         helper.make_tensor_value_info("S", TensorProto.INT64, None)],
      [helper.make_tensor_value_info("Y", TensorProto.DOUBLE, None)])
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
  expected = ReferenceEvaluator(model).run(None, {
      "X": np.asarray(values), "I": np.asarray(onnx_indices),
      "S": np.array([2, 3, 6, 4], np.int64)})[0]
  back = jaxup.indices_from_onnx(onnx_indices, (6, 4), layout="NCHW")
  out = jaxup.max_unpool(values, back, 2, layout="NCHW")
  np.testing.assert_array_equal(out, expected)


# Properties: adjoint, gradients, transformations, layouts.


@pytest.mark.parametrize("window,stride,padding", [(2, None, 0), (3, 2, 1), ((2, 3), (2, 3), 1)])
def test_adjoint_is_the_gather_at_the_indices(window, stride, padding):
  x = random((1, 7, 9, 2), seed=2)
  _, indices = jaxup.max_pool(x, window, stride=stride, padding=padding, return_indices=True)
  if stride is not None and stride != window:
    # Overlapping windows repeat indices; draw unique ones so that the transpose is the gather.
    rng = np.random.default_rng(0)
    size = int(np.prod(indices.shape[1:3]))
    unique = np.stack([rng.permutation(63)[:size] for _ in range(2)], axis=-1)
    indices = jnp.asarray(unique.reshape(indices.shape), jnp.int32)
  values = random(indices.shape, seed=3)
  up = jax.jit(lambda v: jaxup.max_unpool(v, indices, window, stride=stride, padding=padding,
                                           output_size=(7, 9)))
  gather = lambda y: _gather(y, indices)  # the named adjoint
  testing.assert_adjoint(up, gather, values)
  testing.assert_linear_transpose(up, gather, values)
  cotangent = random(x.shape, seed=4)
  grad = jax.grad(lambda v: jnp.vdot(up(v), cotangent))(values)
  np.testing.assert_allclose(grad, _gather(cotangent, indices), rtol=1e-12)


def test_check_grads():
  x = random((1, 4, 6, 1), seed=9)
  values, indices = jaxup.max_pool(x, 2, return_indices=True)
  for idx in (indices, (indices + 5) % 24):  # in their windows, and not
    fn = lambda v: jaxup.max_unpool(v, idx, 2)
    check_grads(fn, (values,), order=2, modes=("rev",))
    check_grads(fn, (values,), order=1, modes=("fwd",))


def test_duplicate_gradient_goes_to_the_winner_only():
  unpool = lambda v: jaxup.max_unpool(v, jnp.array([1, 1]), 2, stride=1, layout="W")
  grad = jax.grad(lambda v: unpool(v).sum())(jnp.array([1., 2.]))
  assert grad.tolist() == [0, 1]


@pytest.mark.parametrize("local", [True, False])
def test_jit_eager_vmap(local):
  x = random((3, 8, 6, 2), seed=5)
  values, indices = jaxup.max_pool(x, 2, return_indices=True)
  if not local:
    indices = (indices * 7 + 3) % 48
  fn = lambda pair: jaxup.max_unpool(pair[..., 0], pair[..., 1].astype(jnp.int32), 2)
  assert_jit_eager_vmap(fn, jnp.stack([values, indices.astype(values.dtype)], axis=-1))


def test_layouts_agree():
  x = random((2, 7, 6, 3), seed=6)
  kwargs = dict(window=(3, 2), stride=(2, 2), padding=(1, 0))
  values, indices = jaxup.max_pool(x, return_indices=True, **kwargs)
  reference = jaxup.max_unpool(values, indices, output_size=(7, 6), **kwargs)
  to_nchw = lambda a: jnp.transpose(a, (0, 3, 1, 2))
  nchw = jaxup.max_unpool(to_nchw(values), to_nchw(indices), output_size=(2, 3, 7, 6),
                          layout="NCHW", **kwargs)
  np.testing.assert_array_equal(jnp.transpose(nchw, (0, 2, 3, 1)), reference)
  unbatched = jax.vmap(functools.partial(jaxup.max_unpool, output_size=(7, 6), layout="HWC",
                                         **kwargs))(values, indices)
  np.testing.assert_array_equal(unbatched, reference)


def test_one_and_three_spatial_axes_and_empty_batch():
  for shape, window in (((2, 9, 3), 3), ((1, 4, 6, 4, 2), (2, 3, 2))):
    x = random(shape, seed=7)
    layout = "NWC" if x.ndim == 3 else None
    values, indices = jaxup.max_pool(x, window, return_indices=True, layout=layout)
    out = jaxup.max_unpool(values, indices, window, layout=layout)
    np.testing.assert_array_equal(jnp.where(out != 0, x, 0), out)
    assert jnp.sum(out != 0) == values.size
  empty = jaxup.max_unpool(jnp.zeros((0, 2, 2, 3)), jnp.zeros((0, 2, 2, 3), jnp.int32), 2)
  assert empty.shape == (0, 4, 4, 3)


def test_same_padding_with_output_size():
  x = random((1, 7, 1), seed=8)
  values, indices = jaxup.max_pool(x, 2, padding="SAME", return_indices=True, layout="NWC")
  out = jaxup.max_unpool(values, indices, 2, padding="SAME", output_size=(7,), layout="NWC")
  np.testing.assert_array_equal(
      out, jaxup.max_unpool(values, indices, 2, output_size=(7,), layout="NWC"))


# Errors and the API's shape.


@pytest.mark.parametrize("kwargs,error,match", [
    ({"window": 0}, ValueError, r"window must be a positive int, got 0"),
    ({"window": 2, "stride": 0}, ValueError, r"stride must be a positive int, got 0"),
    ({"window": 2, "output_size": (6, 4)}, ValueError,
     r"output_size=\(6, 4\) cannot be reached: spatial axis 0 must be strictly between 2 and 6"),
    ({"window": 2, "output_size": (1, 4, 4, 2)}, ValueError,
     r"output_size=\(1, 4, 4, 2\) has 2 on axis 3"),
    ({"window": 2, "output_size": (4,)}, ValueError, r"output_size must be .* got \(4,\) of length 1"),
    ({"window": 2, "padding": "SAME"}, ValueError, r"padding='SAME' depends on the size"),
    ({"window": 2, "padding": 3}, ValueError, r"padding=3 is larger than the unpadded output"),
    ({"window": 2, "layout": "NCW"}, ValueError, r"layout must have \d+ letters, .* got 'NCW'"),
])
def test_errors(kwargs, error, match):
  x = jnp.zeros((1, 2, 2, 1))
  with pytest.raises(error, match=match):
    jaxup.max_unpool(x, jnp.zeros(x.shape, jnp.int32), **kwargs)


def test_errors_on_indices():
  x = jnp.zeros((1, 2, 2, 1))
  with pytest.raises(ValueError, match=r"indices must have the shape of x \(1, 2, 2, 1\)"):
    jaxup.max_unpool(x, jnp.zeros((1, 2, 2), jnp.int32), 2)
  with pytest.raises(TypeError, match=r"indices must have an integer dtype, got dtype float32"):
    jaxup.max_unpool(x, jnp.zeros(x.shape, jnp.float32), 2)
  with pytest.raises(TypeError, match=r"x must have a real dtype \(floating point or integer\), got dtype bool"):
    jaxup.max_unpool(x.astype(bool), jnp.zeros(x.shape, jnp.int32), 2)


def test_signature_array_first_then_keyword_only():
  import inspect
  params = list(inspect.signature(jaxup.max_unpool).parameters.values())
  assert [p.name for p in params[:3]] == ["x", "indices", "window"]
  assert all(p.kind is p.KEYWORD_ONLY for p in params[3:])
  assert [p.name for p in params[3:]] == ["stride", "padding", "output_size", "layout"]


@pytest.mark.parametrize("window,stride", [(2, None), (3, 2)])
def test_no_decision_from_index_values(window, stride):
  # The path is chosen from the configuration: no cond (which vmap would turn into both
  # branches) and no reduction over the indices.
  x = jnp.zeros((2, 3, 3, 2))
  jaxpr = str(jax.make_jaxpr(lambda v, i: jaxup.max_unpool(v, i, window, stride=stride))(
      x, jnp.zeros(x.shape, jnp.int32)))
  assert "cond[" not in jaxpr and "reduce_and" not in jaxpr and "reduce_or" not in jaxpr
  assert ("scatter" in jaxpr) == (stride is not None)
