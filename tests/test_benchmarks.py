"""The benchmark suite runs: tiny cases, each checked against the others, called once, tables
written where asked. Nothing here depends on the times measured."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(ROOT, "benchmarks")
DECODERS = ("SD-VAE decoder", "DeepLabV3+ decoder", "U-Net decoder", "FPN decoder",
            "Linknet decoder")


@pytest.fixture(scope="module")
def run_module():
  sys.path.insert(0, BENCHMARKS)
  try:
    import run
    yield run
  finally:
    sys.path.remove(BENCHMARKS)


@pytest.mark.benchmarks
def test_smoke_run_writes_the_tables(tmp_path):
  pytest.importorskip("torch")
  result = subprocess.run(
      [sys.executable, os.path.join(BENCHMARKS, "run.py"), "--smoke", "--out", str(tmp_path)],
      cwd=ROOT, capture_output=True, text=True, timeout=1200,
      env={**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"})
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  text = (tmp_path / "results.md").read_text()
  header = ("| case | mode | candidate | ms | vs baseline | vs torch | GFLOP/s | compile s | "
            "XLA temp MB | XLA GFLOP |")
  assert header in text
  assert f"{os.cpu_count()} cores" in text
  assert "`jnp.dot`" in text and "GFLOP/s" in text
  assert "## Summary" in text
  modules = [f[:-3] for f in os.listdir(BENCHMARKS)
             if f.startswith("bench_") and f.endswith(".py")]
  for module in modules:  # every module contributes its smoke case
    assert f"[{module}]" in result.stdout, module
  # Every public decoder ran forward and as a training step, its jaxup port checked against
  # the PyTorch model (a disagreement is reported as "not timed").
  for decoder in DECODERS:
    for mode in ("forward", "train"):
      rows = [line for line in text.splitlines()
              if line.startswith(f"| {decoder}") and f"| {mode} |" in line]
      assert {row.split(" | ")[2].split(" (")[0] for row in rows} == {"jaxup", "torch"}, (
          decoder, mode, rows)
  assert "not timed" not in text
  assert "(baseline)" in text
  assert (tmp_path / "results.png").stat().st_size > 0


@pytest.mark.parametrize("argv", [["--smoke"], ["--quick"], ["--only", "bench_conv"],
                                  ["--timing", "alternate"]])
def test_only_a_full_run_writes_the_committed_results(run_module, argv):
  out = run_module.output_dir(run_module.parser().parse_args(argv))
  assert os.path.abspath(out) != os.path.abspath(BENCHMARKS)
  assert os.path.isdir(out) and not os.listdir(out)
  os.rmdir(out)


def test_output_dir_for_a_full_run_and_an_explicit_out(run_module, tmp_path):
  assert run_module.output_dir(run_module.parser().parse_args([])) == BENCHMARKS
  args = run_module.parser().parse_args(["--smoke", "--out", str(tmp_path)])
  assert run_module.output_dir(args) == str(tmp_path)


def test_block_timing_calls_each_candidate_hot_in_blocks(run_module):
  import _timing
  log = []
  candidates = {"a": lambda: log.append("a"), "b": lambda: log.append("b")}
  medians = _timing.compare_blocks(candidates, blocks=3, calls={"a": 2, "b": 4}, idle=0.0)
  assert set(medians) == {"a", "b"} and all(t >= 0 for t in medians.values())
  # One untimed call and the block's calls back to back; the first candidate rotates.
  assert "".join(log) == "aaa" + "bbbbb" + "bbbbb" + "aaa" + "aaa" + "bbbbb"


def test_calls_per_block(run_module):
  import _timing
  assert _timing.calls_for(0.01, 0.25, 10) == 10
  assert _timing.calls_for(0.05, 0.25, 10) == 5
  assert _timing.calls_for(1.0, 0.25, 10) == 2
  assert _timing.calls_for(1.0, 0.0, 1, least=1) == 1


def test_geometric_means_per_group_and_mode(run_module):
  import _timing

  def row(mode, jaxup, lax, torch):
    cands = [_timing.Candidate(label, None) for label in ("jaxup", "lax", "torch")]
    case = _timing.Case("c", "g", mode, cands, "lax")
    return {"case": case, "error": None, "medians": {"jaxup": jaxup, "lax": lax, "torch": torch}}

  rows = [row("forward", 1.0, 2.0, 4.0), row("forward", 4.0, 2.0, 1.0), row("train", 1.0, 1.0, 2.0)]
  means = {(m["group"], m["mode"]): m for m in run_module.geomeans(rows)}
  forward = means[("g", "forward")]
  assert forward["torch"] == pytest.approx(1.0) and forward["n_torch"] == 2
  assert forward["base"] == pytest.approx(1.0)
  assert means[("g", "train")]["torch"] == pytest.approx(0.5)
  assert means[("all", "train")]["base"] == pytest.approx(1.0)
