"""Flax linen, nnx and Haiku layers: PyTorch weights load and give PyTorch's numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxup
from tests.helpers import random


@pytest.fixture(scope="module")
def torch_layer():
  torch = pytest.importorskip("torch")
  torch.manual_seed(0)
  layer = torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=1, output_padding=1,
                                   groups=2, dilation=(1, 2), dtype=torch.float64)
  x = torch.randn(2, 4, 5, 3, dtype=torch.float64)
  with torch.no_grad():
    expected = layer(x).numpy()
  return layer, jnp.asarray(x.numpy()), expected


def test_linen_conv_transpose_loads_pytorch(torch_layer):
  jflax = pytest.importorskip("jaxup.flax")
  module, x, expected = torch_layer
  layer, variables = jflax.from_torch(module, layout="NCHW")
  np.testing.assert_allclose(layer.apply(variables, x), expected, rtol=1e-10, atol=1e-10)
  # The default is channels-last, with the same variables.
  nhwc_layer, nhwc_variables = jflax.from_torch(module)
  nhwc = nhwc_layer.apply(nhwc_variables, jnp.moveaxis(x, 1, -1))
  np.testing.assert_allclose(jnp.moveaxis(nhwc, -1, 1), expected, rtol=1e-10, atol=1e-10)


def test_nnx_conv_transpose_loads_pytorch(torch_layer):
  jnnx = pytest.importorskip("jaxup.nnx")
  module, x, expected = torch_layer
  layer = jnnx.from_torch(module, layout="NCHW")
  np.testing.assert_allclose(layer(x), expected, rtol=1e-10, atol=1e-10)
  layer = jnnx.from_torch(module)
  np.testing.assert_allclose(jnp.moveaxis(layer(jnp.moveaxis(x, 1, -1)), -1, 1), expected,
                             rtol=1e-10, atol=1e-10)


def test_haiku_conv_transpose_loads_pytorch(torch_layer):
  hk = pytest.importorskip("haiku")
  jhk = pytest.importorskip("jaxup.haiku")
  module, x, expected = torch_layer
  f, params, state = jhk.from_torch(module, layout="NCHW", name="up")
  assert jax.tree_util.tree_structure(f.init(jax.random.key(0), x)[0]) == \
      jax.tree_util.tree_structure(params)
  np.testing.assert_allclose(f.apply(params, state, x)[0], expected, rtol=1e-10, atol=1e-10)
  g = hk.without_apply_rng(hk.transform(lambda x: jhk.ConvTranspose(
      6, (3, 2), stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2),
      layout="NCHW", name="up")(x)))
  np.testing.assert_allclose(g.apply(params, x), expected, rtol=1e-10, atol=1e-10)


def test_layers_init_shapes_and_output_size():
  jflax = pytest.importorskip("jaxup.flax")
  jnnx = pytest.importorskip("jaxup.nnx")
  hk = pytest.importorskip("haiku")
  jhk = pytest.importorskip("jaxup.haiku")
  from flax import nnx

  x = random((2, 5, 4, 6), np.float32)
  kw = dict(stride=2, padding=1, groups=3)
  layer = jflax.ConvTranspose(features=9, kernel_size=3, **kw)
  variables = layer.init(jax.random.key(0), x)
  assert variables["params"]["kernel"].shape == (3, 3, 3, 6)
  y = layer.apply(variables, x, output_size=(10, 8))
  assert y.shape == (2, 10, 8, 9)
  expected = jaxup.conv_transpose(x, variables["params"]["kernel"], output_size=(10, 8), **kw)
  np.testing.assert_allclose(y, expected, rtol=1e-6)  # zero-initialised bias

  nlayer = jnnx.ConvTranspose(6, 9, (3, 3), **kw, rngs=nnx.Rngs(0))
  assert nlayer.kernel[...].shape == (3, 3, 3, 6)
  assert nlayer(x, output_size=(10, 8)).shape == (2, 10, 8, 9)

  f = hk.transform(lambda x: jhk.ConvTranspose(9, 3, **kw)(x, output_size=(10, 8)))
  params = f.init(jax.random.key(0), x)
  assert params["conv_transpose"]["w"].shape == (3, 3, 3, 6)
  assert f.apply(params, None, x).shape == (2, 10, 8, 9)


def test_layer_errors():
  jflax = pytest.importorskip("jaxup.flax")
  jnnx = pytest.importorskip("jaxup.nnx")
  from flax import nnx

  x = jnp.zeros((1, 4, 4, 6))
  with pytest.raises(ValueError, match=r"groups must divide the output features \(9\), got 4"):
    jflax.ConvTranspose(features=9, kernel_size=3, groups=4).init(jax.random.key(0), x)
  # A group count read from a shape or a config file is a NumPy integer.
  variables = jflax.ConvTranspose(features=4, kernel_size=3, groups=np.int64(2)).init(
      jax.random.key(0), x)
  assert variables["params"]["kernel"].shape == (3, 3, 2, 6)
  with pytest.raises(TypeError, match=r"groups must be an int, got 2.0"):
    jflax.ConvTranspose(features=4, kernel_size=3, groups=2.0).init(jax.random.key(0), x)
  with pytest.raises(TypeError, match=r"use_bias must be a bool .* got 'False'"):
    jflax.ConvTranspose(features=4, kernel_size=3, use_bias="False").init(jax.random.key(0), x)
  with pytest.raises(TypeError, match=r"kernel_size must be a tuple .* got 3"):
    jnnx.ConvTranspose(6, 9, 3, rngs=nnx.Rngs(0))
  with pytest.raises(TypeError, match=r"use_bias must be a bool"):
    jnnx.ConvTranspose(6, 4, (3, 3), use_bias=1, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"layout must have 2 spatial axes, got 'ncdhw' with 3"):
    jnnx.ConvTranspose(6, 4, (3, 3), layout="ncdhw", rngs=nnx.Rngs(0))
  assert jnnx.ConvTranspose(6, 4, (3, 3), groups=np.int64(2), layout="nchw",
                            rngs=nnx.Rngs(0)).layout == "NCHW"
  with pytest.raises(TypeError, match=r"module must be one of torch.nn.BatchNorm1d, .*got an "
                     r"array of shape \(2, 2, 3, 3\)"):
    jflax.from_torch(np.zeros((2, 2, 3, 3)))
  torch = pytest.importorskip("torch")
  with pytest.raises(TypeError, match=r"module must be one of torch.nn.BatchNorm1d, .*"
                     r"parameter-free torch.nn.AdaptiveAvgPool1d, .*ReLU, .*Upsample2D, got "):
    jflax.from_torch(torch.nn.Softmax(dim=1))  # (ReLU and the other activations are read)


def test_haiku_layer_errors():
  hk = pytest.importorskip("haiku")
  jhk = pytest.importorskip("jaxup.haiku")
  x = jnp.zeros((1, 4, 4, 6))
  for kwargs, error, match in [
      (dict(output_channels=4.0, kernel_size=3), TypeError, r"output_channels must be an int"),
      (dict(output_channels=0, kernel_size=3), ValueError, r"output_channels must be a positive"),
      (dict(output_channels=4, kernel_size=3, with_bias=None), TypeError,
       r"with_bias must be a bool"),
      (dict(output_channels=4, kernel_size=3, groups=True), TypeError,
       r"groups must be an int, got True")]:
    f = hk.transform(lambda v, kwargs=kwargs: jhk.ConvTranspose(**kwargs)(v))
    with pytest.raises(error, match=match):
      f.init(jax.random.key(0), x)
  f = hk.transform(lambda v: jhk.ConvTranspose(4, 3, groups=np.int64(2))(v))
  assert f.init(jax.random.key(0), x)["conv_transpose"]["w"].shape == (3, 3, 2, 6)


def test_bfloat16_pytorch_weights_load():
  torch = pytest.importorskip("torch")
  jflax = pytest.importorskip("jaxup.flax")
  module = torch.nn.ConvTranspose2d(2, 4, 3, stride=2, dtype=torch.bfloat16)
  layer, variables = jflax.from_torch(module)
  assert variables["params"]["kernel"].dtype == jnp.bfloat16
  assert variables["params"]["bias"].dtype == jnp.bfloat16
  expected = module.weight.detach().float().numpy().transpose(2, 3, 1, 0)
  np.testing.assert_array_equal(variables["params"]["kernel"].astype(np.float32), expected)


def _direct(x):
  """What the Sequential stacks below compute, by the functions."""
  values, indices = jaxup.max_pool(x, 2, return_indices=True)
  y = jaxup.resize(jaxup.max_unpool(values, indices, 2), scale=2, method="nearest")
  y = jaxup.pixel_shuffle(jaxup.pixel_unshuffle(y, 2, order="DCR"), 2)
  return jaxup.bed_of_nails(jaxup.upsample_nearest(y, (1, 2)), 2)


def _stack(module):
  return [module.MaxPool(2, return_indices=True), module.MaxUnpool(2),
          module.Resize(scale=2, method="nearest"), module.PixelUnshuffle(2, order="DCR"),
          module.PixelShuffle(2), module.UpsampleNearest((1, 2)), module.BedOfNails(2)]


def test_stateless_layers_compose_in_every_framework():
  x = random((2, 4, 6, 3), np.float32)
  expected = _direct(x)
  jflax = pytest.importorskip("jaxup.flax")
  import flax.linen as nn

  linen = nn.Sequential(_stack(jflax))
  np.testing.assert_array_equal(linen.apply({}, x), expected)

  jnnx = pytest.importorskip("jaxup.nnx")
  from flax import nnx

  np.testing.assert_array_equal(nnx.Sequential(*_stack(jnnx))(x), expected)

  hk = pytest.importorskip("haiku")
  jhk = pytest.importorskip("jaxup.haiku")
  f = hk.without_apply_rng(hk.transform(lambda x: hk.Sequential(_stack(jhk))(x)))
  np.testing.assert_array_equal(f.apply(f.init(None, x), x), expected)
  np.testing.assert_array_equal(jax.jit(lambda x: f.apply({}, x))(x), expected)


def test_stateless_layers_check_their_arguments():
  from jaxup._src import layers

  with pytest.raises(TypeError, match=r"MaxPool: .*unexpected keyword argument 'size'"):
    layers.MaxPool(2, size=3)
  with pytest.raises(TypeError, match=r"MaxUnpool takes 2 array argument\(s\), got 1"):
    layers.MaxUnpool(2)(jnp.zeros((1, 2, 2, 1)))
  assert repr(layers.Resize(scale=2, method="nearest")) == "Resize(scale=2, method='nearest')"
  for module in ("jaxup.flax", "jaxup.nnx", "jaxup.haiku"):
    exported = pytest.importorskip(module)
    for name in layers.STATELESS_LAYERS:
      assert getattr(exported, name) is getattr(layers, name)
      assert name in exported.__all__
