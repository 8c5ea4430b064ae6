"""Runs every benchmark module and writes ``results.md`` and ``results.png``.

  python benchmarks/run.py                     # every case; writes benchmarks/results.md
  python benchmarks/run.py --quick             # smaller shapes, fewer blocks (a temp dir)
  python benchmarks/run.py --smoke             # tiny cases, one call each (a test; a temp dir)
  python benchmarks/run.py --timing alternate  # the older method: single calls in alternation

Only a full run of every module with the default timing and no ``--out`` writes the committed
``benchmarks/results.md``; every other run writes to ``--out DIR`` if given, else to a fresh
temporary directory whose path it prints (a module run on its own only prints its table).

Every ``benchmarks/bench_*.py`` module exposing ``cases(quick, smoke=False)`` contributes its
cases (``Case``/``Candidate`` in ``_timing.py``). For each case, in one process:

1. every jax candidate is jitted, lowered and compiled; the compile time,
   ``compiled.memory_analysis()``'s temp bytes and ``compiled.cost_analysis()``'s FLOPs are
   recorded and the compiled executable is what gets timed (compile excluded);
2. every checked candidate's output is compared with the first candidate's;
3. the case's FLOPs are counted once from its PyTorch candidate (``_timing.torch_flops``),
   unless the case gives them;
4. the candidates are timed (``--timing block``: ``_timing.compare_blocks``, hot blocks of
   back-to-back calls, alternated between candidates; ``--timing alternate``:
   ``_timing.compare``, single calls in alternation) and the median per candidate is reported,
   with its ratio to the case's baseline and to PyTorch and its GFLOP/s.

Before the cases, the machine's float32 matrix-product rate (``jnp.dot``, ``torch.mm``) is timed
the same way; the header gives it so that GFLOP/s can be read against it.

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
import dataclasses
import math
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import jax  # noqa: E402
import numpy as np  # noqa: E402

import _timing  # noqa: E402
from _timing import _block, calls_for, compare, compare_blocks, torch_or_none  # noqa: E402


@dataclasses.dataclass
class Timing:
  """How candidates are timed (see ``_timing``'s docstring for the two methods).

  Attributes:
    method: ``"block"`` or ``"alternate"``.
    blocks: blocks per candidate (``block``).
    block_s: the time a block's back-to-back calls aim at; the calls per block follow from the
      first call's time (``block``).
    most_calls, least_calls: bounds on the calls per block (``block``).
    idle: seconds of sleep before each block (``block``).
    repeats: calls per candidate (``alternate``).
  """

  method: str = "block"
  blocks: int = 7
  block_s: float = 0.25
  most_calls: int = 10
  least_calls: int = 2
  idle: float = 0.1
  repeats: int = 25

  def describe(self) -> str:
    if self.method == "alternate":
      return (f"median of {self.repeats} single calls per candidate, alternated between "
              "candidates")
    return (f"median of {self.blocks} blocks per candidate, alternated between candidates; a "
            f"block is {self.idle:g} s idle, one untimed call, then {self.least_calls} to "
            f"{self.most_calls} calls back to back (about {self.block_s:g} s) timed together")


def timing_for(method: str, quick: bool, smoke: bool, repeats=None, calls=None) -> Timing:
  """The timing settings of a run: full, ``--quick`` or ``--smoke`` (one call, no idling)."""
  if smoke:
    t = Timing(method, blocks=1, block_s=0.0, most_calls=1, least_calls=1, idle=0.0, repeats=1)
  elif quick:
    t = Timing(method, blocks=5, block_s=0.1, most_calls=5, repeats=7)
  else:
    t = Timing(method)
  if repeats:
    t.blocks = t.repeats = repeats
  if calls:
    t.most_calls = t.least_calls = calls
  return t


def _leaves(out):
  """The output's arrays as NumPy arrays (torch tensors detached), flattened in tree order."""
  leaves = []
  for leaf in jax.tree_util.tree_leaves(out):
    if hasattr(leaf, "detach"):
      leaf = leaf.detach().cpu().numpy()
    leaves.append(np.asarray(leaf, dtype=np.float64))
  return leaves


FLOOR = 1e-4


def _mismatch(case, outputs) -> str | None:
  """Why the checked candidates disagree, or ``None`` when they agree."""
  def comparable(cand):
    out = outputs[cand.label]
    return _leaves(out if cand.to_compare is None else cand.to_compare(out))
  reference_label = case.candidates[0].label
  reference = comparable(case.candidates[0])
  for cand in case.candidates[1:]:
    if not cand.check:
      continue
    got = comparable(cand)
    if len(got) != len(reference):
      return f"{cand.label} returns {len(got)} arrays, {reference_label} {len(reference)}"
    # A leaf is compared on its own largest value, but never on less than FLOOR of the output's
    # largest: a gradient that is zero but for rounding (an attention key's bias: softmax does
    # not see it) has no digits to agree on.
    overall = max((float(np.max(np.abs(b))) for b in reference if b.size), default=0.0)
    for i, (a, b) in enumerate(zip(got, reference)):
      if a.shape != b.shape:
        return f"{cand.label} output {i} has shape {a.shape}, {reference_label} {b.shape}"
      scale = max(float(np.max(np.abs(b))), FLOOR * overall) if b.size else 0.0
      err = float(np.max(np.abs(a - b))) / (scale or 1.0) if b.size else 0.0
      if not err <= case.tolerance:
        return f"{cand.label} output {i} differs from {reference_label} by {err:.2e} (relative)"
  return None


def _xla_flops(compiled):
  """``compiled.cost_analysis()``'s FLOPs, or ``None`` where the backend reports none."""
  try:
    cost = compiled.cost_analysis()
  except Exception:  # some backends do not report costs
    return None
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  flops = None if not cost else cost.get("flops")
  return None if flops is None or flops < 0 else float(flops)


def run_case(case, timing: Timing) -> dict:
  """Compiles, checks and times one case; returns its row data."""
  calls, stats, outputs, first = {}, {}, {}, {}
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
      stats[cand.label] = {"compile_s": seconds, "temp_bytes": temp,
                           "xla_flops": _xla_flops(compiled)}
      calls[cand.label] = (lambda c=compiled, a=cand.args: c(*a))
    else:
      stats[cand.label] = {"compile_s": None, "temp_bytes": None, "xla_flops": None}
      calls[cand.label] = cand.fn
    start = time.perf_counter()
    outputs[cand.label] = _block(calls[cand.label]())
    first[cand.label] = time.perf_counter() - start
  problem = _mismatch(case, outputs)
  outputs.clear()
  flops = case.flops
  if flops is None:
    torch_label = next((c.label for c in case.candidates if c.framework == "torch"), None)
    if torch_label is not None:
      flops = _timing.torch_flops(calls[torch_label])
  if problem is not None:
    return {"case": case, "error": problem, "stats": stats, "medians": {}, "flops": flops}
  if timing.method == "alternate":
    medians = compare(calls, repeats=timing.repeats, warmup=1)
  else:
    per_block = {label: calls_for(first[label], timing.block_s, timing.most_calls,
                                  timing.least_calls) for label in calls}
    medians = compare_blocks(calls, blocks=timing.blocks, calls=per_block, idle=timing.idle)
  return {"case": case, "error": None, "stats": stats, "medians": medians, "flops": flops}


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
  """``module.cases(quick, smoke=smoke)``; in smoke mode only its first case, or all of its
  smoke cases where the module sets ``SMOKE_ALL = True`` (its smoke cases are all tiny)."""
  if "smoke" in inspect.signature(module.cases).parameters:
    cases = module.cases(quick or smoke, smoke=smoke)
  else:
    cases = module.cases(quick or smoke)
  if smoke and not getattr(module, "SMOKE_ALL", False):
    return cases[:1]
  return cases


def _ms(t):
  return "" if t is None else f"{t * 1e3:.3f}" if t < 1e-2 else f"{t * 1e3:.2f}"


def _ratio(a, b):
  return "" if a is None or b is None else f"{a / b:.2f}x"


def _gflops(flops, t, peak):
  if not flops or not t:
    return ""
  rate = flops / t / 1e9
  return f"{rate:.1f}" + (f" ({rate / peak:.0%})" if peak else "")


def _jaxup_label(case):
  return case.candidates[0].label


def _torch_label(case):
  return next((c.label for c in case.candidates if c.label.startswith("torch")), None)


def geomeans(rows) -> list[dict]:
  """Geometric means of jaxup's time over PyTorch's and over the baseline's, per group and mode
  (and over all groups), from the timed rows."""
  buckets: dict = {}
  for row in rows:
    if row["error"]:
      continue
    case, med = row["case"], row["medians"]
    ours = med[_jaxup_label(case)]
    torch_label = _torch_label(case)
    for key in ((case.group, case.mode), ("all", case.mode)):
      b = buckets.setdefault(key, {"torch": [], "base": []})
      if torch_label is not None:
        b["torch"].append(ours / med[torch_label])
      if case.baseline != _jaxup_label(case):
        b["base"].append(ours / med[case.baseline])
  def gm(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None
  out = []
  for (group, mode), b in buckets.items():
    out.append({"group": group, "mode": mode, "n_torch": len(b["torch"]),
                "torch": gm(b["torch"]), "n_base": len(b["base"]), "base": gm(b["base"])})
  return out


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


def markdown(rows, info, mode_line, timing: Timing, peak=None) -> str:
  dot = peak["jnp.dot"] if peak else None
  lines = [
      "# Benchmark results", "",
      f"`python benchmarks/run.py{mode_line}` on {info['date']}.", "",
      f"- machine: {info['cores']} cores ({info['cpu']}), load average {info['load']} at the start",
      f"- jax {info['jax']}, backend {info['backend']}; torch {info['torch']}, channels-last; "
      f"python {info['python']}",
      f"- float32; timing `{timing.method}`: {timing.describe()}; compile excluded; ratios "
      "below 1 mean faster than the baseline (or PyTorch)",
  ]
  if peak:
    torch_mm = "" if peak["torch.mm"] is None else f", `torch.mm` {peak['torch.mm']:.1f} GFLOP/s"
    lines.append(f"- measured matrix-product peak ({peak['n']}x{peak['n']} float32, same "
                 f"timing): `jnp.dot` {dot:.1f} GFLOP/s{torch_mm}")
  lines += [
      "- GFLOP/s: the case's FLOPs counted analytically from the PyTorch candidate's "
      "convolutions and matrix products (`torch.utils.flop_counter`, two per multiply-add, "
      "backward products included) over each candidate's time; in brackets, the fraction of "
      "the `jnp.dot` peak. XLA GFLOP: what `compiled.cost_analysis()` counts for that jax "
      "program (the work it actually does, zeros included)", "",
  ]
  means = geomeans(rows)
  if means:
    lines += ["## Summary", "",
              "Geometric means of jaxup's time over PyTorch's and over the baseline's "
              "(lax / Flax / jax.image: each case's baseline), per group and mode.", "",
              "| group | mode | jaxup / torch | cases | jaxup / baseline | cases |",
              "|---|---|---:|---:|---:|---:|"]
    order = sorted(means, key=lambda m: (m["group"] == "all", m["group"], m["mode"]))
    for m in order:
      t = "" if m["torch"] is None else f"{m['torch']:.2f}x"
      b = "" if m["base"] is None else f"{m['base']:.2f}x"
      group = "**all**" if m["group"] == "all" else m["group"]
      lines.append(f"| {group} | {m['mode']} | {t} | {m['n_torch']} | {b} | {m['n_base']} |")
    lines.append("")
  groups = []
  for row in rows:
    if row["case"].group not in groups:
      groups.append(row["case"].group)
  for group in groups:
    lines += [f"## {group}", "",
              "| case | mode | candidate | ms | vs baseline | vs torch | GFLOP/s | compile s | "
              "XLA temp MB | XLA GFLOP |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in (r for r in rows if r["case"].group == group):
      case = row["case"]
      if row["error"]:
        lines.append(f"| {case.name} | {case.mode} | **not timed** | {row['error']} "
                     "| | | | | | |")
        continue
      med = row["medians"]
      base = med.get(case.baseline)
      torch_label = _torch_label(case)
      torch_t = med.get(torch_label) if torch_label else None
      for cand in case.candidates:
        st = row["stats"][cand.label]
        t = med[cand.label]
        label = cand.label + (" (baseline)" if cand.label == case.baseline else "")
        temp = "" if st["temp_bytes"] is None else f"{st['temp_bytes'] / 2**20:.1f}"
        comp = "" if st["compile_s"] is None else f"{st['compile_s']:.2f}"
        xla = "" if st.get("xla_flops") is None else f"{st['xla_flops'] / 1e9:.3g}"
        lines.append(f"| {case.name} | {case.mode} | {label} | {_ms(t)} | {_ratio(t, base)} | "
                     f"{_ratio(t, torch_t)} | {_gflops(row.get('flops'), t, dot)} | {comp} | "
                     f"{temp} | {xla} |")
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


def output_dir(args, modules=None):
  """Where a run writes ``results.md``: ``--out``; nowhere (``None``: it prints) for a module run
  on its own; ``benchmarks/`` only for a full run of every module with block timing; else a new
  temporary directory, so that no smoke, quick, partial or alternate-timing run overwrites the
  committed results."""
  if args.out:
    return args.out
  if modules:
    return None
  if args.quick or args.smoke or args.only or args.timing != "block":
    return tempfile.mkdtemp(prefix="jaxup-benchmarks-")
  return HERE


def parser():
  """The command line of ``run.py``."""
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--quick", action="store_true", help="smaller shapes, fewer blocks")
  p.add_argument("--smoke", action="store_true",
                 help="tiny cases, one call each (checks the suite runs; no timing)")
  p.add_argument("--only", nargs="*", help="modules whose name contains one of these")
  p.add_argument("--out", default=None,
                 help="directory for results.md and results.png (default: benchmarks/ "
                 "for a full run of every module with block timing, else a new temporary "
                 "directory; a module run on its own writes nothing unless given)")
  p.add_argument("--timing", choices=("block", "alternate"), default="block",
                 help="block: hot blocks of back-to-back calls, alternated between "
                 "candidates (default); alternate: single calls in alternation")
  p.add_argument("--repeats", type=int, default=None,
                 help="blocks per candidate (block) or calls per candidate (alternate)")
  p.add_argument("--calls", type=int, default=None,
                 help="timed calls per block (block timing; default: enough for about "
                 "0.25 s, 0.1 s with --quick)")
  p.add_argument("--torch-device", default="cpu",
                 help="where PyTorch candidates run: cpu (default) or cuda")
  return p


def main(argv=None, modules=None) -> int:
  """Runs the suite (or only ``modules``); returns 1 if a case failed its check or raised."""
  args = parser().parse_args(argv)
  _timing.TORCH_DEVICE = args.torch_device
  timing = timing_for(args.timing, args.quick, args.smoke, args.repeats, args.calls)
  mode_line = "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])
                      if not a.startswith("--out") and a != args.out)
  torch_or_none()  # threads set before anything runs
  info = machine()
  if args.torch_device != "cpu":
    info["torch"] += f" on {args.torch_device}"
  out = output_dir(args, modules)

  if args.smoke:
    peak = _timing.dot_peak(64, blocks=1, calls=1, idle=0.0)
  else:
    peak = _timing.dot_peak(2048, blocks=timing.blocks, calls=3, idle=timing.idle)
  print(f"jnp.dot {peak['n']}x{peak['n']}: {peak['jnp.dot']:.1f} GFLOP/s", flush=True)

  rows = []
  for module in modules or discover(args.only):
    for case in module_cases(module, args.quick, args.smoke):
      try:
        row = run_case(case, timing)
      except Exception as e:  # one broken case must not lose the others' numbers
        traceback.print_exc()
        row = {"case": case, "error": f"{type(e).__name__}: {e}".replace("|", "/")[:200],
               "stats": {}, "medians": {}, "flops": None}
      rows.append(row)
      status = row["error"] or ", ".join(f"{k} {_ms(v)} ms" for k, v in row["medians"].items())
      print(f"[{module.__name__}] {case.name} [{case.mode}]: {status}", flush=True)
      if out is not None:  # after every case, so an interrupted run keeps what it measured
        _write(out, markdown(rows, info, mode_line, timing, peak))

  text = markdown(rows, info, mode_line, timing, peak)
  if out is None:
    print(text)
  else:
    _write(out, text)
    figure(rows, os.path.join(out, "results.png"))
    print(f"wrote {os.path.join(out, 'results.md')} and results.png")
  return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
  sys.exit(main())
