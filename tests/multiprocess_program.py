"""One process of a 2-process x 4-device run, started by tests/test_multiprocess.py.

``python tests/multiprocess_program.py PORT PROCESS_ID`` with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``: joins the run through
``jax.distributed`` (CPU collectives over gloo, 127.0.0.1 only), shards a volume along its depth
over the 8 devices of both processes, runs ``conv_transpose`` and ``resize`` and their
gradient, and checks every value against the same program on one local device.
"""

from __future__ import annotations

import sys

PROCESSES = 2


def main(port: int, process_id: int) -> None:
  import jax

  jax.config.update("jax_enable_x64", True)
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                             num_processes=PROCESSES, process_id=process_id,
                             initialization_timeout=30)
  import jax.numpy as jnp
  import numpy as np
  from jax.experimental import multihost_utils
  from jax.sharding import NamedSharding, PartitionSpec

  import jaxup

  devices = jax.devices()
  assert len(devices) == 8 and len(jax.local_devices()) == 4, (devices, jax.local_devices())
  mesh = jax.make_mesh((8,), ("d",), axis_types=(jax.sharding.AxisType.Auto,))
  rng = np.random.default_rng(0)  # the same data in both processes
  volume = rng.standard_normal((1, 16, 6, 5, 2))
  kernel = jnp.asarray(rng.standard_normal((3, 3, 3, 2, 2)))
  sharding = NamedSharding(mesh, PartitionSpec(None, "d"))
  x = jax.make_array_from_callback(volume.shape, sharding, lambda index: volume[index])

  def decoder(u):
    up = jaxup.conv_transpose(u, kernel, stride=2, padding=1, output_padding=1)
    return up + jaxup.resize(u, scale=2.0, method="linear")

  def program(v):
    return decoder(v), jax.grad(lambda u: jnp.sum(jnp.sin(decoder(u))))(v)

  compiled = jax.jit(program).lower(x).compile()
  text = compiled.as_text()
  found = [op for op in ("all-gather", "all-reduce", "all-to-all") if op in text]
  assert not found, f"collectives besides halo exchange: {found}"
  outs = compiled(x)
  for o in outs:
    assert o.sharding.is_equivalent_to(sharding, o.ndim), o.sharding
  local = jax.jit(program)(jax.device_put(volume, jax.local_devices()[0]))
  for o, expected in zip(outs, local):
    np.testing.assert_allclose(np.asarray(multihost_utils.process_allgather(o, tiled=True)),
                               np.asarray(expected), rtol=1e-9, atol=1e-9)
  print(f"process {process_id}: {len(outs)} outputs sharded over {len(devices)} devices "
        "equal one device's, halo exchange only", flush=True)
  jax.distributed.shutdown()


if __name__ == "__main__":
  main(int(sys.argv[1]), int(sys.argv[2]))
