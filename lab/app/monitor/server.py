"""The monitor's web server: a starlette app served by uvicorn on loopback, in a thread.

The page (``static/``) polls ``/api/run/<name>`` for the run's JSON snapshot and reloads
the figures (PNG, drawn here with matplotlib, so nothing comes from a CDN) only when a new
matrix read or accuracy row arrived. Endpoints::

    GET /                           the page (``?run=<name>`` picks a run of the folder)
    GET /api/runs                   the folder's runs and the one the page opens on
    GET /api/run/<name>             one run's snapshot (see :mod:`lab.app.monitor.snapshot`)
    GET /api/run/<name>/learned.png the learned change W = G − λ·G0 of the last read
    GET /api/run/<name>/accuracy.png recall accuracy per epoch
"""
from __future__ import annotations

import io
import socket
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from lab.app.figures import accuracy_per_epoch, conductance_heatmaps, learned_change_heatmaps
from lab.app.monitor.snapshot import FolderWatch, RunWatch
from protocols import hopfield_reference as ref

DEFAULT_PORT = 8765
STATIC = Path(str(resources.files("lab.app.monitor") / "static"))


class Monitor:
    """The runs a server shows: every archive of ``folder``, ``focus`` first."""

    def __init__(self, target: str | Path):
        target = Path(target)
        if target.is_file():
            self.folder, self.focus = target.parent, target.name
        elif target.is_dir():
            self.folder, self.focus = target, None
        else:
            raise FileNotFoundError(f"{target}: no such run archive or folder")
        self.folder_watch = FolderWatch(self.folder)
        self._watches: dict[str, RunWatch] = {}
        self._figures: dict[tuple[str, str], tuple[Any, bytes]] = {}
        self._lock = threading.Lock()

    def watch(self, name: str) -> RunWatch:
        """The watch of run ``name``, a file directly in the folder (nothing outside it is served)."""
        path = (self.folder / name).resolve()
        if path.parent != self.folder.resolve() or path.suffix != ".h5" or not path.is_file():
            raise KeyError(name)
        with self._lock:
            if name not in self._watches:
                self._watches[name] = RunWatch(path)
            return self._watches[name]

    def default(self) -> str | None:
        return self.focus or self.folder_watch.default()

    def close(self) -> None:
        with self._lock:
            for w in self._watches.values():
                w.close()
            self._watches.clear()

    # ---------------------------------------------------------------- figures

    def figure(self, name: str, which: str) -> bytes | None:
        w = self.watch(name)
        with w.lock:
            run = w.run()
            key: Any = (run.run_id, run.counts.get("reads"), run.status if which == "accuracy" else None)
            cached = self._figures.get((name, which))
            if cached is not None and cached[0] == key:
                return cached[1]
            fig = _learned_figure(w, run) if which == "learned" else _accuracy_figure(w, run)
            if fig is None:
                return None
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=90)
        png = buf.getvalue()
        self._figures[(name, which)] = (key, png)
        return png


def _learned_figure(w: RunWatch, run: Any) -> Any:
    if not run.counts.get("reads"):
        return None
    mats, labels, kind = w.learned(run)
    if kind == "G":
        return conductance_heatmaps(mats[-1:], labels[-1:])
    pats = w.patterns(run)
    reference = ref.hebbian(pats[1]) if pats is not None else None
    return learned_change_heatmaps(mats[-1:], labels[-1:], reference)


def _accuracy_figure(w: RunWatch, run: Any) -> Any:
    rows = w.snapshot().get("accuracy", {}).get("rows") or []
    if not rows:
        return None
    table = pd.DataFrame(rows).drop(columns=["record"], errors="ignore").astype(float).dropna(subset=["epoch"])
    if table.empty:  # rates of a run without epochs (a recall run): the page's table shows them
        return None
    table = table[[c for c in table.columns if c == "epoch" or table[c].notna().any()]]
    return accuracy_per_epoch(table)


# -------------------------------------------------------------------- the app


def create_app(monitor: Monitor) -> Starlette:
    def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    def runs(request: Request) -> Response:
        return JSONResponse({"folder": str(monitor.folder), "default": monitor.default(),
                             "runs": monitor.folder_watch.runs()}, headers={"Cache-Control": "no-store"})

    def run(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            snap = monitor.watch(name).snapshot()
        except KeyError:
            return JSONResponse({"error": f"no run archive {name!r} in {monitor.folder}"}, status_code=404)
        return JSONResponse(snap, headers={"Cache-Control": "no-store"})

    def figure(request: Request) -> Response:
        name, which = request.path_params["name"], request.path_params["which"]
        if which not in ("learned", "accuracy"):
            return JSONResponse({"error": f"no figure {which!r}"}, status_code=404)
        try:
            png = monitor.figure(name, which)
        except KeyError:
            return JSONResponse({"error": f"no run archive {name!r} in {monitor.folder}"}, status_code=404)
        if png is None:
            return Response(status_code=204)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    return Starlette(routes=[
        Route("/", page),
        Route("/api/runs", runs),
        Route("/api/run/{name}", run),
        Route("/api/run/{name}/{which}.png", figure),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ])


# -------------------------------------------------------------------- serving


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; if the default port is taken, a free one."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        if port != DEFAULT_PORT:
            sock.close()
            raise
        sock.bind((host, 0))
    sock.listen(64)
    return sock


class MonitorServer:
    """``start()`` serves ``target`` (a run archive or a folder of them) in a thread; ``stop()`` ends it."""

    def __init__(self, target: str | Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT):
        self.monitor = Monitor(target)
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self, timeout_s: float = 10.0) -> str:
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(self.monitor), log_level="warning", lifespan="off", access_log=False)
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="hopbench monitor",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError(f"the monitor did not start on {self.url}")
            time.sleep(0.02)
        return self.url  # the socket is the server's now: it closes it when it stops

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.monitor.close()

    def __enter__(self) -> "MonitorServer":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
