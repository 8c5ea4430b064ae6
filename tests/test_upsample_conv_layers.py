"""UpsampleConv in Flax linen, nnx and Haiku: PyTorch's Upsample + Conv load and agree."""

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
  upsample = torch.nn.Upsample(scale_factor=2, mode="nearest")
  conv = torch.nn.Conv2d(4, 6, (3, 2), padding=1, dilation=(1, 2), groups=2,
                         dtype=torch.float64)
  x = torch.randn(2, 4, 3, 5, dtype=torch.float64)
  with torch.no_grad():
    expected = conv(upsample(x)).numpy()
  return upsample, conv, jnp.asarray(x.numpy()), expected


def test_linen_loads_pytorch(torch_pair):
  jflax = pytest.importorskip("jaxup.flax")
  upsample, conv, x, expected = torch_pair
  layer, variables = jflax.upsample_conv_variables(upsample, conv)
  np.testing.assert_allclose(layer.apply(variables, x), expected, rtol=1e-10, atol=1e-10)
  nhwc = layer.clone(layout=None, fused=False).apply(variables, jnp.moveaxis(x, 1, -1))
  np.testing.assert_allclose(jnp.moveaxis(nhwc, -1, 1), expected, rtol=1e-10, atol=1e-10)


def test_nnx_loads_pytorch(torch_pair):
  jnnx = pytest.importorskip("jaxup.nnx")
  upsample, conv, x, expected = torch_pair
  layer = jnnx.UpsampleConv.from_torch(2, conv)  # the factor instead of the module
  np.testing.assert_allclose(layer(x), expected, rtol=1e-10, atol=1e-10)
  layer.layout = None
  np.testing.assert_allclose(jnp.moveaxis(layer(jnp.moveaxis(x, 1, -1)), -1, 1), expected,
                             rtol=1e-10, atol=1e-10)


def test_haiku_loads_pytorch(torch_pair):
  hk = pytest.importorskip("haiku")
  jhk = pytest.importorskip("jaxup.haiku")
  upsample, conv, x, expected = torch_pair
  kwargs, params = jhk.upsample_conv_params(upsample, conv, name="up")
  f = hk.without_apply_rng(hk.transform(lambda x: jhk.UpsampleConv(**kwargs, name="up")(x)))
  assert jax.tree_util.tree_structure(f.init(jax.random.key(0), x)) == \
      jax.tree_util.tree_structure(params)
  np.testing.assert_allclose(f.apply(params, x), expected, rtol=1e-10, atol=1e-10)


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


def test_pytorch_configurations_that_do_not_fit_are_refused():
  torch = pytest.importorskip("torch")
  jflax = pytest.importorskip("jaxup.flax")
  conv = torch.nn.Conv2d(2, 2, 3)
  with pytest.raises(ValueError, match="mode='nearest'"):
    jflax.upsample_conv_variables(torch.nn.Upsample(scale_factor=2, mode="bilinear"), conv)
  with pytest.raises(ValueError, match="scale_factor must be an integer"):
    jflax.upsample_conv_variables(torch.nn.Upsample(scale_factor=1.5), conv)
  with pytest.raises(ValueError, match="conv must have stride 1"):
    jflax.upsample_conv_variables(2, torch.nn.Conv2d(2, 2, 3, stride=2))
  with pytest.raises(TypeError, match="conv must be a torch.nn.Conv1d/2d/3d module"):
    jflax.upsample_conv_variables(2, torch.nn.ConvTranspose2d(2, 2, 3))
  # PyTorch's padding="same" at stride 1 is "SAME".
  same = torch.nn.Conv2d(2, 3, 4, padding="same", dtype=torch.float64)
  x = torch.randn(1, 2, 3, 3, dtype=torch.float64)
  layer, variables = jflax.upsample_conv_variables(torch.nn.Upsample(scale_factor=2), same)
  with torch.no_grad(), warnings.catch_warnings():
    warnings.simplefilter("ignore")  # PyTorch notes that its even-kernel "same" copies
    expected = same(torch.nn.functional.interpolate(x, scale_factor=2)).numpy()
  np.testing.assert_allclose(layer.apply(variables, jnp.asarray(x.numpy())), expected,
                             rtol=1e-10, atol=1e-10)
