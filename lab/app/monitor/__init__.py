"""``hopbench monitor``: a live page of a run (or a folder of runs) in the browser.

It follows the run's SWMR archive as the runner writes it, read-only and taking no lock
(:mod:`lab.app.monitor.snapshot`), and serves a page on loopback with starlette and
uvicorn (:mod:`lab.app.monitor.server`, the ``monitor`` extra). Figures are drawn here
with matplotlib, so the page needs nothing from the internet.

``hopbench run ... --monitor`` starts the monitor as a child process that only reads the
archive (:func:`spawn`), so the run's process keeps both cores' worth of its own time.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

MISSING = ("the live monitor needs starlette and uvicorn, which are not installed: "
           "pip install 'hopbench[monitor]'")
URL_PREFIX = "monitor: "
LINGER_S = 3.0  # after the run, open pages get a few polls to show how it ended


def server_module() -> Any:
    """:mod:`lab.app.monitor.server`, or a clear error if the ``monitor`` extra is missing."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(MISSING) from exc
    from lab.app.monitor import server

    return server


def serve(target: str | Path, host: str = "127.0.0.1", port: int | None = None) -> Any:
    """A started :class:`~lab.app.monitor.server.MonitorServer` (``.url``; ``.stop()`` ends it)."""
    srv = server_module()
    server = srv.MonitorServer(target, host=host, port=srv.DEFAULT_PORT if port is None else port)
    server.start()
    return server


class Child:
    """A monitor served by a child process of this one (``hopbench run --monitor``)."""

    def __init__(self, proc: subprocess.Popen, url: str):
        self.proc = proc
        self.url = url

    def stop(self, linger_s: float = LINGER_S) -> None:
        if self.proc.poll() is None:
            time.sleep(linger_s)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def spawn(target: str | Path, host: str = "127.0.0.1", port: int | None = None,
          timeout_s: float = 60.0) -> Child:
    """Start ``hopbench monitor target`` in a child process; returns once it serves."""
    server_module()  # a missing extra fails here, before the run starts
    cmd = [sys.executable, "-m", "lab.app.cli", "monitor", str(target), "--host", host,
           "--exit-with", str(os.getpid())]
    if port is not None:
        cmd += ["--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    found: dict[str, str] = {}
    errors: list[str] = []

    def read(stream: IO[str], into: list[str] | None) -> None:  # drained, so the child never blocks on a pipe
        for line in stream:
            if into is not None:
                into[:] = (into + [line])[-20:]
            elif line.startswith(URL_PREFIX) and "url" not in found:
                found["url"] = line[len(URL_PREFIX):].strip()

    for stream, into in ((proc.stdout, None), (proc.stderr, errors)):
        threading.Thread(target=read, args=(stream, into), daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while "url" not in found:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"the monitor did not start: {''.join(errors).strip()[-500:] or 'no output'}")
        time.sleep(0.05)
    return Child(proc, found["url"])


__all__ = ["Child", "MISSING", "serve", "server_module", "spawn"]
