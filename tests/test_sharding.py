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
  assert "all-gather" in lines["uneven output: conv_transpose k3 s2 p1 (63 positions)"]
  assert "all-reduce" in lines["grid_sample with a local grid"]
  assert len(MEMORY_EXCEPTIONS) == 4


def test_temp_bound_scales_with_the_device_count():
  from tests.sharded_programs import temp_bound
  # An all-gathering program holds at least the whole array: 8 slabs > 1/8 + 3 slabs + 4 KiB.
  whole = 8 * 2 ** 20
  assert temp_bound(whole, whole // 8, 8) < whole
  assert temp_bound(0, 0, 8) == 4096
