"""UpsampleConv in Flax linen, nnx, Haiku and Equinox: PyTorch's Sequential(Upsample, Conv)
loads through from_torch and load_state_dict and agrees with the unfused pair."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxup
from tests.helpers import random


@pytest.fixture(scope="module")
def torch_pair():
  torch = pytest.importorskip("torch")
  torch.manual_seed(0)
  pair = torch.nn.Sequential(
      torch.nn.Upsample(scale_factor=2, mode="nearest"),
      torch.nn.Conv2d(4, 6, (3, 2), padding=1, dilation=(1, 2), groups=2, dtype=torch.float64))
  x = torch.randn(2, 4, 3, 5, dtype=torch.float64)
  with torch.no_grad():
    expected = pair(x).numpy()
  return pair, jnp.asarray(x.numpy()), expected


def _nhwc(x):
  return jnp.moveaxis(x, 1, -1)


def _nchw(y):
  return jnp.moveaxis(y, -1, 1)


def test_linen_loads_pytorch(torch_pair):
  jflax = pytest.importorskip("jaxup.flax")
  pair, x, expected = torch_pair
  layer, variables = jflax.from_torch(pair, layout="NCHW")
  assert isinstance(layer, jflax.UpsampleConv) and layer.factor == (2, 2)
  assert variables["params"]["kernel"].dtype == jnp.float64
  np.testing.assert_allclose(layer.apply(variables, x), expected, rtol=1e-10, atol=1e-10)
  layer, variables = jflax.from_torch(pair)  # channels-last by default
  unfused = layer.clone(fused=False).apply(variables, _nhwc(x))
  np.testing.assert_allclose(_nchw(unfused), expected, rtol=1e-10, atol=1e-10)


def test_nnx_loads_pytorch(torch_pair):
  jnnx = pytest.importorskip("jaxup.nnx")
  pair, x, expected = torch_pair
  layer = jnnx.from_torch(pair, layout="NCHW")
  assert isinstance(layer, jnnx.UpsampleConv)
  np.testing.assert_allclose(layer(x), expected, rtol=1e-10, atol=1e-10)
  layer = jnnx.from_torch(pair)
  np.testing.assert_allclose(_nchw(layer(_nhwc(x))), expected, rtol=1e-10, atol=1e-10)


def test_haiku_loads_pytorch(torch_pair):
  hk = pytest.importorskip("haiku")
  jhk = pytest.importorskip("jaxup.haiku")
  pair, x, expected = torch_pair
  f, params, state = jhk.from_torch(pair, layout="NCHW", name="up")
  assert state == {} and list(params) == ["up"]
  template = hk.transform(
      lambda v: jhk.UpsampleConv(6, (3, 2), 2, padding=1, dilation=(1, 2), groups=2,
                                 layout="NCHW", name="up")(v)).init(jax.random.key(0), x)
  assert jax.tree_util.tree_structure(template) == jax.tree_util.tree_structure(params)
  np.testing.assert_allclose(f.apply(params, state, x)[0], expected, rtol=1e-10, atol=1e-10)
  f, params, state = jhk.from_torch(pair)
  assert list(params) == ["upsample_conv"]
  np.testing.assert_allclose(_nchw(f.apply(params, state, _nhwc(x))[0]), expected,
                             rtol=1e-10, atol=1e-10)


def test_equinox_layer_against_the_unfused_pytorch_pair(torch_pair):
  torch = pytest.importorskip("torch")
  jeqx = pytest.importorskip("jaxup.equinox")
  pair, x, expected = torch_pair
  layer = jeqx.from_torch(pair, layout="NCHW")
  assert isinstance(layer, jeqx.UpsampleConv) and layer.kernel.shape == (3, 2, 2, 6)
  np.testing.assert_allclose(layer(x), expected, rtol=1e-10, atol=1e-10)
  # One example at a time, channels first, as Equinox code maps it.
  layer = jeqx.from_torch(pair, layout="CHW")
  np.testing.assert_allclose(jax.vmap(layer)(x), expected, rtol=1e-10, atol=1e-10)
  # Built directly: the kernel and bias it holds give PyTorch's unfused Upsample + Conv1d.
  made = jeqx.UpsampleConv(3, 4, (3,), 3, padding="same", dilation=2, dtype=jnp.float64,
                           key=jax.random.key(1))
  conv = torch.nn.Conv1d(3, 4, 3, padding="same", dilation=2, dtype=torch.float64)
  with torch.no_grad():
    conv.weight.copy_(torch.from_numpy(np.array(jnp.moveaxis(made.kernel, (0, 1), (-1, -2)))))
    conv.bias.copy_(torch.from_numpy(np.array(made.bias)))
    x1 = torch.randn(2, 3, 5, dtype=torch.float64)
    want = conv(torch.nn.functional.interpolate(x1, scale_factor=3)).numpy()
  x1 = _nhwc(jnp.asarray(x1.numpy()))
  got = made(x1)
  np.testing.assert_allclose(_nchw(got), want, rtol=1e-10, atol=1e-10)
  np.testing.assert_allclose(jax.jit(lambda v: made(v))(x1), got, rtol=1e-12, atol=1e-12)


def test_init_shapes_and_the_function():
  jflax = pytest.importorskip("jaxup.flax")
  jnnx = pytest.importorskip("jaxup.nnx")
  hk = pytest.importorskip("haiku")
  jhk = pytest.importorskip("jaxup.haiku")
  from flax import nnx

  x = random((2, 5, 4, 6), np.float32)
  layer = jflax.UpsampleConv(features=9, kernel_size=3, factor=2, padding="SAME", groups=3)
  variables = layer.init(jax.random.key(0), x)
  assert variables["params"]["kernel"].shape == (3, 3, 2, 9)
  expected = jaxup.upsample_conv(x, variables["params"]["kernel"], 2, padding="SAME", groups=3)
  np.testing.assert_allclose(layer.apply(variables, x), expected, rtol=1e-6)  # zero bias

  nlayer = jnnx.UpsampleConv(6, 9, (3, 3), (2, 1), padding=1, groups=3, rngs=nnx.Rngs(0))
  assert nlayer.kernel[...].shape == (3, 3, 2, 9)
  assert nlayer(x).shape == (2, 10, 4, 9)

  f = hk.transform(lambda x: jhk.UpsampleConv(9, 3, 2, padding=1, with_bias=False)(x))
  params = f.init(jax.random.key(0), x)
  assert list(params["upsample_conv"]) == ["w"]
  assert params["upsample_conv"]["w"].shape == (3, 3, 6, 9)
  assert f.apply(params, None, x).shape == (2, 10, 8, 9)

  jeqx = pytest.importorskip("jaxup.equinox")
  elayer = jeqx.UpsampleConv(6, 9, (3, 3), (2, 1), padding=1, groups=3, use_bias=False,
                             dtype=jnp.float64, key=jax.random.key(0))
  assert elayer.kernel.shape == (3, 3, 2, 9) and elayer.bias is None
  np.testing.assert_allclose(
      elayer(x), jaxup.upsample_conv(x, elayer.kernel, (2, 1), padding=1, groups=3), rtol=1e-6)


@pytest.mark.parametrize("name", ["flax", "nnx", "haiku", "equinox"])
def test_pytorch_configurations_that_do_not_fit_are_refused(name):
  torch = pytest.importorskip("torch")
  pytest.importorskip({"nnx": "flax"}.get(name, name))
  fw = pytest.importorskip(f"jaxup.{name}")
  nn = torch.nn
  conv = nn.Conv2d(2, 2, 3)
  with pytest.raises(ValueError, match=r"Sequential\(Upsample, Conv\{1,2,3\}d\) as an "
                     r"UpsampleConv needs Upsample\(scale_factor=<int>, mode='nearest'\), got "
                     r"mode='bilinear'.*load the two modules one by one"):
    fw.from_torch(nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"), conv))
  with pytest.raises(ValueError, match=r"needs Upsample\(scale_factor=<int>, mode='nearest'\), "
                     r"got mode='nearest', size=\(4, 4\)"):
    fw.from_torch(nn.Sequential(nn.Upsample(size=(4, 4)), conv))
  with pytest.raises(ValueError, match=r"needs an integer scale_factor per spatial axis, got "
                     r"scale_factor=1.5"):
    fw.from_torch(nn.Sequential(nn.Upsample(scale_factor=1.5), conv))
  with pytest.raises(ValueError, match=r"needs a convolution with stride 1, got stride=\(2, 2\)"):
    fw.from_torch(nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(2, 2, 3, stride=2)))
  with pytest.raises(ValueError, match=r"needs padding_mode='zeros', got 'reflect'"):
    fw.from_torch(nn.Sequential(nn.Upsample(scale_factor=2),
                                nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect")))
  # Any other Sequential is read child by child (tests/test_porting_models.py); a child that
  # is no layer gets the message that lists what is.
  with pytest.raises(TypeError, match=r"Sequential\(Upsample, Conv\{1,2,3\}d\) \(one UpsampleConv\) "
                     r"or diffusers' Upsample2D, got a torch.nn.Module \(Softmax\)"):
    fw.from_torch(nn.Sequential(nn.Upsample(scale_factor=2), nn.Softmax(dim=1)))


def test_per_axis_factor_and_same_padding_load():
  torch = pytest.importorskip("torch")
  jflax = pytest.importorskip("jaxup.flax")
  # PyTorch's padding="same" at stride 1 is "SAME"; a factor per axis stays per axis.
  pair = torch.nn.Sequential(torch.nn.Upsample(scale_factor=(2.0, 3.0)),
                             torch.nn.Conv2d(2, 3, 4, padding="same", dtype=torch.float64))
  x = torch.randn(1, 2, 3, 3, dtype=torch.float64)
  layer, variables = jflax.from_torch(pair, layout="NCHW")
  assert layer.factor == (2, 3) and layer.padding == "SAME"
  with torch.no_grad(), warnings.catch_warnings():
    warnings.simplefilter("ignore")  # PyTorch notes that its even-kernel "same" copies
    expected = pair(x).numpy()
  np.testing.assert_allclose(layer.apply(variables, jnp.asarray(x.numpy())), expected,
                             rtol=1e-10, atol=1e-10)


def test_load_state_dict_fills_an_upsample_conv_from_a_sequential_by_name():
  """PyTorch's ``up = Sequential(Upsample, Conv2d)`` (keys ``up.1.weight``, ``up.1.bias``)
  fills the model's UpsampleConv named ``up`` in every framework."""
  torch = pytest.importorskip("torch")
  jflax = pytest.importorskip("jaxup.flax")
  jnnx = pytest.importorskip("jaxup.nnx")
  jhk = pytest.importorskip("jaxup.haiku")
  jeqx = pytest.importorskip("jaxup.equinox")
  import equinox as eqx  # pylint: disable=import-outside-toplevel
  import flax.linen as nn  # pylint: disable=import-outside-toplevel
  import haiku as hk  # pylint: disable=import-outside-toplevel
  from flax import nnx  # pylint: disable=import-outside-toplevel

  torch.manual_seed(0)
  torch_model = torch.nn.ModuleDict(dict(
      conv=torch.nn.Conv2d(3, 4, 1),
      up=torch.nn.Sequential(torch.nn.Upsample(scale_factor=2),
                             torch.nn.Conv2d(4, 2, 3, padding=1)))).double()
  state_dict = torch_model.state_dict()
  assert sorted(state_dict) == ["conv.bias", "conv.weight", "up.1.bias", "up.1.weight"]
  x = torch.randn(2, 3, 3, 4, dtype=torch.float64)
  with torch.no_grad():
    expected = torch_model["up"](torch_model["conv"](x)).numpy()
  x = jnp.asarray(x.numpy())
  got = {}

  class Linen(nn.Module):
    @nn.compact
    def __call__(self, v):
      v = jflax.Conv(4, 1, layout="NCHW", name="conv")(v)
      return jflax.UpsampleConv(2, 3, 2, padding=1, layout="NCHW", name="up")(v)

  variables = jflax.load_state_dict(jax.eval_shape(Linen().init, jax.random.key(0), x),
                                    state_dict)
  got["flax"] = Linen().apply(variables, x)

  class Nnx(nnx.Module):
    def __init__(self, rngs):
      self.conv = jnnx.Conv(3, 4, (1, 1), layout="NCHW", rngs=rngs)
      self.up = jnnx.UpsampleConv(4, 2, (3, 3), 2, padding=1, layout="NCHW", rngs=rngs)

    def __call__(self, v):
      return self.up(self.conv(v))

  got["nnx"] = jnnx.load_state_dict(Nnx(nnx.Rngs(0)), state_dict)(x)

  f = hk.without_apply_rng(hk.transform(lambda v: jhk.UpsampleConv(
      2, 3, 2, padding=1, layout="NCHW", name="up")(jhk.Conv(4, 1, layout="NCHW",
                                                              name="conv")(v))))
  got["haiku"] = f.apply(jhk.load_state_dict(f.init(jax.random.key(0), x), state_dict), x)

  class Eqx(eqx.Module):
    conv: jeqx.Conv
    up: jeqx.UpsampleConv

    def __call__(self, v):
      return self.up(self.conv(v))

  keys = jax.random.split(jax.random.key(0))
  model = Eqx(jeqx.Conv(3, 4, (1, 1), layout="NCHW", key=keys[0]),
              jeqx.UpsampleConv(4, 2, (3, 3), 2, padding=1, layout="NCHW", key=keys[1]))
  got["equinox"] = jeqx.load_state_dict(model, state_dict)(x)
  for name, y in got.items():
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10, err_msg=name)

  # The fused name is a fallback for a path the model lacks; two entries for one weight raise.
  with pytest.raises(ValueError, match=r"state_dict\['up.1.weight'\] and "
                     r"state_dict\['up.weight'\] both fill 'up.kernel'"):
    jnnx.load_state_dict(Nnx(nnx.Rngs(0)), {**state_dict, "up.weight": state_dict["up.1.weight"]})
