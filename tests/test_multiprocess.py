"""A sharded program across two processes (4 host devices each) equals one device's.

The processes are started here, talk over gloo on 127.0.0.1 through a free port, and are
killed if they have not finished within the time limit."""

import os
import socket
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tests", "multiprocess_program.py")
TIMEOUT_S = 60
# Buffer assignment and partitioning happen on the HLO; LLVM's optimisations only slow the
# compiles down.
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_give_the_one_device_numbers():
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count=4 {FAST_COMPILE}",
             PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  port = _free_port()
  procs = [subprocess.Popen([sys.executable, SCRIPT, str(port), str(i)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  outputs = []
  try:
    for p in procs:
      outputs.append(p.communicate(timeout=TIMEOUT_S)[0])
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  for i, (p, out) in enumerate(zip(procs, outputs)):
    assert p.returncode == 0, out
    assert f"process {i}: 2 outputs sharded over 8 devices equal one device's" in out, out
