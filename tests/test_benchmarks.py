"""The benchmark suite runs: one tiny case per module, checked, timed once, tables written."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.benchmarks
def test_smoke_run_writes_the_tables(tmp_path):
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), "--smoke", "--out",
       str(tmp_path)],
      cwd=ROOT, capture_output=True, text=True, timeout=600,
      env={**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"})
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  text = (tmp_path / "results.md").read_text()
  header = "| case | mode | candidate | ms | vs baseline | vs torch | compile s | XLA temp MB |"
  assert header in text
  assert f"{os.cpu_count()} cores" in text
  modules = [f[:-3] for f in os.listdir(os.path.join(ROOT, "benchmarks"))
             if f.startswith("bench_") and f.endswith(".py")]
  for module in modules:  # every module contributes its smoke case
    assert f"[{module}]" in result.stdout, module
  assert "not timed" not in text
  assert "(baseline)" in text
  assert (tmp_path / "results.png").stat().st_size > 0
