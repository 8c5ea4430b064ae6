"""Sharded execution: every operator on 8 host devices, in a subprocess (the device count is
fixed when jax starts). The programs are in tests/sharded_programs.py."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tests", "sharded_programs.py")


def _run(group: str, xla_flags: str = "") -> str:
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count=8 {xla_flags}",
             PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, SCRIPT, group], env=env, capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, result.stdout + result.stderr
  return result.stdout


def test_collectives_are_recognised_in_hlo_text():
  from tests.sharded_programs import collectives_in
  text = ("%all-gather = f32[8,6]{1,0} all-gather(%param), dimensions={0}\n"
          "%all-reduce.1 = pred[] all-reduce(%and), to_apply=%region\n")
  assert collectives_in(text) == ["all-gather", "all-reduce"]
  assert collectives_in("%fusion = f32[1,6]{1,0} fusion(%param), kind=kLoop") == []


@pytest.mark.parametrize("group,cases", [("batch", 37), ("unpool", 20)])
def test_batch_sharded_operators_stay_sharded_without_collectives(group, cases):
  out = _run(group)
  assert out.count("ok (no collectives)") == cases and f"checked {cases} cases" in out, out


def test_gradients_inside_shard_map_equal_one_device():
  """Inside ``shard_map`` the kernel is the same on every device and the activations differ:
  the operators and their gradients in both (the kernel's summed over devices once) type-check
  and equal one device's. Before, their abstract values dropped how they vary, and no
  gradient there could be taken."""
  out = _run("shard_map")
  assert out.count("shard_map equals one device") == 6 and "checked 6 cases" in out, out


def test_spatially_sharded_volume_gives_the_one_device_numbers():
  out = _run("spatial")
  assert "checked 6 cases" in out, out
  assert "collective" in out  # windows cross the shards: the halos travel between devices


def test_grouped_convolution_gives_the_one_device_numbers():
  # XLA's SPMD partitioner may gather the batch of a convolution with 1 < groups < channels
  # (it does with jax 0.10's lax convolution); the numbers are still those of one device.
  # Depthwise and groups=1 stay sharded without collectives (above).
  out = _run("grouped")
  assert "conv groups 2: ok" in out and "checked 1 cases" in out, out


# XLA's buffer assignment (the temp memory) and the partitioner's collectives are decided on
# the HLO; LLVM's optimisations only make the matrix compile several times slower.
_FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def test_spatially_sharded_operators_exchange_only_halos():
  """The matrix of tests/sharded_programs.py ``halo_cases``: every operator and its gradient
  with spatial axes sharded (1-D, 2-D with batch x height and height x width on a 2x4 mesh,
  3-D along depth; channels last and first) stays sharded, halo-only, equal to one device
  and within the temp-memory bound; then the documented exceptions give the right numbers."""
  out = _run("halo", _FAST_COMPILE)
  from tests.sharded_programs import MEMORY_EXCEPTIONS, exception_cases, halo_cases
  cases, exceptions = len(halo_cases()), len(exception_cases())
  assert out.count(": halo-only, sharded") == cases >= 35, out
  assert out.count(": one-device numbers") == exceptions, out
  assert f"checked {cases + exceptions} cases" in out, out
  # The exceptions are what the guide says they are.
  lines = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
  assert "all-gather" in lines["uneven output, conv_transpose k3 s2 p1 (63 positions)"]
  assert "all-reduce" in lines["grid_sample with a local grid"]
  assert len(MEMORY_EXCEPTIONS) == 4


def test_temp_bound_scales_with_the_device_count():
  from tests.sharded_programs import temp_bound
  # An all-gathering program holds at least the whole array: 8 slabs > 1/8 + 3 slabs + 4 KiB.
  whole = 8 * 2 ** 20
  assert temp_bound(whole, whole // 8, 8) < whole
  assert temp_bound(0, 0, 8) == 4096


# The helpers of jaxup/_src/sharding.py on one device, against the forms they replace.


@pytest.mark.parametrize("mode", ["edge", "reflect", "constant"])
@pytest.mark.parametrize("widths", [((0, 0), (1, 1)), ((0, 0), (3, 2)), ((2, 0), (0, 3))])
def test_pad_equals_jnp_pad(mode, widths):
  import jax.numpy as jnp
  import numpy as np

  from jaxup._src import sharding
  x = jnp.arange(5.0 * 6).reshape(5, 6)
  np.testing.assert_array_equal(sharding.pad(x, widths, mode), jnp.pad(x, widths, mode=mode))


@pytest.mark.parametrize("starts,sizes", [((1, 0), (7, 4)), ((0, 3), (8, 5)), ((-1, 1), (6, 6))])
def test_phases_to_space_equals_interleave_then_crop(starts, sizes):
  import jax.numpy as jnp
  import numpy as np

  from jaxup._src import sharding
  z = jnp.arange(1.0, 1 + 2 * 5 * 4 * 2 * 3 * 3).reshape(2, 5, 4, 2, 3, 3)  # [N, R, R, s, s, C]
  full = np.asarray(z).transpose(0, 1, 3, 2, 4, 5).reshape(2, 10, 12, 3)
  padded = np.pad(full, ((0, 0), (2, 8), (2, 8), (0, 0)))  # zeros beyond z
  expected = padded[:, 2 + starts[0]:2 + starts[0] + sizes[0],
                    2 + starts[1]:2 + starts[1] + sizes[1]]
  out = sharding.phases_to_space(z, starts, sizes, (2, 3))
  np.testing.assert_array_equal(out, expected)


def test_resample_axis_equals_the_gathers():
  import jax.numpy as jnp
  import numpy as np

  from jaxup._src import sharding
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((2, 6, 3)))
  taps = np.arange(12)[:, None] // 2 + np.array([-2, -1, 0, 1])  # cubic-like 2x taps
  weights = rng.standard_normal((2, 4))[np.arange(12) % 2]
  gathered = sum(x[:, np.clip(taps[:, t], 0, 5)] * weights[None, :, t, None] for t in range(4))
  out = sharding.resample_axis(x, 1, taps, weights, 6, 12)
  np.testing.assert_allclose(out, gathered, rtol=1e-14)
  assert sharding.periodic_taps(taps, 6, 12)[:2] == (2, 1)
  assert sharding.resample_axis(x, 1, taps[::-1], weights, 6, 12) is None  # not periodic
  assert sharding.resample_axis(x[:, :4], 1, taps[:4] // 3, None, 12, 4) is None  # shrinking


@pytest.mark.parametrize("in_size,out_size,devices", [(16, 32, 8), (32, 16, 4), (16, 24, 8),
                                                      (12, 30, 6)])
def test_blocked_resample_equals_the_gathers(in_size, out_size, devices):
  """Align-corners cubic taps (they drift off any period) as gathers batched over
  ``gcd(in, out, devices)`` blocks: the plain gathers' values, for any axis."""
  import jax.numpy as jnp
  import numpy as np

  from jaxup._src import sharding
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((2, in_size, 3)))
  source = np.arange(out_size) * (in_size - 1) / (out_size - 1)
  taps = np.clip(np.floor(source)[:, None].astype(int) + np.arange(-1, 3), 0, in_size - 1)
  weights = rng.standard_normal(taps.shape)
  gathered = sum(x[:, taps[:, t]] * weights[None, :, t, None] for t in range(4))
  out = sharding.blocked_resample(x, 1, taps, weights, in_size, devices)
  np.testing.assert_allclose(out, gathered, rtol=1e-14)
  moved = sharding.blocked_resample(jnp.moveaxis(x, 1, 0), 0, taps, weights, in_size, devices)
  np.testing.assert_allclose(jnp.moveaxis(moved, 0, 1), gathered, rtol=1e-14)
  assert sharding.block_taps(taps, in_size, devices)[0] == np.gcd.reduce(
      [in_size, out_size, devices])
  assert sharding.block_taps(taps, in_size, 1) is None  # one block: nothing to split
  flipped = np.arange(256)[::-1, None]  # reads from the far end: no block is near its taps
  assert sharding.block_taps(flipped, 256, 8) is None


def test_tiled_columns_is_the_im2col_of_tiling_windows():
  import jax.numpy as jnp
  import numpy as np

  from jaxup._src import sharding
  x = jnp.arange(1.0 * 4 * 6 * 2).reshape(1, 4, 6, 2)
  cols = sharding.tiled_columns(x, (2, 3), (2, 2), (2, 2), (1, 1), 1)
  expected = np.stack([np.asarray(x)[:, i::2, j::2] for i in range(2) for j in range(2)], -2)
  np.testing.assert_array_equal(cols, expected[..., None, :])
  assert sharding.tiled_columns(x, (2, 2), (3, 3), (2, 2), (1, 1), 1) is None
