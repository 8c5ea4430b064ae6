"""The sharded 3-D decoder example runs in --smoke mode on 8 host devices: its loss equals the
one-device run's and its output stays sharded along depth."""

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Buffer assignment and partitioning happen on the HLO; LLVM's optimisations only slow the
# compiles down.
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def test_unet3d_sharded_smoke(tmp_path):
  env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count=8 {FAST_COMPILE}")
  result = subprocess.run([sys.executable, str(ROOT / "examples" / "unet3d_sharded.py"),
                           "--smoke"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
  out = result.stdout + result.stderr
  assert result.returncode == 0, out
  assert not list(tmp_path.iterdir()), "smoke mode writes no files"
  assert "sharded along depth over 8 devices, 3 steps" in out, out
  assert "output sharded along depth: True" in out, out
  assert "loss equal to the one-device run's: True" in out, out
  memory = re.search(r"per-device peak memory: [\d.]+ MiB on 8 devices, [\d.]+ MiB on one "
                     r"\(([\d.]+)x\)", out)
  assert memory and float(memory.group(1)) < 0.5, out
