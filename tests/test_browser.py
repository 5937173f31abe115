"""A real-browser test of the Voila app (``make app``): Debian's chromium driven by Playwright.

It starts Voila on 127.0.0.1 at a free port, opens the page, moves the hashing explorer's bits
slider with the keyboard and switches the attention explorer's mode, and checks each time that
the caption names the new setting and that the plotted image changed. On failure a screenshot
is saved in the test's temporary folder. With ``LSHLIB_APP_SCREENSHOTS=figures`` it also
saves a picture of each explorer (the README's). The server is stopped whatever the outcome.
Without a chromium (or Playwright) the test says so and is skipped; ``.ci/run`` installs one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lshlib.paths import REPO_ROOT

pytestmark = pytest.mark.browser

APP = REPO_ROOT / "app" / "explorers.ipynb"
START_TIMEOUT = 180.0  # seconds for Voila to answer
RENDER_TIMEOUT = 300_000  # ms for the kernel to draw both explorers (a busy machine is slow)


def _chromium() -> str | None:
    path = os.environ.get("LSHLIB_CHROMIUM") or shutil.which("chromium")
    return path or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"voila exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"voila did not answer on {url} within {START_TIMEOUT} s")


@pytest.fixture
def app_url(tmp_path):
    port = _free_port()
    log = tmp_path / "voila.log"
    env = {**os.environ, "LSHLIB_SCALE": os.environ.get("LSHLIB_SCALE", "smoke")}
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voila",
                str(APP),
                "--no-browser",
                f"--port={port}",
                "--Voila.ip=127.0.0.1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO_ROOT,
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for(url, server, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _state(explorer) -> tuple[str, str]:
    """The explorer's caption text and the ``src`` of its plotted image."""
    caption = explorer.locator(".lshlib-caption").inner_text()
    image = explorer.locator("img").last.get_attribute("src") or ""
    return caption, image


def _wait_change(explorer, before: tuple[str, str], page) -> tuple[str, str]:
    for _ in range(600):
        after = _state(explorer)
        if after[0] != before[0] and after[1] != before[1]:
            return after
        page.wait_for_timeout(100)
    return _state(explorer)


def test_explorers_redraw_in_a_real_browser(app_url, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no chromium on PATH (apt-get install chromium, or set LSHLIB_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        try:
            page.goto(app_url, timeout=RENDER_TIMEOUT, wait_until="commit")
            explorers = page.locator(".lshlib-explorer")
            explorers.nth(1).locator(".lshlib-caption").wait_for(timeout=RENDER_TIMEOUT)
            hashing, attention = explorers.nth(0), explorers.nth(1)
            hashing.locator("img").last.wait_for(timeout=RENDER_TIMEOUT)

            shots = os.environ.get("LSHLIB_APP_SCREENSHOTS")  # README pictures: set to figures/
            if shots:
                attention.locator("img").last.wait_for(timeout=RENDER_TIMEOUT)
                hashing.screenshot(path=str(Path(shots) / "app_hashing_explorer.png"))
                attention.screenshot(path=str(Path(shots) / "app_attention_explorer.png"))
            before = _state(hashing)
            assert before[0].startswith("bits=2, tables=1, T=256"), before[0]
            handle = hashing.locator(".widget-slider").first.locator(".noUi-handle")
            handle.focus()
            page.keyboard.press("ArrowRight")
            after = _wait_change(hashing, before, page)
            assert after[0].startswith("bits=3, tables=1, T=256"), after[0]
            assert after[1] != before[1], "the hashing plot did not change"

            attention.locator("img").last.wait_for(timeout=RENDER_TIMEOUT)
            before = _state(attention)
            assert "mode paper" in before[0], before[0]
            attention.locator("select").nth(1).select_option("masked")
            after = _wait_change(attention, before, page)
            assert "mode masked" in after[0], after[0]
            assert after[1] != before[1], "the attention plot did not change"
        except BaseException:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
