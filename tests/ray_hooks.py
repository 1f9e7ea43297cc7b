"""Worker-side hooks of tests/test_distributed.py: a Ray worker killed with SIGKILL while it writes a chosen output.

`ray.init(runtime_env={"worker_process_setup_hook": "ray_hooks.kill_on_write", ...})` runs `kill_on_write` in
every worker process of the test's cluster. It wraps `io.atomic_write` (which `io.write_image` uses): when the
output named in the JSON file at $COLORFUSION_TEST_KILL is written, the worker kills itself with SIGKILL after
the temporary file holds the photo and before its rename, the worst moment for exactly-once. Each kill is one
line of the file `marker` ({"pid", "tensorflow": whether TensorFlow was loaded in that worker}); `every` kills
at each try, otherwise only once. Without the control file nothing happens.
"""

import contextlib
import json
import os
import signal
import sys
from pathlib import Path

CONTROL = "COLORFUSION_TEST_KILL"


def kill_on_write():
    from colorfusion import io

    real = io.atomic_write

    @contextlib.contextmanager
    def atomic_write(path, mode="wb"):
        with real(path, mode) as file:
            yield file
            file.flush()
            _maybe_kill(path)

    io.atomic_write = atomic_write


def _maybe_kill(path):
    control = Path(os.environ.get(CONTROL, "/nonexistent"))
    if not control.exists():
        return
    order = json.loads(control.read_text())
    if Path(path).resolve() != Path(order["output"]).resolve():
        return
    marker = Path(order["marker"])
    if marker.exists() and not order.get("every"):
        return
    with open(marker, "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "tensorflow": "tensorflow" in sys.modules}) + "\n")
    os.kill(os.getpid(), signal.SIGKILL)
