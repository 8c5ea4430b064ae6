"""Runs every benchmark module and writes ``results.md`` and ``results.png``.

  python benchmarks/run.py            # every case, the numbers in the docs
  python benchmarks/run.py --quick    # smaller shapes, fewer repeats
  python benchmarks/run.py --smoke    # one tiny case per module, one repeat (a test)

Every ``benchmarks/bench_*.py`` module exposing ``cases(quick, smoke=False)`` contributes its
cases (``Case``/``Candidate`` in ``_timing.py``). For each case, in one process:

1. every jax candidate is jitted, lowered and compiled; the compile time and
   ``compiled.memory_analysis()``'s temp bytes are recorded and the compiled executable is
   what gets timed (compile excluded);
2. every checked candidate's output is compared with the first candidate's;
3. the candidates are called in alternation (``_timing.compare``), each result blocked on, and
   the median per candidate is reported, with its ratio to the case's baseline and to PyTorch.

PyTorch runs on the CPU with ``torch.set_num_threads(os.cpu_count())`` on channels-last tensors.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import importlib
import inspect
import os
import platform
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import jax  # noqa: E402
import numpy as np  # noqa: E402

import _timing  # noqa: E402
from _timing import _block, compare, torch_or_none  # noqa: E402


def _leaves(out):
  """The output's arrays as NumPy arrays (torch tensors detached), flattened in tree order."""
  leaves = []
  for leaf in jax.tree_util.tree_leaves(out):
    if hasattr(leaf, "detach"):
      leaf = leaf.detach().cpu().numpy()
    leaves.append(np.asarray(leaf, dtype=np.float64))
  return leaves


def _mismatch(case, outputs) -> str | None:
  """Why the checked candidates disagree, or ``None`` when they agree."""
  reference_label = case.candidates[0].label
  reference = _leaves(outputs[reference_label])
  for cand in case.candidates[1:]:
    if not cand.check:
      continue
    got = _leaves(outputs[cand.label])
    if len(got) != len(reference):
      return f"{cand.label} returns {len(got)} arrays, {reference_label} {len(reference)}"
    for i, (a, b) in enumerate(zip(got, reference)):
      if a.shape != b.shape:
        return f"{cand.label} output {i} has shape {a.shape}, {reference_label} {b.shape}"
      scale = float(np.max(np.abs(b))) if b.size else 0.0
      err = float(np.max(np.abs(a - b))) / (scale or 1.0) if b.size else 0.0
      if not err <= case.tolerance:
        return f"{cand.label} output {i} differs from {reference_label} by {err:.2e} (relative)"
  return None


def run_case(case, repeats: int) -> dict:
  """Compiles, checks and times one case; returns its row data."""
  calls, stats, outputs = {}, {}, {}
  for cand in case.candidates:
    if cand.framework == "jax":
      start = time.perf_counter()
      # A fresh function object, so that no earlier jit of cand.fn serves this one from cache.
      compiled = jax.jit(lambda *a, f=cand.fn: f(*a)).lower(*cand.args).compile()
      seconds = time.perf_counter() - start
      temp = None
      try:
        mem = compiled.memory_analysis()
        temp = None if mem is None else int(mem.temp_size_in_bytes)
      except Exception:  # some backends do not report memory
        pass
      stats[cand.label] = {"compile_s": seconds, "temp_bytes": temp}
      calls[cand.label] = (lambda c=compiled, a=cand.args: c(*a))
    else:
      stats[cand.label] = {"compile_s": None, "temp_bytes": None}
      calls[cand.label] = cand.fn
    outputs[cand.label] = _block(calls[cand.label]())
  problem = _mismatch(case, outputs)
  outputs.clear()
  if problem is not None:
    return {"case": case, "error": problem, "stats": stats, "medians": {}}
  medians = compare(calls, repeats=repeats, warmup=1)
  return {"case": case, "error": None, "stats": stats, "medians": medians}


def discover(only=None):
  """The ``bench_*`` modules of this directory (optionally those whose name contains ``only``)."""
  modules = []
  for path in sorted(glob.glob(os.path.join(HERE, "bench_*.py"))):
    name = os.path.splitext(os.path.basename(path))[0]
    if only and not any(o in name for o in only):
      continue
    module = importlib.import_module(name)
    if hasattr(module, "cases"):
      modules.append(module)
  return modules


def module_cases(module, quick: bool, smoke: bool) -> list:
  """``module.cases(quick, smoke=smoke)``; in smoke mode only its first case."""
  if "smoke" in inspect.signature(module.cases).parameters:
    cases = module.cases(quick or smoke, smoke=smoke)
  else:
    cases = module.cases(quick or smoke)
  return cases[:1] if smoke else cases


def _ms(t):
  return "" if t is None else f"{t * 1e3:.3f}" if t < 1e-2 else f"{t * 1e3:.2f}"


def _ratio(a, b):
  return "" if a is None or b is None else f"{a / b:.2f}x"


def machine() -> dict:
  torch = torch_or_none()
  device = jax.devices()[0]
  return {
      "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
      "cores": os.cpu_count(),
      "cpu": platform.processor() or platform.machine(),
      "load": "%.1f %.1f %.1f" % os.getloadavg() if hasattr(os, "getloadavg") else "n/a",
      "python": platform.python_version(),
      "jax": jax.__version__,
      "backend": f"{jax.default_backend()} ({device.device_kind})",
      "torch": f"{torch.__version__} ({torch.get_num_threads()} threads)" if torch else "absent",
  }


def markdown(rows, info, mode_line) -> str:
  lines = [
      "# Benchmark results", "",
      f"`python benchmarks/run.py{mode_line}` on {info['date']}.", "",
      f"- machine: {info['cores']} cores ({info['cpu']}), load average {info['load']} at the start",
      f"- jax {info['jax']}, backend {info['backend']}; torch {info['torch']}; "
      f"python {info['python']}",
      "- float32; median of alternated calls, compile excluded; ratios below 1 mean faster "
      "than the baseline (or PyTorch)", "",
  ]
  groups = []
  for row in rows:
    if row["case"].group not in groups:
      groups.append(row["case"].group)
  for group in groups:
    lines += [f"## {group}", "",
              "| case | mode | candidate | ms | vs baseline | vs torch | compile s | "
              "XLA temp MB |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for row in (r for r in rows if r["case"].group == group):
      case = row["case"]
      if row["error"]:
        lines.append(f"| {case.name} | {case.mode} | **not timed** | {row['error']} "
                     "| | | | |")
        continue
      med = row["medians"]
      base = med.get(case.baseline)
      torch_t = next((t for label, t in med.items() if label.startswith("torch")), None)
      for cand in case.candidates:
        st = row["stats"][cand.label]
        t = med[cand.label]
        label = cand.label + (" (baseline)" if cand.label == case.baseline else "")
        temp = "" if st["temp_bytes"] is None else f"{st['temp_bytes'] / 2**20:.1f}"
        comp = "" if st["compile_s"] is None else f"{st['compile_s']:.2f}"
        lines.append(f"| {case.name} | {case.mode} | {label} | {_ms(t)} | {_ratio(t, base)} | "
                     f"{_ratio(t, torch_t)} | {comp} | {temp} |")
    lines.append("")
  return "\n".join(lines)


def figure(rows, path):
  """One panel per group: jaxup's and PyTorch's time over the case's baseline (log scale)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  timed = [r for r in rows if not r["error"]]
  groups = []
  for row in timed:
    if row["case"].group not in groups:
      groups.append(row["case"].group)
  if not groups:
    return
  heights = [max(1, len([r for r in timed if r["case"].group == g])) for g in groups]
  fig, axes = plt.subplots(len(groups), 1, figsize=(9, 1.2 + 0.45 * sum(heights) + len(groups)),
                           gridspec_kw={"height_ratios": heights}, squeeze=False)
  for ax, group in zip(axes[:, 0], groups):
    group_rows = [r for r in timed if r["case"].group == group]
    series = {"jaxup": lambda r: r["case"].candidates[0].label,
              "torch": lambda r: "torch" if "torch" in r["medians"] else None}
    width = 0.8 / len(series)
    for i, (name, pick) in enumerate(series.items()):
      ys, xs = [], []
      for j, r in enumerate(group_rows):
        label = pick(r)
        if label is not None:
          ys.append(j + i * width)
          xs.append(r["medians"][label] / r["medians"][r["case"].baseline])
      ax.barh(ys, xs, height=width, label=name)
    ax.set_yticks([j + width / 2 for j in range(len(group_rows))])
    ax.set_yticklabels([f"{r['case'].name} [{r['case'].mode}]" for r in group_rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_title(f"{group}: time / baseline (lower is faster)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _write(out, text):
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, "results.md"), "w") as f:
    f.write(text + "\n")


def main(argv=None, modules=None) -> int:
  """Runs the suite (or only ``modules``); returns 1 if a case failed its check or raised."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--quick", action="store_true", help="smaller shapes, fewer repeats")
  parser.add_argument("--smoke", action="store_true",
                      help="one tiny case per module, one repeat (checks the suite runs)")
  parser.add_argument("--only", nargs="*", help="modules whose name contains one of these")
  parser.add_argument("--out", default=None,
                      help="directory for results.md and results.png (default: benchmarks/; "
                      "a module run on its own writes nothing unless given)")
  parser.add_argument("--repeats", type=int, default=None, help="calls per candidate")
  parser.add_argument("--torch-device", default="cpu",
                      help="where PyTorch candidates run: cpu (default) or cuda")
  args = parser.parse_args(argv)
  _timing.TORCH_DEVICE = args.torch_device
  repeats = args.repeats or (1 if args.smoke else 7 if args.quick else 25)
  mode_line = " --smoke" if args.smoke else " --quick" if args.quick else ""
  torch_or_none()  # threads set before anything runs
  info = machine()
  if args.torch_device != "cpu":
    info["torch"] += f" on {args.torch_device}"
  out = args.out or (None if modules else HERE)

  rows = []
  for module in modules or discover(args.only):
    for case in module_cases(module, args.quick, args.smoke):
      try:
        row = run_case(case, repeats)
      except Exception as e:  # one broken case must not lose the others' numbers
        traceback.print_exc()
        row = {"case": case, "error": f"{type(e).__name__}: {e}".replace("|", "/")[:200],
               "stats": {}, "medians": {}}
      rows.append(row)
      status = row["error"] or ", ".join(f"{k} {_ms(v)} ms" for k, v in row["medians"].items())
      print(f"[{module.__name__}] {case.name} [{case.mode}]: {status}", flush=True)
      if out is not None:  # after every case, so an interrupted run keeps what it measured
        _write(out, markdown(rows, info, mode_line))

  text = markdown(rows, info, mode_line)
  if out is None:
    print(text)
  else:
    _write(out, text)
    figure(rows, os.path.join(out, "results.png"))
    print(f"wrote {os.path.join(out, 'results.md')} and results.png")
  return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
  sys.exit(main())
