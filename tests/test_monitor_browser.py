"""The live monitor page in a real headless Chromium, during a real dry run.

The page is served by a monitor in this process (the fixture stops it); the dry run writes
its archive in a subprocess, as ``hopbench run`` does. The test needs Debian's
``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and selenium.
"""
from __future__ import annotations

import io
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest
import tomli_w
from conftest import film_bench_dict

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium 4")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no headless Chromium here: install Debian's chromium and chromium-driver "
           "(apt-get install chromium chromium-driver; .ci/run does)")


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1400", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    from lab.app.monitor import serve

    folder = tmp_path / "runs"
    folder.mkdir()
    server = serve(folder, port=0)
    try:
        yield server.url, folder
    finally:
        server.stop()


def _wait(what: str, check: Callable[[], Any], run: subprocess.Popen | None = None, timeout_s: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if run is not None and run.poll() not in (None, 0):
            raise AssertionError(f"the dry run failed before {what}: {run.stderr.read() if run.stderr else ''}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_page_shows_a_live_dry_run_as_it_grows(browser: Any, served: tuple[str, Path]) -> None:

    url, folder = served
    bench = folder.parent / "film8.toml"  # the shipped film bench cut to 8 contacts: a training in seconds
    bench.write_text(tomli_w.dumps(film_bench_dict(8)))
    vectors = [[1, -1, 1, -1, 1, -1, 1, -1], [1, 1, -1, -1, 1, 1, -1, -1]]
    browser.get(url + "?poll=150")  # the page polls every 150 ms: the small run takes ~2 s of wall time
    run = subprocess.Popen([sys.executable, "-m", "lab.app.cli", "run", "train_hopfield", "--dry-run", "--quiet",
                            "--out", str(folder), "--bench", str(bench), "--set", "epochs=20", "--set", "read_every=1",
                            "--set", f"patterns={{vectors={vectors}}}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        text = (lambda element_id: browser.execute_script(  # one script: never a stale element
            "return document.getElementById(arguments[0]).innerText;", element_id))
        _wait("the page to show the run running", lambda: text("status") == "running", run)
        seen: list[int] = []

        def complete() -> bool:
            status, done = text("status"), int(text("ops-done") or 0)
            if not seen or seen[-1] != done:
                seen.append(done)
            return status == "complete"

        _wait("the run to complete on the page", complete, run)
        assert len(seen) >= 3 and seen == sorted(seen), seen  # the page followed the archive as it grew
        assert run.wait(60) == 0, run.stderr.read() if run.stderr else ""
        assert text("ops-total").strip() == f"of {seen[-1]}"
        # the figures the server drew are loaded (a broken image has naturalWidth 0)
        _wait("the learned-change heatmap", lambda: browser.execute_script(
            "const i = document.getElementById('learned'); return !i.hidden && i.complete && i.naturalWidth > 100;"))
        _wait("the accuracy figure", lambda: browser.execute_script(
            "const i = document.getElementById('accuracy'); return !i.hidden && i.complete && i.naturalWidth > 100;"))
        assert "learned change W = G − λ·G0" in text("learned-caption")
        assert text("log").splitlines()[-1].endswith("run complete")
        assert "confirmed by reading back" in text("instrument-state")
        # read in one script: the page re-renders the runs table at every poll
        name = browser.execute_script("const r = document.querySelector('#runs tbody tr'); "
                                      "return r ? r.dataset.name : null;")
        assert name is not None and Path(name).suffix == ".h5"
        png = browser.get_screenshot_as_png()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    assert pixels.shape[0] > 500 and pixels.shape[1] > 500
    assert pixels.std() > 20  # not a blank page: text, a progress bar and two figures
