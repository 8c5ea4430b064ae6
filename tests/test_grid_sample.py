"""grid_sample and affine_grid: hand-computed values, PyTorch and ONNX parity (values and
gradients), the adjoint in x as an independently written splat, and the usual properties."""

import itertools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxup
from tests.helpers import assert_jit_eager_vmap, random

PADDINGS = ("zeros", "border", "reflection")


def sample_1d(values, points, **kwargs):
  """grid_sample of a 1-D signal [W] at normalised points [P]."""
  x = jnp.asarray(values, jnp.float64)[None, :, None]  # NWC
  grid = jnp.asarray(points, jnp.float64)[None, :, None]
  return np.asarray(jaxup.grid_sample(x, grid, **kwargs))[0, :, 0]


def test_hand_computed_1d():
  x = [1.0, 2.0, 3.0, 4.0]
  # align_corners=False: u = ((g + 1) * 4 - 1) / 2, so g = 0 -> 1.5, g = -1.5 -> -1.5,
  # g = -0.625 -> 0.25, g = -1.125 -> -0.75.
  pts = [0.0, -1.5, -0.625, -1.125]
  np.testing.assert_allclose(sample_1d(x, pts), [2.5, 0.0, 1.25, 0.25])
  np.testing.assert_allclose(sample_1d(x, pts, padding_mode="border"), [2.5, 1.0, 1.25, 1.0])
  # Reflection about -0.5: -1.5 -> 0.5, -0.75 -> -0.25 -> clamped to 0.
  np.testing.assert_allclose(sample_1d(x, pts, padding_mode="reflection"),
                             [2.5, 1.5, 1.25, 1.0])
  # Nearest rounds half to even: u = 1.5 -> 2, u = 0.5 -> 0, u = 2.5 -> 2.
  np.testing.assert_allclose(sample_1d(x, [0.0, -0.5, 0.5], mode="nearest"), [3.0, 1.0, 3.0])
  # align_corners=True: u = (g + 1) / 2 * 3; g = 1 -> the last sample.
  np.testing.assert_allclose(sample_1d(x, [1.0, -1.0, 0.0], align_corners=True), [4.0, 1.0, 2.5])
  # Bicubic, a = -0.75: at fraction t = 1/4 the taps -1, 0, 1, 2 weigh (Keys' kernel)
  # -0.10546875, 0.87890625, 0.26171875, -0.03515625; at t = 3/4 the same reversed.
  # align_corners=True on 6 samples: g = -0.1 -> u = 2.25, g = -0.3 -> u = 1.75.
  w = np.array([-0.10546875, 0.87890625, 0.26171875, -0.03515625])
  ramp = [0.0, 1.0, 4.0, 9.0, 16.0, 25.0]
  np.testing.assert_allclose(
      sample_1d(ramp, [-0.1, -0.3], mode="bicubic", align_corners=True),
      [w @ [1.0, 4.0, 9.0, 16.0], w[::-1] @ [0.0, 1.0, 4.0, 9.0]], rtol=1e-12)


def torch_case(nd, seed):
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((2, 2, 4, 5) if nd == 2 else (1, 2, 3, 4, 3))
  grid = rng.uniform(-1.5, 1.5, (2, 3, 4, 2) if nd == 2 else (1, 2, 3, 2, 3))
  return x, grid


@pytest.mark.parametrize("nd", [2, 3])
def test_torch_parity_values_and_gradients(nd):
  torch = pytest.importorskip("torch")
  x, grid = torch_case(nd, nd)
  layout = "NCHW" if nd == 2 else "NCDHW"
  modes = ("bilinear", "nearest", "bicubic") if nd == 2 else ("bilinear", "nearest")
  cot = random((x.shape[0], x.shape[1], *grid.shape[1:-1]), seed=7)
  for mode, padding_mode, align_corners in itertools.product(modes, PADDINGS, (False, True)):
    opts = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(grid, requires_grad=True)
    yt = torch.nn.functional.grid_sample(xt, gt, **opts)
    fn = lambda a, g: jaxup.grid_sample(a, g, layout=layout, **opts)
    # Values for every combination; gradients (both inputs) for every mode and padding, with
    # align_corners alternating, to keep the number of compilations down.
    if align_corners != (padding_mode == "border"):
      np.testing.assert_allclose(fn(x, grid), yt.detach().numpy(), rtol=1e-12, atol=1e-12,
                                 err_msg=str(opts))
      continue
    yt.backward(torch.from_numpy(np.array(cot)))
    y, vjp = jax.vjp(fn, x, grid)
    dx, dgrid = vjp(cot)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=str(opts))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=str(opts))
    np.testing.assert_allclose(dgrid, gt.grad.numpy(), rtol=1e-9, atol=1e-9, err_msg=str(opts))


def onnx_grid_sample(x, grid, opset, **attrs):
  helper = pytest.importorskip("onnx.helper")
  reference = pytest.importorskip("onnx.reference")
  from onnx import TensorProto

  node = helper.make_node("GridSample", ["X", "G"], ["Y"], **attrs)
  info = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
  graph = helper.make_graph([node], "g", [info("X"), info("G")], [info("Y")])
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
  return reference.ReferenceEvaluator(model).run(None, {"X": x, "G": grid})[0]


def test_onnx_reference_parity():
  pytest.importorskip("onnx")
  rng = np.random.default_rng(3)
  # The reference implements opset 20's mode names ("linear", "cubic"); opset 16's
  # "bilinear" and "bicubic" are the same modes under jaxup's default names.
  for nd, opset, names in [(2, 20, ("linear", "nearest", "cubic")),
                           (3, 20, ("linear", "nearest", "cubic"))]:
    x = rng.standard_normal((1, 1, 4, 5) if nd == 2 else (1, 1, 3, 4, 3)).astype(np.float32)
    grid = rng.uniform(-1.6, 1.6, (1, 2, 4, 2) if nd == 2 else (1, 2, 2, 2, 3))
    grid = grid.astype(np.float32)
    for mode, padding_mode, align_corners in itertools.product(names, PADDINGS, (0, 1)):
      expected = onnx_grid_sample(x, grid, opset, mode=mode, padding_mode=padding_mode,
                                  align_corners=align_corners)
      y = jaxup.grid_sample(x, grid, mode=mode, padding_mode=padding_mode,
                            align_corners=bool(align_corners), convention="onnx",
                            layout="NCHW" if nd == 2 else "NCDHW")
      np.testing.assert_allclose(y, expected, rtol=2e-6, atol=2e-6,
                                 err_msg=str((nd, opset, mode, padding_mode, align_corners)))


def splat(y, grid, size, padding_mode, align_corners):
  """The scatter-add of bilinear PyTorch weights, [N, Ho, Wo, C] onto [N, H, W, C]."""
  h, w = size
  out = np.zeros((y.shape[0], h, w, y.shape[-1]))

  def source(g, s):
    u = (g + 1) / 2 * (s - 1) if align_corners else ((g + 1) * s - 1) / 2
    if padding_mode == "reflection":
      lo, hi = (0.0, s - 1.0) if align_corners else (-0.5, s - 0.5)
      while u < lo or u > hi:  # fold at the borders until inside
        u = 2 * lo - u if u < lo else 2 * hi - u
    if padding_mode != "zeros":
      u = min(max(u, 0.0), s - 1.0)
    return u

  for b, i, j in itertools.product(range(y.shape[0]), *map(range, grid.shape[1:3])):
    ux, uy = source(grid[b, i, j, 0], w), source(grid[b, i, j, 1], h)
    x0, y0 = int(np.floor(ux)), int(np.floor(uy))
    for yy, xx in itertools.product((y0, y0 + 1), (x0, x0 + 1)):
      if 0 <= yy < h and 0 <= xx < w:
        out[b, yy, xx] += (1 - abs(ux - xx)) * (1 - abs(uy - yy)) * y[b, i, j]
  return out


def test_adjoint_in_x_is_the_bilinear_splat():
  x = random((2, 3, 4, 2))
  grid = np.random.default_rng(4).uniform(-1.7, 1.7, (2, 5, 3, 2))
  y = random((2, 5, 3, 2), seed=5)
  for padding_mode, align_corners in itertools.product(PADDINGS, (False, True)):
    up = lambda v: jaxup.grid_sample(v, grid, padding_mode=padding_mode,
                                     align_corners=align_corners)
    down = splat(np.asarray(y), grid, (3, 4), padding_mode, align_corners)
    np.testing.assert_allclose(jnp.vdot(up(x), y), jnp.vdot(x, down), rtol=1e-10)
    (transposed,) = jax.linear_transpose(up, x)(y)
    np.testing.assert_allclose(transposed, down, rtol=1e-10, atol=1e-10)


def test_grads_jit_vmap():
  x = random((2, 3, 4, 2))
  grid = jnp.asarray(np.random.default_rng(6).uniform(-1.2, 1.2, (2, 2, 3, 2)))
  for mode in ("bilinear", "bicubic"):
    check_grads(lambda a, g: jaxup.grid_sample(a, g, mode=mode, padding_mode="reflection"),
                (x, grid), order=1, modes=("fwd", "rev"), eps=1e-6)
  dgrid = jax.grad(lambda g: jnp.sum(jaxup.grid_sample(x, g, mode="nearest") ** 2))(grid)
  np.testing.assert_array_equal(dgrid, 0.0)
  fixed = lambda v: jaxup.grid_sample(v, jnp.broadcast_to(grid[:1], (v.shape[0], 2, 3, 2)),
                                     mode="bicubic")
  assert_jit_eager_vmap(fixed, x)
  # vmap over both x and the grid equals the batched call.
  batched = jaxup.grid_sample(x, grid)
  mapped = jax.vmap(lambda a, g: jaxup.grid_sample(a, g, layout="HWC"))(x, grid)
  np.testing.assert_allclose(mapped, batched, rtol=1e-12, atol=1e-12)


def test_layouts_and_dtypes():
  x = random((2, 3, 4, 2))
  grid = jnp.asarray(np.random.default_rng(8).uniform(-1.2, 1.2, (2, 5, 3, 2)))
  expected = np.asarray(jaxup.grid_sample(x, grid, mode="bicubic"))
  y = jaxup.grid_sample(jnp.transpose(x, (0, 3, 1, 2)), grid, mode="bicubic", layout="NCHW")
  np.testing.assert_allclose(y, expected.transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-12)
  y = jaxup.grid_sample(x[1, ..., 0], grid[1], mode="bicubic", layout="HW")
  np.testing.assert_allclose(y, expected[1, ..., 0], rtol=1e-12, atol=1e-12)
  y = jaxup.grid_sample(x.astype(jnp.float32), grid.astype(jnp.float32), mode="bicubic")
  assert y.dtype == jnp.float32
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
  # Zero-size batch, output or channels give empty results of the right shape.
  assert jaxup.grid_sample(x[:0], grid[:0]).shape == (0, 5, 3, 2)
  assert jaxup.grid_sample(x, grid[:, :0]).shape == (2, 0, 3, 2)
  assert jaxup.grid_sample(x[..., :0], grid).shape == (2, 5, 3, 0)
  # 1-D: PyTorch has none; it is the 2-D sample of a one-row image at y = 0 with H = 1.
  row = x[:, :1]
  g1 = grid[:, :1, :, :1]
  y1 = jaxup.grid_sample(row[:, 0], g1[:, 0], mode="bicubic", align_corners=True)
  g2 = jnp.concatenate([g1, jnp.zeros_like(g1)], axis=-1)
  y2 = jaxup.grid_sample(row, g2, mode="bicubic", align_corners=True)
  np.testing.assert_allclose(y1, y2[:, 0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_matches_torch(align_corners):
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(9)
  for size in [(2, 3, 4, 5), (2, 1, 3, 1, 4), (2, 1, 1, 3)]:
    n = len(size) - 2
    theta = rng.standard_normal((2, n, n + 1))
    with warnings.catch_warnings():  # PyTorch warns about unit sizes with align_corners
      warnings.simplefilter("ignore", UserWarning)
      expected = torch.nn.functional.affine_grid(torch.from_numpy(theta), list(size),
                                                 align_corners=align_corners).numpy()
    np.testing.assert_allclose(jaxup.affine_grid(theta, size, align_corners=align_corners),
                               expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jaxup.affine_grid(theta, size[2:], align_corners=align_corners),
                               expected, rtol=1e-12, atol=1e-12)
  # The identity grid samples the input back exactly (a spatial transformer at rest).
  x = random((1, 3, 4, 2))
  identity = jnp.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
  grid = jaxup.affine_grid(identity, (3, 4), align_corners=align_corners)
  np.testing.assert_allclose(jaxup.grid_sample(x, grid, align_corners=align_corners), x,
                             rtol=1e-12, atol=1e-12)


def test_errors():
  x = jnp.zeros((1, 4, 4, 2))
  with pytest.raises(ValueError, match=r"grid must have shape \[1, \*, \*, 2\]"):
    jaxup.grid_sample(x, jnp.zeros((1, 3, 3, 3)))
  with pytest.raises(ValueError, match=r"grid must have shape"):
    jaxup.grid_sample(x, jnp.zeros((2, 3, 3, 2)))
  with pytest.raises(ValueError, match="mode must be one of 'bilinear', 'nearest', 'bicubic'"):
    jaxup.grid_sample(x, jnp.zeros((1, 3, 3, 2)), mode="area")
  with pytest.raises(ValueError, match="padding_mode must be one of 'zeros', 'border'"):
    jaxup.grid_sample(x, jnp.zeros((1, 3, 3, 2)), padding_mode="wrap")
  with pytest.raises(TypeError, match="align_corners must be a bool"):
    jaxup.grid_sample(x, jnp.zeros((1, 3, 3, 2)), align_corners=0)
  with pytest.raises(TypeError, match="grid must have a floating-point dtype"):
    jaxup.grid_sample(x, jnp.zeros((1, 3, 3, 2), jnp.int32))
  with pytest.raises(ValueError, match=r"theta must have shape \[N, 2, 3\]"):
    jaxup.affine_grid(jnp.zeros((1, 3, 4)), (4, 4))
  with pytest.raises(ValueError, match=r"theta must have shape \[2, 2, 3\]"):
    jaxup.affine_grid(jnp.zeros((1, 2, 3)), (2, 1, 4, 4))
  with pytest.raises(ValueError, match="size must be a positive int, got 0"):
    jaxup.affine_grid(jnp.zeros((1, 2, 3)), (0, 4))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_reflection_folds_in_float32(dtype):
  # u = (3 + 1) / 2 * 11 = 22 reflects about 0 and 11 to 0; folded in float16 it read x[11].
  x = jnp.arange(12.0, dtype=dtype).reshape(1, 1, 12, 1)
  grid = jnp.array([[[[0.0, 3.0]]]], dtype)
  y = jaxup.grid_sample(x, grid, padding_mode="reflection", align_corners=True, layout="NCHW")
  assert y.dtype == dtype
  assert float(y[0, 0, 0, 0]) == 0.0
  torch = pytest.importorskip("torch")
  expected = torch.nn.functional.grid_sample(
      torch.arange(12.0).reshape(1, 1, 12, 1).half(), torch.tensor([[[[0.0, 3.0]]]]).half(),
      padding_mode="reflection", align_corners=True)
  assert float(expected) == 0.0


@pytest.mark.parametrize("align_corners", [False, True])
def test_nan_coordinate_reads_zero_padding_in_nearest(align_corners):
  x = jnp.arange(1.0, 5.0).reshape(1, 2, 2, 1)
  for point in ([jnp.nan, 0.0], [0.0, jnp.nan]):
    y = jaxup.grid_sample(x, jnp.array([[[point]]]), mode="nearest",
                          align_corners=align_corners)
    assert float(y[0, 0, 0, 0]) == 0.0
  # border and reflection clamp a NaN coordinate to 0, as PyTorch's CPU kernels do.
  y = jaxup.grid_sample(x, jnp.array([[[[jnp.nan, -1.0]]]]), padding_mode="border",
                        align_corners=True)
  assert float(y[0, 0, 0, 0]) == 1.0


def test_nan_coordinates_match_torch():
  torch = pytest.importorskip("torch")
  x = np.arange(1.0, 13.0).reshape(1, 1, 3, 4)
  for point in ([np.nan, 0.0], [0.25, np.nan], [np.nan, np.nan]):
    grid = np.array([[[point]]])
    for mode, padding, align in itertools.product(("nearest", "bilinear", "bicubic"), PADDINGS,
                                                  (False, True)):
      expected = torch.nn.functional.grid_sample(
          torch.tensor(x), torch.tensor(grid), mode=mode, padding_mode=padding,
          align_corners=align).numpy()
      got = jaxup.grid_sample(jnp.asarray(x), jnp.asarray(grid), mode=mode,
                              padding_mode=padding, align_corners=align, layout="NCHW")
      np.testing.assert_allclose(np.asarray(got), expected, err_msg=f"{point} {mode} {padding}")
