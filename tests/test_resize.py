"""Tests of jaxup.resize: hand tables, PyTorch and jax.image parity, properties, errors."""

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxup
from jaxup._src import resize as resize_module
from jaxup import testing
from tests.helpers import assert_jit_eager_vmap, random

resize = jaxup.resize


@functools.lru_cache(maxsize=None)
def _jitted(**options):
  return jax.jit(functools.partial(resize, **options))


def _run(x, **options):
  """``resize`` under a cached jit (tuples of options are hashable)."""
  return np.asarray(_jitted(**options)(x))


def _line(values, out=None, method="linear", **options):
  """Resizes a 1-D list of values laid out as ``W`` (linearly unless told) into a list."""
  x = jnp.asarray(values, jnp.float64)
  return _run(x, size=out, layout="W", method=method, **options).tolist()


# Hand-computed tables -----------------------------------------------------------------------


def test_worked_bilinear_table_integer_and_float():
  image = jnp.array([[10, 20], [30, 40]], jnp.int32)
  expected = [[10, 12, 17, 20], [15, 17, 22, 25], [25, 27, 32, 35], [30, 32, 37, 40]]
  got = resize(image, 4, method="linear", layout="HW")
  assert got.dtype == jnp.int32
  assert got.tolist() == expected
  got = resize(image.astype(jnp.float32), 4, method="linear", layout="HW")
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, [[10, 12.5, 17.5, 20], [15, 17.5, 22.5, 25],
                                   [25, 27.5, 32.5, 35], [30, 32.5, 37.5, 40]])


@pytest.mark.parametrize("mode, expected", [
    # half_pixel, 4 -> 6: x = (y + 0.5) * 2/3 - 0.5 = -1/6, 1/2, 7/6, 11/6, 5/2, 19/6.
    ("round_prefer_floor", [0, 0, 1, 2, 2, 3]),
    ("round_prefer_ceil", [0, 1, 1, 2, 3, 3]),
    ("floor", [0, 0, 1, 1, 2, 3]),
    ("ceil", [0, 1, 2, 2, 3, 3]),
])
def test_nearest_modes_half_pixel(mode, expected):
  got = _line([0, 1, 2, 3], 6, method="nearest", coordinate_transformation_mode="half_pixel",
              nearest_mode=mode)
  assert got == expected


def test_nearest_coordinate_conventions():
  values = [0, 1, 2, 3, 4]
  # PyTorch nearest: asymmetric + floor, x = y * 5/3 = 0, 5/3, 10/3.
  assert _line(values, 3, method="nearest") == [0, 1, 3]
  # PyTorch nearest-exact: floor((y + 0.5) * 5/3) = floor(5/6), floor(5/2), floor(25/6).
  assert _line(values, 3, method="nearest-exact") == [0, 2, 4]
  # align_corners: x = y * 4/2 = 0, 2, 4 (ONNX; PyTorch has no nearest align_corners).
  assert _line(values, 3, method="nearest",
               coordinate_transformation_mode="align_corners") == [0, 2, 4]
  # pytorch_half_pixel with one output reads x = 0; half_pixel reads the centre, 2.
  assert _line(values, 1, method="nearest",
               coordinate_transformation_mode="pytorch_half_pixel") == [0]
  assert _line(values, 1, method="nearest",
               coordinate_transformation_mode="half_pixel") == [2]
  # A scale drives the map: 5 * 1.5 -> 7, x = floor(y / 1.5) = 0 0 1 2 2 3 4.
  assert _line(values, scale=1.5, method="nearest") == [0, 0, 1, 2, 2, 3, 4]
  # Recomputing the scale changes nothing for 2.9 (14 outputs) but does for 2.3 (11 outputs).
  assert _line(values, scale=2.9, method="nearest") == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4]
  assert _line(values, scale=2.9, method="nearest",
               recompute_scale=True) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4]
  assert _line(values, scale=2.3, method="nearest") == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 4]
  assert _line(values, scale=2.3, method="nearest",
               recompute_scale=True) == [0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_half_pixel_symmetric_table():
  # ONNX half_pixel_symmetric with scale 1.5 on 3 pixels: output width 4.5, int 4, so the
  # offset is 1.5 * (1 - 4/4.5) = 1/6 and x = 1/6 + (y + 0.5)/1.5 - 0.5 = 0, 2/3, 4/3, 2.
  values = [0.0, 3.0, 6.0]
  np.testing.assert_allclose(
      _line(values, scale=1.5, coordinate_transformation_mode="half_pixel_symmetric"),
      [0.0, 2.0, 4.0, 6.0])
  # half_pixel on the same: x = -1/6, 1/2, 7/6, 11/6 (clamped at the border).
  np.testing.assert_allclose(
      _line(values, scale=1.5, coordinate_transformation_mode="half_pixel"),
      [0.0, 1.5, 3.5, 5.5])
  # With a size instead of a scale the two conventions coincide.
  np.testing.assert_allclose(
      _line(values, 4, coordinate_transformation_mode="half_pixel_symmetric"),
      _line(values, 4, coordinate_transformation_mode="half_pixel"))


def test_linear_conventions_table():
  values = [0.0, 1.0, 4.0, 9.0]
  # align_corners 4 -> 3: x = 0, 1.5, 3.
  np.testing.assert_allclose(_line(values, 3, align_corners=True), [0.0, 2.5, 9.0])
  # asymmetric 4 -> 8: x = y / 2.
  np.testing.assert_allclose(
      _line(values, 8, coordinate_transformation_mode="asymmetric"),
      [0.0, 0.5, 1.0, 2.5, 4.0, 6.5, 9.0, 9.0])
  # pytorch_half_pixel with one output reads x = 0; half_pixel the centre 1.5.
  assert _line(values, 1, coordinate_transformation_mode="pytorch_half_pixel") == [0.0]
  assert _line(values, 1) == [2.5]


def test_cubic_coefficients_and_exclude_outside_table():
  values = [1.0, 2.0, 4.0, 8.0]
  # 4 -> 8 half-pixel, output 0 sits at x = -0.25: taps -2..1 at distances 1.75, 0.75, 0.25,
  # 1.25. Keys' kernel, a = -0.75: k(1.75) = -0.03515625, k(0.75) = 0.26171875,
  # k(0.25) = 0.87890625, k(1.25) = -0.10546875 (they sum to 1). Border taps read x[0].
  k = [-0.03515625, 0.26171875, 0.87890625, -0.10546875]
  edge = (k[0] + k[1] + k[2]) * 1.0 + k[3] * 2.0
  assert _line(values, 8, method="cubic")[0] == pytest.approx(edge, abs=1e-12)
  # exclude_outside: the two taps left of the input get weight 0; renormalise the others.
  excluded = (k[2] * 1.0 + k[3] * 2.0) / (k[2] + k[3])
  assert _line(values, 8, method="cubic", exclude_outside=True)[0] == pytest.approx(
      excluded, abs=1e-12)
  # a = -0.5 (Keys): k(1.75) = -0.0234375, k(0.75) = 0.2265625, k(0.25) = 0.8671875,
  # k(1.25) = -0.0703125.
  k = [-0.0234375, 0.2265625, 0.8671875, -0.0703125]
  edge = (k[0] + k[1] + k[2]) * 1.0 + k[3] * 2.0
  assert _line(values, 8, method="cubic", cubic_coeff_a=-0.5)[0] == pytest.approx(edge,
                                                                                  abs=1e-12)


def test_antialias_table():
  values = [1.0, 2.0, 4.0, 8.0]
  # 4 -> 2, x0 = 0.5, triangle stretched by 2: taps -1..2 weigh 0.25, 0.75, 0.75, 0.25 / 2.
  border = (0.125 + 0.375) * 1.0 + 0.375 * 2.0 + 0.125 * 4.0
  excluded = (0.75 * 1.0 + 0.75 * 2.0 + 0.25 * 4.0) / 1.75
  assert _line(values, 2, antialias=True)[0] == pytest.approx(border, abs=1e-12)
  assert _line(values, 2, antialias=True, exclude_outside=True)[0] == pytest.approx(
      excluded, abs=1e-12)
  # Without antialias the same output reads only x = 0.5: 1.5.
  assert _line(values, 2)[0] == pytest.approx(1.5)
  # Upsampling is unchanged by antialias.
  np.testing.assert_allclose(_line(values, 7, antialias=True), _line(values, 7))


def test_identity_and_size_one():
  x = random((2, 5, 3, 2))
  for method in ("nearest", "nearest-exact", "linear", "cubic"):
    np.testing.assert_array_equal(resize(x, (5, 3), method=method), x)
  # A single input pixel is replicated by every method.
  one = random((2, 1, 1, 3))
  for method in ("nearest", "linear", "cubic"):
    np.testing.assert_allclose(resize(one, (4, 3), method=method),
                               jnp.broadcast_to(one, (2, 4, 3, 3)), rtol=1e-12)


# Reference implementations ------------------------------------------------------------------

# PyTorch 2 departs from its scale rule in three kernels (see the docstring): linear modes and
# antialiasing copy an axis whose size does not change, and 2-D nearest treats an output of
# exactly twice the input as 2x. Its antialiasing kernel is also wrong for an input axis of
# size 1. Those configurations are compared with recompute_scale=True or skipped.


def _torch_deviation(method, nd, ins, outs, scale_given, antialias):
  if not scale_given:
    return False
  if method == "linear" or antialias:
    return any(i == o for i, o in zip(ins, outs))
  if method == "nearest" and nd == 2:
    return any(o in (i, 2 * i) for i, o in zip(ins, outs))
  return False


def _torch_grid(seed, count):
  rng = np.random.default_rng(seed)
  configs = []
  while len(configs) < count:
    nd = int(rng.integers(1, 4))
    method = ("nearest", "nearest-exact", "linear", "cubic")[rng.integers(4)]
    if method == "cubic":
      nd = 2  # PyTorch has bicubic only
    ins = tuple(int(v) for v in rng.integers(1, 8, nd))
    if len(configs) % 7 == 0:
      ins = (1,) + ins[1:]  # input size 1
    align = bool(rng.integers(2)) if method in ("linear", "cubic") else None
    antialias = (method in ("linear", "cubic") and nd == 2 and not align and
                 bool(rng.integers(2)) and min(ins) > 1)
    if rng.integers(2):
      scale = tuple(float(rng.choice([0.5, 2.0, 3.0, round(rng.uniform(0.3, 3.2), 2)]))
                    for _ in ins)
      outs = tuple(int(np.floor(i * s)) for i, s in zip(ins, scale))
      if min(outs) < 1:
        continue
      recompute = bool(rng.integers(2))
    else:
      scale, recompute = None, False
      outs = tuple(int(v) for v in rng.integers(1, 11, nd))
      if len(configs) % 5 == 0:
        outs = (1,) + outs[1:]  # output size 1
    if _torch_deviation(method, nd, ins, outs, scale is not None, antialias):
      recompute = True
    configs.append((method, ins, outs, scale, recompute, align, antialias))
  return configs


TORCH_CONFIGS = _torch_grid(seed=0, count=80)


def test_torch_parity_grid():
  torch = pytest.importorskip("torch")
  F = torch.nn.functional
  rng = np.random.default_rng(1)
  names = {"linear": ("linear", "bilinear", "trilinear"), "cubic": ("bicubic",) * 2}
  for method, ins, outs, scale, recompute, align, antialias in TORCH_CONFIGS:
    nd = len(ins)
    x = rng.standard_normal((2, 3) + ins)
    mode = names[method][nd - 1] if method in names else method
    options = dict(method=method, layout="NC" + "DHW"[3 - nd:])
    if align is not None:
      options["align_corners"] = align
    if antialias:
      options.update(antialias=True, exclude_outside=True)
      if method == "cubic":
        options["cubic_coeff_a"] = -0.5
    if scale is None:
      expected = F.interpolate(torch.from_numpy(x), size=outs, mode=mode, align_corners=align,
                               antialias=antialias)
      got = _run(x, size=outs, **options)
    else:
      expected = F.interpolate(torch.from_numpy(x), scale_factor=scale, mode=mode,
                               align_corners=align, antialias=antialias,
                               recompute_scale_factor=recompute)
      got = _run(x, scale=scale, recompute_scale=recompute, **options)
    config = (method, ins, outs, scale, recompute, align, antialias)
    assert got.shape == tuple(expected.shape), config
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-10, atol=1e-10,
                               err_msg=str(config))


def test_torch_grid_covers_the_cases():
  methods = {c[0] for c in TORCH_CONFIGS}
  assert methods == {"nearest", "nearest-exact", "linear", "cubic"}
  assert any(c[6] for c in TORCH_CONFIGS)  # antialias
  assert any(c[5] for c in TORCH_CONFIGS) and any(c[5] is False for c in TORCH_CONFIGS)
  assert any(c[3] is not None and c[4] for c in TORCH_CONFIGS)
  assert any(c[3] is not None and not c[4] for c in TORCH_CONFIGS)
  assert any(1 in c[1] for c in TORCH_CONFIGS) and any(1 in c[2] for c in TORCH_CONFIGS)
  assert any(any(o < i for i, o in zip(c[1], c[2])) for c in TORCH_CONFIGS)


def test_torch_scale_rule_departures_are_recompute():
  torch = pytest.importorskip("torch")
  F = torch.nn.functional
  x = np.arange(4.0) ** 2
  # A scale of 1.2 keeps 4 pixels; PyTorch's linear kernel copies them, the scale rule moves
  # them (the 1-D and 3-D nearest kernels of PyTorch follow the rule too).
  copied = F.interpolate(torch.from_numpy(x)[None, None], scale_factor=1.2, mode="linear")
  np.testing.assert_allclose(_line(x, scale=1.2, recompute_scale=True), copied.numpy().ravel())
  np.testing.assert_allclose(_line(x, scale=1.2), [0.0, 0.75, 2.75, 6.083333333333333])
  followed = F.interpolate(torch.from_numpy(x)[None, None], scale_factor=1.2, mode="nearest")
  np.testing.assert_allclose(_line(x, scale=1.2, method="nearest"), followed.numpy().ravel())


def _onnx_resize(x, *, sizes=None, scales=None, roi=None, **attributes):
  """The ONNX reference implementation (``onnx.reference``) of one Resize node, opset 19."""
  onnx = pytest.importorskip("onnx")
  from onnx import helper
  from onnx.reference import ReferenceEvaluator

  double, int64, double_t = onnx.TensorProto.DOUBLE, onnx.TensorProto.INT64, np.float64
  feeds = {"X": x}
  inputs = [helper.make_tensor_value_info("X", double, None)]
  names = []
  for name, value, kind, dtype in (("roi", roi, double, double_t),
                                   ("scales", scales, onnx.TensorProto.FLOAT, np.float32),
                                   ("sizes", sizes, int64, np.int64)):
    if value is None:
      names.append("")
    else:
      names.append(name)
      feeds[name] = np.asarray(value, dtype)
      inputs.append(helper.make_tensor_value_info(name, kind, None))
  node = helper.make_node("Resize", ["X"] + names, ["Y"], **attributes)
  graph = helper.make_graph([node], "resize", inputs,
                            [helper.make_tensor_value_info("Y", double, None)])
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
  return ReferenceEvaluator(model).run(None, feeds)[0]


ONNX_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
              "asymmetric", "tf_crop_and_resize")


def _onnx_grid(seed, count):
  """Random Resize nodes over every attribute, and the matching ``resize`` options.

  Scales are float32 values (as ONNX stores them) so that both sides map with the same number.
  ``pytorch_half_pixel`` keeps outputs of length 2 and more: for one output the reference reads
  -0.5 where the specification says 0 (the hand tables check the specification)."""
  rng = np.random.default_rng(seed)
  configs = []
  while len(configs) < count:
    nd = int(rng.integers(1, 4)) if len(configs) % 4 else 2
    letters = "DHW"[3 - nd:]
    ins = tuple(int(v) for v in rng.integers(1, 7 if nd < 3 else 4, nd))
    # Resize all spatial axes (no ONNX axes attribute), or a permuted subset of them.
    if rng.integers(3) == 0 and nd > 1:
      chosen = [int(i) for i in rng.permutation(nd)[:int(rng.integers(1, nd + 1))]]
    else:
      chosen = None
    picked = list(range(nd)) if chosen is None else chosen
    method = ("nearest", "linear", "cubic")[rng.integers(3)]
    coordinates = ONNX_MODES[rng.integers(len(ONNX_MODES))]
    attributes = dict(mode=method, coordinate_transformation_mode=coordinates)
    options = dict(method=method, coordinate_transformation_mode=coordinates,
                   layout="NC" + letters, axes="".join(letters[i] for i in picked))
    onnx_inputs = {}
    use_scales = bool(rng.integers(2))
    if use_scales:
      values = [float(np.float32(rng.choice([0.5, 0.6, 1.5, 2.0, 2.5, 0.75, 1.7, 3.0])))
                for _ in picked]
      if any(np.floor(ins[i] * v) < 1 for i, v in zip(picked, values)):
        continue
      options["scale"] = tuple(values)
      onnx_inputs["scales"] = values
    else:
      values = [int(rng.integers(1, 9)) for _ in picked]
      policy = ("stretch", "not_larger", "not_smaller")[rng.integers(3)]
      attributes["keep_aspect_ratio_policy"] = options["keep_aspect_ratio_policy"] = policy
      options["size"] = tuple(values)
      onnx_inputs["sizes"] = values
    if coordinates == "tf_crop_and_resize":
      starts = [round(float(rng.uniform(-0.3, 0.5)), 2) for _ in picked]
      ends = [round(float(rng.uniform(0.4, 1.3)), 2) for _ in picked]
      options["roi"] = tuple(starts + ends)
      value = float(rng.choice([0.0, 1.5, -2.0]))
      attributes["extrapolation_value"] = options["extrapolation_value"] = value
      onnx_inputs["roi"] = starts + ends
    if method == "nearest":
      attributes["nearest_mode"] = options["nearest_mode"] = (
          "round_prefer_floor", "round_prefer_ceil", "floor", "ceil")[rng.integers(4)]
    else:
      exclude, antialias = bool(rng.integers(2)), bool(rng.integers(2))
      attributes.update(exclude_outside=int(exclude), antialias=int(antialias))
      options.update(exclude_outside=exclude, antialias=antialias)
      if method == "cubic":
        # ONNX stores the attribute as float32.
        a = float(np.float32((-0.75, -0.5, -0.6)[rng.integers(3)]))
        attributes["cubic_coeff_a"] = options["cubic_coeff_a"] = a
    if chosen is None and attributes.get("keep_aspect_ratio_policy", "stretch") != "stretch":
      # Without the axes attribute the policy's common scale would include N and C.
      chosen = picked
    if chosen is None:
      # Without the axes attribute, ONNX's sizes, scales and roi cover N and C too.
      if "sizes" in onnx_inputs:
        onnx_inputs["sizes"] = [1, 2] + onnx_inputs["sizes"]
      if "scales" in onnx_inputs:
        onnx_inputs["scales"] = [1.0, 1.0] + onnx_inputs["scales"]
      if "roi" in onnx_inputs:
        k = len(picked)
        onnx_inputs["roi"] = [0, 0] + onnx_inputs["roi"][:k] + [1, 1] + onnx_inputs["roi"][k:]
    else:
      attributes["axes"] = [2 + i for i in chosen]
    # Output length 1 under pytorch_half_pixel: see the docstring.
    outs = _onnx_output_sizes(ins, picked, onnx_inputs, attributes)
    if coordinates == "pytorch_half_pixel" and min(outs) < 2:
      continue
    configs.append((ins, attributes, onnx_inputs, options))
  return configs


def _onnx_output_sizes(ins, picked, onnx_inputs, attributes):
  sizes = [ins[i] for i in picked]
  if "scales" in onnx_inputs:
    scales = onnx_inputs["scales"][-len(picked):]
    return [int(np.floor(n * np.float32(s))) for n, s in zip(sizes, scales)]
  wanted = onnx_inputs["sizes"][-len(picked):]
  policy = attributes.get("keep_aspect_ratio_policy", "stretch")
  if policy == "stretch":
    return wanted
  ratios = [w / n for w, n in zip(wanted, sizes)]
  common = min(ratios) if policy == "not_larger" else max(ratios)
  return [int(common * n + 0.5) for n in sizes]


ONNX_CONFIGS = _onnx_grid(seed=3, count=72)


def test_onnx_grid_covers_every_attribute():
  attributes = [c[1] for c in ONNX_CONFIGS]
  assert {a["coordinate_transformation_mode"] for a in attributes} == set(ONNX_MODES)
  assert {a["mode"] for a in attributes} == {"nearest", "linear", "cubic"}
  assert {a.get("keep_aspect_ratio_policy") for a in attributes} >= {
      "stretch", "not_larger", "not_smaller"}
  assert {a.get("nearest_mode") for a in attributes} >= {
      "round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}
  assert any(a.get("antialias") for a in attributes)
  assert any(a.get("exclude_outside") for a in attributes)
  assert any("axes" in a for a in attributes)
  assert any(a.get("extrapolation_value") for a in attributes)
  assert {a.get("cubic_coeff_a") for a in attributes} > {None}
  inputs = [c[2] for c in ONNX_CONFIGS]
  assert any("scales" in i for i in inputs) and any("sizes" in i for i in inputs)
  assert any("scales" in i and a["coordinate_transformation_mode"] == "align_corners"
             for i, a in zip(inputs, attributes))


def test_onnx_reference_parity():
  """Every Resize attribute against ONNX's reference implementation: coordinate modes (with
  scales, align_corners and tf_crop_and_resize divide by in * scale), nearest modes, cubic
  coefficient, exclude_outside, antialias, keep_aspect_ratio_policy, axes, roi and
  extrapolation_value."""
  pytest.importorskip("onnx")
  rng = np.random.default_rng(4)
  for ins, attributes, onnx_inputs, options in ONNX_CONFIGS:
    x = rng.standard_normal((1, 2) + ins)
    expected = _onnx_resize(x, **onnx_inputs, **attributes)
    got = _run(x, **options)
    # The reference evaluates cubic coefficients in float32.
    atol = 1e-5 if attributes["mode"] == "cubic" else 1e-12
    assert got.shape == expected.shape, (ins, attributes, onnx_inputs)
    np.testing.assert_allclose(got, expected, atol=atol,
                               err_msg=str((ins, attributes, onnx_inputs)))


def test_onnx_align_corners_with_scale_and_crop_tables():
  # ONNX align_corners with scale 1.5 on 3 pixels: L = 4.5, 4 outputs, x = y * 2 / 3.5.
  values = [0.0, 3.0, 6.0]
  np.testing.assert_allclose(
      _line(values, scale=1.5, coordinate_transformation_mode="align_corners"),
      [0.0, 3 * 2 / 3.5, 3 * 4 / 3.5, 3 * 6 / 3.5])
  # PyTorch's flag divides by the integer size: x = y * 2 / 3.
  np.testing.assert_allclose(_line(values, scale=1.5, align_corners=True), [0.0, 2.0, 4.0, 6.0])
  # tf_crop_and_resize, roi [0.25, 1.25] on 5 pixels (in - 1 = 4), 3 outputs:
  # x = 1 + y * 4 / 2 = 1, 3, 5; the last lies outside and takes the extrapolation value.
  line = [0.0, 10.0, 20.0, 30.0, 40.0]
  assert _line(line, 3, coordinate_transformation_mode="tf_crop_and_resize",
               roi=(0.25, 1.25), extrapolation_value=-1.0) == [10.0, 30.0, -1.0]
  # One output reads the roi's centre, (0.25 + 1.25) / 2 * 4 = 3.
  assert _line(line, 1, coordinate_transformation_mode="tf_crop_and_resize",
               roi=(0.25, 1.25)) == [30.0]
  # keep_aspect_ratio_policy: sizes (6, 2) for 4 x 4 -> scale 0.5 (not_larger) or 1.5.
  x = jnp.zeros((1, 4, 4, 1))
  assert resize(x, (6, 2), method="linear", keep_aspect_ratio_policy="not_larger").shape == (
      1, 2, 2, 1)
  assert resize(x, (6, 2), method="linear", keep_aspect_ratio_policy="not_smaller").shape == (
      1, 6, 6, 1)
  # Halves round up: 3 * 0.5 = 1.5 -> 2 (sizes (1, 5) for 2 x 3 -> scale 0.5 under not_larger).
  assert resize(jnp.zeros((2, 3)), (1, 5), method="nearest", layout="HW",
                keep_aspect_ratio_policy="not_larger").shape == (1, 2)


def test_pytorch_antialias_with_align_corners():
  """PyTorch's antialiased bilinear and bicubic with align_corners=True. PyTorch gives every
  row the first row's value when one axis shrinks to a single output and the other is resized
  (its separable passes disagree there), so those shapes are left out."""
  torch = pytest.importorskip("torch")
  F = torch.nn.functional
  rng = np.random.default_rng(5)
  cases = [((7, 9), (3, 4), None), ((5, 6), (9, 11), None), ((8, 3), (1, 5), None),
           ((4, 10), (4, 2), None), ((6, 5), None, (0.6, 1.7)), ((9, 4), None, (0.45, 0.5)),
           ((2, 2), (1, 1), None)]
  for ins, outs, scale in cases:
    x = rng.standard_normal((1, 2) + ins)
    for mode, options in (("bilinear", dict(method="linear")),
                          ("bicubic", dict(method="cubic", cubic_coeff_a=-0.5))):
      expected = F.interpolate(torch.from_numpy(x), size=outs, scale_factor=scale, mode=mode,
                               align_corners=True, antialias=True).numpy()
      got = _run(x, size=outs, scale=scale, align_corners=True, antialias=True,
                 exclude_outside=True, layout="NCHW", **options)
      np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10,
                                 err_msg=str((ins, outs, scale, mode)))
  # Downsampling 7 -> 3 with align_corners: r = 3, output 1 centred at 1.5 * 3 - 0.5 = 4 with
  # the triangle stretched to radius 3: inputs 2..6 weigh 1/3, 2/3, 1, 2/3, 1/3 (sum 3).
  line = np.arange(7.0) ** 2
  got = _line(line, 3, align_corners=True, antialias=True, exclude_outside=True)
  assert got[1] == pytest.approx((4 / 3 + 9 * 2 / 3 + 16 + 25 * 2 / 3 + 36 / 3) / 3, abs=1e-12)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _image_resize(x, shape, method, antialias):
  return jax.image.resize(x, shape, method, antialias=antialias)


@pytest.mark.parametrize("method", ["nearest", "linear", "cubic"])
def test_jax_image_parity(method):
  options = {
      "nearest": dict(method="nearest-exact"),
      "linear": dict(method="linear", exclude_outside=True),
      "cubic": dict(method="cubic", cubic_coeff_a=-0.5, exclude_outside=True),
  }[method]
  rng = np.random.default_rng(2)
  for shape, out in [((2, 5, 7, 3), (9, 4)), ((1, 8, 6, 2), (3, 12)), ((2, 1, 4, 2), (3, 1)),
                     ((3, 7, 2), (16,))]:
    x = jnp.asarray(rng.standard_normal(shape))
    antialiases = (False,) if method == "nearest" else (False, True)
    for antialias in antialiases:
      expected = _image_resize(x, shape[:1] + out + shape[-1:], method, antialias)
      extra = {} if method == "nearest" else {"antialias": antialias}
      got = _run(x, size=out, **options, **extra)
      np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


# Properties ---------------------------------------------------------------------------------

LINEAR_CASES = [
    dict(size=(8, 6), method="linear"),
    dict(size=(5, 7), method="linear"),
    dict(size=(2, 3), method="linear", antialias=True),
    dict(size=(7, 5), method="cubic"),
    dict(size=(3, 2), method="cubic", antialias=True, exclude_outside=True),
    dict(size=(7, 5), method="linear", align_corners=True),
    dict(scale=(1.7, 2.0), method="nearest"),
]


def _interpolation_matrix(n, m, *, method="linear", align_corners=False, antialias=False,
                          exclude_outside=False, scale=None, a=-0.75):
  """The dense ``[m, n]`` matrix of 1-D interpolation from ``n`` to ``m`` samples, written from
  the definitions (not from resize's taps): row ``i`` weighs input ``j`` by ``K((j - x_i) f)``,
  ``x_i`` the half-pixel (or align-corners) source coordinate, ``f = min(scale, 1)`` when
  antialiasing; an index outside ``[0, n)`` adds its weight to the nearest edge, or is dropped
  with ``exclude_outside``. ``nearest`` is PyTorch's: input ``floor(i / scale)``."""
  s = m / n if scale is None else scale
  matrix = np.zeros((m, n))
  for i in range(m):
    if method == "nearest":
      matrix[i, min(int(np.floor(i / s)), n - 1)] = 1.0
      continue
    if align_corners:
      x = i * (n - 1) / (m - 1) if m > 1 else 0.0
    else:
      x = (i + 0.5) / s - 0.5
    f = min(s, 1.0) if antialias else 1.0
    reach = (1 if method == "linear" else 2) / f
    for j in range(int(np.floor(x - reach)), int(np.ceil(x + reach)) + 1):
      d = abs(j - x) * f
      if method == "linear":
        w = max(0.0, 1.0 - d)
      else:  # Keys' cubic convolution kernel
        w = ((a + 2) * d - (a + 3)) * d * d + 1 if d <= 1 else (
            ((a * d - 5 * a) * d + 8 * a) * d - 4 * a if d < 2 else 0.0)
      if not 0 <= j < n:
        if exclude_outside:
          continue
        j = min(max(j, 0), n - 1)
      matrix[i, j] += w
    if antialias or exclude_outside:
      matrix[i] /= matrix[i].sum()
  return matrix


def test_interpolation_matrix_by_hand():
  # Half-pixel linear 2 -> 4: the worked example's bilinear weights; its transpose, the adjoint, is the
  # triangle filter [1/4, 3/4, 3/4, 1/4] at stride 2 with the edges folded in.
  np.testing.assert_allclose(_interpolation_matrix(2, 4),
                             [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
  np.testing.assert_allclose(_interpolation_matrix(3, 5, align_corners=True)[1], [0.5, 0.5, 0])


def _separable(options, in_sizes):
  """resize's options as per-axis interpolation matrices of an NHWC array."""
  method = {"nearest": "nearest", "cubic": "cubic"}.get(options.get("method"), "linear")
  if "size" in options:
    outs, scales = options["size"], (None, None)
  else:
    scales = options["scale"]
    outs = tuple(int(np.floor(n * s)) for n, s in zip(in_sizes, scales))
  return [_interpolation_matrix(
      n, m, method=method, align_corners=options.get("align_corners", False),
      antialias=options.get("antialias", False),
      exclude_outside=options.get("exclude_outside", False), scale=s)
      for n, m, s in zip(in_sizes, outs, scales)]


def _triangle_filter_down(options, in_sizes):
  """The named adjoint of resize: each axis' interpolation matrix, transposed."""
  mh, mw = _separable(options, in_sizes)
  return lambda y: jnp.einsum("ih,jw,nijc->nhwc", mh, mw, y)


@pytest.mark.parametrize("options", LINEAR_CASES)
def test_adjoint_is_the_transposed_interpolation_matrix(options):
  x = random((2, 4, 3, 2))
  up = jax.jit(lambda v: resize(v, **options))
  mh, mw = _separable(options, (4, 3))
  # resize is the independent matrix, and its adjoint that matrix's transpose.
  np.testing.assert_allclose(up(x), jnp.einsum("ih,jw,nhwc->nijc", mh, mw, x),
                             rtol=1e-12, atol=1e-12)
  down = _triangle_filter_down(options, (4, 3))
  testing.assert_adjoint(up, down, x)
  testing.assert_linear_transpose(up, down, x)


def test_linear_at_an_integer_factor_is_adjoint_to_a_triangle_filter():
  """2x half-pixel bilinear upsampling against its adjoint written out as a filter: each input
  sample collects the output samples 3/4 and 1/4 of a pixel away, weights 3/4 and 1/4."""
  def triangle_down(y):  # along the W axis of a [N, 2W, C] array
    # Output 2k reads inputs k-1, k (weights 1/4, 3/4); output 2k+1 reads k, k+1 (3/4, 1/4).
    # The taps -1 and W are clamped onto the edges: repeating y's end samples folds them back.
    y = np.asarray(y)
    padded = np.concatenate([y[:, :1], y, y[:, -1:]], axis=1)
    return (0.75 * (padded[:, 1:-1:2] + padded[:, 2:-1:2])
            + 0.25 * (padded[:, 0:-2:2] + padded[:, 3::2]))
  x = random((2, 5, 3))
  up = lambda v: resize(v, 10, method="linear", layout="NWC")
  testing.assert_adjoint(up, lambda y: jnp.asarray(triangle_down(y)), x)


@pytest.mark.parametrize("options, modes", [(LINEAR_CASES[0], ("fwd", "rev")),
                                             (LINEAR_CASES[4], ("rev",))])
def test_check_grads(options, modes):
  x = random((1, 4, 3, 1))
  check_grads(jax.jit(lambda v: resize(v, **options)), (x,), order=2, modes=modes)


@pytest.mark.parametrize("options", [LINEAR_CASES[0], LINEAR_CASES[3]])
def test_jit_eager_vmap(options):
  assert_jit_eager_vmap(lambda v: resize(v, **options), random((3, 4, 3, 2)))


def test_temp_memory_at_most_output():
  """XLA needs no scratch array larger than the output (it fuses the per-axis gathers)."""
  x = jax.ShapeDtypeStruct((2, 30, 20, 4), jnp.float32)
  for options in (dict(size=(60, 40), method="linear"),
                  dict(size=(47, 31), method="linear", align_corners=True),
                  dict(size=(10, 9), method="linear", antialias=True),
                  dict(size=(61, 43), method="cubic")):
    compiled = jax.jit(lambda v: resize(v, **options)).lower(x).compile()
    memory = compiled.memory_analysis()
    if memory is not None:
      assert memory.temp_size_in_bytes <= memory.output_size_in_bytes, options


def test_wide_antialias_filter_loop(monkeypatch):
  """Filters wider than the unrolled limit loop over their taps, with the same result."""
  x = random((2, 40, 36, 2))
  options = dict(size=(3, 2), antialias=True, method="cubic", exclude_outside=True)
  looped = jax.jit(lambda v: resize(v, **options))
  assert "while" in looped.lower(x).as_text()
  testing.assert_adjoint(looped, _triangle_filter_down(options, (40, 36)), x)
  assert_jit_eager_vmap(lambda v: resize(v, **options), x)
  monkeypatch.setattr(resize_module, "_MAX_UNROLLED_TAPS", 10**6)
  unrolled = jax.jit(lambda v: resize(v, **options))
  assert "while" not in unrolled.lower(x).as_text()
  np.testing.assert_allclose(looped(x), unrolled(x), rtol=1e-12, atol=1e-12)


def test_layouts_and_axes_agree():
  x = random((2, 5, 4, 3))
  expected = _run(x, size=(7, 9), method="cubic")
  nchw = _run(jnp.transpose(x, (0, 3, 1, 2)), size=(7, 9), method="cubic", layout="NCHW")
  np.testing.assert_allclose(np.transpose(nchw, (0, 2, 3, 1)), expected, rtol=1e-12)
  hwc = jax.jit(jax.vmap(lambda v: resize(v, (7, 9), method="cubic", layout="HWC")))(x)
  np.testing.assert_allclose(hwc, expected, rtol=1e-12)
  # Resizing one axis at a time equals resizing both; axes order follows the string.
  one = _run(_run(x, size=9, axes="W", method="cubic"), size=7, axes="H", method="cubic")
  np.testing.assert_allclose(one, expected, rtol=1e-12)
  both = _run(x, size=(9, 7), axes="WH", method="cubic")
  np.testing.assert_allclose(both, expected, rtol=1e-12)
  assert resize(x, 2, axes="W", method="linear").shape == (2, 5, 2, 3)
  # 1-D (a one-entry size says NWC) and 3-D default layouts.
  assert resize(random((2, 5, 3)), (8,), method="linear").shape == (2, 8, 3)
  assert resize(random((1, 3, 4, 5, 2)), (2, 6, 7), method="cubic").shape == (1, 2, 6, 7, 2)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
def test_float_dtypes(dtype):
  x = random((1, 5, 4, 2))
  expected = resize(x, (9, 3), method="cubic")
  got = resize(x.astype(dtype), (9, 3), method="cubic")
  assert got.dtype == dtype
  np.testing.assert_allclose(got.astype(jnp.float64), expected,
                             rtol=testing.tolerance(dtype) * 10,
                             atol=testing.tolerance(dtype) * 10)


def test_integer_dtypes_truncate_and_saturate():
  x = jnp.array([0, 255, 0, 255], jnp.uint8)
  # Cubic overshoots below 0 and above 255; the result saturates.
  got = resize(x, 8, method="cubic", layout="W")
  assert got.dtype == jnp.uint8
  exact = np.asarray(resize(x.astype(jnp.float64), 8, method="cubic", layout="W"))
  np.testing.assert_array_equal(got, np.clip(np.trunc(exact), 0, 255).astype(np.uint8))
  assert exact.min() < 0 and exact.max() > 255
  # Negative values truncate toward zero: x = -0.25, 0.25, 0.75, 1.25 give 0, -0.5, -1.5, -2.
  y = resize(jnp.array([0, -2], jnp.int8), 4, method="linear", layout="W")
  assert y.tolist() == [0, 0, -1, -2]
  # Nearest moves integers untouched.
  big = jnp.array([2**62, -(2**62) + 1], jnp.int64)
  assert resize(big, 4, method="nearest", layout="W").tolist() == [2**62] * 2 + [-(2**62) + 1] * 2


def test_no_dense_weight_matrix():
  """The program is gathers or slices and elementwise work: no dot products."""
  x = jax.ShapeDtypeStruct((2, 50, 40, 3), jnp.float32)
  for options in (dict(size=(77, 13), method="linear"), dict(size=(100, 80), method="linear"),
                  dict(size=(10, 9), method="linear", antialias=True),
                  dict(size=(33, 61), method="cubic", align_corners=True)):
    jaxpr = jax.jit(lambda v: resize(v, **options)).lower(x).as_text()  # the lowered program
    assert "dot_general" not in jaxpr and "conv" not in jaxpr


def test_signature():
  params = inspect.signature(resize).parameters
  assert list(params)[:2] == ["x", "size"]
  assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(params.values())[2:])
  assert "layout" in params


# Errors -------------------------------------------------------------------------------------


def test_errors():
  x = jnp.zeros((1, 4, 4, 1))
  linear = functools.partial(resize, method="linear")
  with pytest.raises(ValueError, match="exactly one of size and scale"):
    linear(x)
  with pytest.raises(ValueError, match="exactly one of size and scale"):
    linear(x, 3, scale=2.0)
  with pytest.raises(ValueError, match="recompute_scale=True applies to a scale, not to size=3"):
    linear(x, 3, recompute_scale=True)
  with pytest.raises(ValueError, match="size must be a positive int, got 0"):
    linear(x, (3, 0))
  with pytest.raises(ValueError, match="scale must be positive, got -1.0"):
    linear(x, scale=-1.0)
  with pytest.raises(ValueError, match="scale=0.1 gives an empty output"):
    linear(x, scale=0.1)
  with pytest.raises(ValueError, match=r"size must be an int or a sequence of 2 ints"):
    linear(x, (2, 2, 2))
  with pytest.raises(ValueError, match="method must be one of 'nearest', 'nearest-exact', "
                     "'linear', 'cubic', 'box', 'lanczos1', .*, got 'boxes'"):
    resize(x, 2, method="boxes")
  with pytest.raises(ValueError, match="coordinate_transformation_mode must be one of "
                     "'half_pixel', .*, got 'tf_half_pixel_for_nn'"):
    linear(x, 2, coordinate_transformation_mode="tf_half_pixel_for_nn")
  with pytest.raises(ValueError, match="nearest_mode must be one of 'round_prefer_floor'"):
    resize(x, 2, method="nearest", nearest_mode="round")
  with pytest.raises(ValueError, match="align_corners=True is not defined for method='nearest'"):
    resize(x, 2, method="nearest", align_corners=True)
  with pytest.raises(ValueError, match="both set the coordinates; pass only one of them"):
    linear(x, 2, align_corners=True, coordinate_transformation_mode="asymmetric")
  with pytest.raises(ValueError, match="antialias=True applies to method 'linear', 'cubic', "
                     "'box', 'lanczos1', 'lanczos3', .* not method='nearest-exact'"):
    resize(x, 2, method="nearest-exact", antialias=True)
  with pytest.raises(ValueError, match="antialias=True applies to .* not method='area'"):
    resize(x, 2, method="area", antialias=True)
  with pytest.raises(ValueError, match="align_corners=True does not apply to method='area'"):
    resize(x, 2, method="area", align_corners=True)
  with pytest.raises(ValueError, match="coordinate_transformation_mode='asymmetric' does not "
                     "apply to method='area-overlap'"):
    resize(x, 2, method="area-overlap", coordinate_transformation_mode="asymmetric")
  with pytest.raises(ValueError, match="exclude_outside=True applies to method 'linear'"):
    resize(x, 2, method="nearest", exclude_outside=True)
  with pytest.raises(ValueError, match="nearest_mode='floor' applies only to method='nearest'"):
    linear(x, 2, nearest_mode="floor")
  with pytest.raises(ValueError, match="axes must name distinct spatial axes .* got 'C'"):
    linear(x, 2, axes="C")
  with pytest.raises(ValueError, match="spatial axis 'H' of x .* is empty"):
    linear(jnp.zeros((1, 0, 4, 1)), 2)
  with pytest.raises(TypeError, match="cannot interpolate a boolean array"):
    linear(jnp.zeros((1, 4, 4, 1), bool), 2)
  with pytest.raises(TypeError, match="method must be a string"):
    resize(x, 2, method=None)
  with pytest.raises(TypeError, match="antialias must be a bool"):
    linear(x, 2, antialias=1)
  with pytest.raises(TypeError, match="exclude_outside must be a bool"):
    linear(x, 2, exclude_outside="yes")
  with pytest.raises(ValueError, match="layout must have 3 letters, .* got 'NCHW'"):
    linear(jnp.zeros((1, 4, 4)), 2, layout="NCHW")


def test_onnx_option_errors():
  x = jnp.zeros((1, 4, 4, 1))
  linear = functools.partial(resize, method="linear")
  crop = dict(coordinate_transformation_mode="tf_crop_and_resize")
  with pytest.raises(ValueError, match="'tf_crop_and_resize' needs roi"):
    linear(x, 2, **crop)
  with pytest.raises(TypeError, match="roi must be a sequence of 4 numbers"):
    linear(x, 2, roi=0.5, **crop)
  with pytest.raises(ValueError, match="roi must be a number or a sequence of 4 numbers"):
    linear(x, 2, roi=(0, 0, 1), **crop)
  with pytest.raises(ValueError, match=r"roi=\(0, 0, 1, 1\) applies only to "
                     "coordinate_transformation_mode='tf_crop_and_resize'"):
    linear(x, 2, roi=(0, 0, 1, 1))
  with pytest.raises(ValueError, match="extrapolation_value=1.0 applies only to"):
    linear(x, 2, extrapolation_value=1.0)
  with pytest.raises(ValueError, match="keep_aspect_ratio_policy must be one of 'stretch', "
                     "'not_larger', 'not_smaller', got 'fit'"):
    linear(x, 2, keep_aspect_ratio_policy="fit")
  with pytest.raises(ValueError, match="keep_aspect_ratio_policy='not_larger' applies to a size"):
    linear(x, scale=2.0, keep_aspect_ratio_policy="not_larger")


def test_missing_method_and_pytorch_names_say_what_to_write():
  x = jnp.zeros((1, 4, 4, 1))
  with pytest.raises(TypeError, match="missing a required argument: 'method'; resize has no "
                     "default method .*method='nearest' for PyTorch's default mode"):
    resize(x, 8)
  with pytest.raises(TypeError, match="resize takes method=, not mode= .*write method='bicubic'"):
    resize(x, 8, mode="bicubic")
  with pytest.raises(TypeError, match="resize takes scale=, not scale_factor= .*write scale=2"):
    resize(x, scale_factor=2, method="nearest")
  with pytest.raises(TypeError, match="resize takes recompute_scale=, not "
                     "recompute_scale_factor="):
    resize(x, scale=2, method="nearest", recompute_scale_factor=True)
  with pytest.raises(TypeError, match="scale_and_translate.* missing a required argument: "
                     "'method'"):
    jaxup.scale_and_translate(x, 8, scale=2.0, translation=0.0)
  params = inspect.signature(resize).parameters
  assert params["method"].default is inspect.Parameter.empty
  assert params["method"].kind is inspect.Parameter.KEYWORD_ONLY
  assert not any(p.kind is p.VAR_KEYWORD for p in params.values())
