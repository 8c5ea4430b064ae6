"""Sharded execution: every operator on 8 host devices, in a subprocess (the device count is
fixed when jax starts). The programs are in tests/sharded_programs.py."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tests", "sharded_programs.py")


def _run(group: str) -> str:
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
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
