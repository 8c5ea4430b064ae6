"""A 3-D U-Net-style decoder trained on a volume sharded along its depth across devices.

  python examples/unet3d_sharded.py            # 8 host devices, a (1, 64, 64, 64, 4) volume
  python examples/unet3d_sharded.py --smoke    # a (1, 64, 8, 8, 4) volume, 3 steps, for CI

Volumes too large for one accelerator are partitioned along a spatial axis (the GSPMD paper's
3-D U-Net does so). Every activation here is a `jax.Array` sharded along depth; the model's
operators -- `jaxup.max_pool` with indices, strided `jaxup.conv`, `jaxup.conv_transpose`
(kernel 3, stride 2, padding 1, output padding 1), trilinear `jaxup.resize`,
`jaxup.upsample_conv` and `jaxup.max_unpool` -- keep that sharding and exchange only halos
with neighbouring devices; the kernels are replicated and their gradients summed (an
all-reduce of the parameters' size, as in data parallelism). The same steps run on one
device, and the script prints both runs' losses and per-device peak memory (XLA's estimate
for the compiled training step: arguments, outputs and scratch).

On a CPU the devices are host devices: `--devices` sets
`XLA_FLAGS=--xla_force_host_platform_device_count` before jax starts (unless XLA_FLAGS is
already set).
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="a thin volume, 3 steps")
  parser.add_argument("--devices", type=int, default=8, help="host devices on a CPU")
  parser.add_argument("--size", type=int, default=None, help="the volume's side (depth)")
  parser.add_argument("--steps", type=int, default=None)
  return parser.parse_args(argv)


ARGS = parse_args(sys.argv[1:] if __name__ == "__main__" else [])
os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={ARGS.devices}")

import jax  # noqa: E402  (after XLA_FLAGS)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

import jaxup  # noqa: E402

CHANNELS = (4, 8, 16)  # input, first and second level


def init_params(key):
  c0, c1, c2 = CHANNELS
  shapes = {
      "enc1": (3, 3, 3, c0, c1),
      "enc2": (3, 3, 3, c1, c2),       # stride 2
      "up": (3, 3, 3, c1, c2),         # conv_transpose: the kernel of the conv it transposes
      "skip": (1, 1, 1, c2, c1),       # before the trilinear resize
      "upconv": (3, 3, 3, c2, c1),     # nearest 2x then 3x3x3, computed polyphase
      "head": (3, 3, 3, c1, 1),
  }
  keys = jax.random.split(key, len(shapes))
  return {name: jax.random.normal(k, shape) * (2.0 / np.prod(shape[:-1])) ** 0.5
          for k, (name, shape) in zip(keys, shapes.items())}


def model(params, x):
  """``x [N, D, H, W, 4] -> [N, D, H, W, 1]``."""
  e1 = jax.nn.relu(jaxup.conv(x, params["enc1"], padding=1))
  pooled, indices = jaxup.max_pool(e1, 2, return_indices=True)                 # D / 2
  # "SAME" pads (0, 1): the gradient's sub-pixel rows start on a row boundary. With padding
  # 1 they start mid-row, and in the training step the partitioner of jax 0.10.2 gathers
  # that interleave (docs/guides/sharding.md).
  e2 = jax.nn.relu(jaxup.conv(pooled, params["enc2"], stride=2, padding="SAME"))  # D / 4
  d = (jaxup.conv_transpose(e2, params["up"], stride=2, padding=1, output_padding=1)
       + jaxup.resize(jaxup.conv(e2, params["skip"]), scale=2.0, method="trilinear")
       # lowering="xla": the kernel gradient by XLA's convolution, not by an im2col (a gather,
       # which the partitioner answers by gathering the sharded input).
       + jaxup.upsample_conv(e2, params["upconv"], 2, padding=1, lowering="xla"))  # D / 2
  d = jaxup.max_unpool(jax.nn.relu(d) + pooled, indices, 2)                     # D
  return jaxup.conv(d, params["head"], padding=1)


def loss_fn(params, x, y):
  return jnp.mean((model(params, x) - y) ** 2)


def step(params, x, y, lr=0.05):
  loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
  return jax.tree.map(lambda p, g: p - lr * g, params, grads), loss


def synthetic_volume(depth, side, seed=0):
  """A smooth random field and its target: where the sum of its channels is positive."""
  rng = np.random.default_rng(seed)
  coarse = rng.standard_normal((1, depth // 4, side // 4, side // 4, CHANNELS[0]))
  x = jaxup.resize(jnp.asarray(coarse, jnp.float32), scale=4.0, method="cubic")
  y = (jnp.sum(x, axis=-1, keepdims=True) > 0).astype(jnp.float32)
  return np.asarray(x), np.asarray(y)


def peak_bytes(compiled) -> int:
  """XLA's per-device estimate: arguments + outputs + scratch, less donated aliases."""
  m = compiled.memory_analysis()
  return (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
          - m.alias_size_in_bytes)


def train(params, x, y, steps, shardings):
  """Runs ``steps`` steps with ``x``, ``y`` placed by ``shardings``; returns losses, peak."""
  param_sharding, data_sharding = shardings
  params = jax.device_put(params, param_sharding)
  x, y = jax.device_put(x, data_sharding), jax.device_put(y, data_sharding)
  compiled = jax.jit(step).lower(params, x, y).compile()
  losses = []
  for _ in range(steps):
    params, loss = compiled(params, x, y)
    losses.append(float(loss))
  return losses, peak_bytes(compiled), compiled, params


def main(args):
  size = args.size or 64
  side = 8 if args.smoke else size
  steps = args.steps or (3 if args.smoke else 10)
  devices = jax.devices()
  n = len(devices)
  if size % (4 * n):
    raise SystemExit(f"--size {size} must be a multiple of 4 x {n} devices: the depth is "
                     "halved twice and stays evenly sharded")
  x, y = synthetic_volume(size, side)
  params = init_params(jax.random.key(0))

  mesh = jax.make_mesh((n,), ("depth",), axis_types=(jax.sharding.AxisType.Auto,))
  sharded = (NamedSharding(mesh, PartitionSpec()),
             NamedSharding(mesh, PartitionSpec(None, "depth")))
  one = jax.sharding.SingleDeviceSharding(devices[0])
  losses, peak, compiled, trained = train(params, x, y, steps, sharded)
  single_losses, single_peak, _, _ = train(params, x, y, steps, (one, one))

  text = compiled.as_text()
  gathered = [op for op in ("all-gather", "all-to-all") if op in text]
  out = jax.jit(model)(trained, jax.device_put(x, sharded[1]))
  print(f"volume {x.shape} sharded along depth over {n} devices, {steps} steps")
  print(f"output sharded along depth: "
        f"{out.sharding.is_equivalent_to(sharded[1], out.ndim)}; collectives other than halo "
        f"exchange and the kernel gradients' all-reduce: {gathered or 'none'}")
  print(f"per-device peak memory: {peak / 2**20:.2f} MiB on {n} devices, "
        f"{single_peak / 2**20:.2f} MiB on one ({peak / single_peak:.3f}x)")
  print("losses sharded:   " + " ".join(f"{v:.6f}" for v in losses))
  print("losses one device: " + " ".join(f"{v:.6f}" for v in single_losses))
  equal = np.allclose(losses, single_losses, rtol=1e-4, atol=1e-6)
  print(f"loss equal to the one-device run's: {equal}")
  if not equal:
    raise SystemExit("the sharded run's loss differs from the one-device run's")


if __name__ == "__main__":
  main(ARGS)
