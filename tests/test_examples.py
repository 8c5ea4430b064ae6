"""The examples that train run end to end in their --smoke mode (a few steps each) and print
their metric next to the baseline it must beat."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_example(name: str, tmp_path) -> str:
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
  result = subprocess.run([sys.executable, str(ROOT / "examples" / name), "--smoke"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout + result.stderr
  assert not list(tmp_path.iterdir()), "smoke mode writes no files"
  return result.stdout


@pytest.mark.examples
@pytest.mark.parametrize("name, requires", [("unet_flax.py", "flax"),
                                            ("segnet_haiku.py", "haiku")])
def test_segmentation_example_smoke(name, requires, tmp_path):
  pytest.importorskip(requires)
  pytest.importorskip("optax")
  out = run_example(name, tmp_path)
  metric = re.search(r"held-out IoU (\d\.\d+) after 4 steps .*best global threshold: IoU "
                     r"(\d\.\d+)", out)
  assert metric, out
  assert 0.0 < float(metric.group(2)) < 0.9  # the baseline does not solve the task


@pytest.mark.examples
def test_espcn_example_smoke(tmp_path):
  for module in ("flax", "optax", "skimage"):
    pytest.importorskip(module)
  out = run_example("espcn.py", tmp_path)
  assert "at initialisation the output is a nearest upsample: True" in out
  metric = re.search(r"held-out PSNR (\d+\.\d+) dB after 3 steps .*bicubic resize: "
                     r"(\d+\.\d+) dB", out)
  assert metric, out
  assert float(metric.group(2)) > 20.0  # bicubic is a sane baseline on the photograph
