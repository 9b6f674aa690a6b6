"""Notebook 09's explorers in a real browser: JupyterLab on 127.0.0.1, headless Chromium driven by Playwright.

The test copies the notebook to a temporary folder (so nothing the user has is
touched), starts JupyterLab there with a token, runs all cells, changes the user
and the attention head through the widgets, and asserts that the recommendation
list and the heatmap change and that no widget or cell shows an error. It stacks
screenshots of both explorers into one PNG in its temporary folder; with
``RECNB_UPDATE_ASSETS=1`` it replaces the README's ``assets/jupyterlab_explorers.png``
(a test run never changes a committed file unless asked to).

Needs Playwright for Python (the ``test`` extra) and a Chromium (Debian's
``chromium`` package, or the path in ``RECNB_CHROMIUM``); without them it is
skipped locally and fails under CI, which installs both (``.ci/run``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import REPO

NOTEBOOK = "09_inspecting_attention_and_recommendations.ipynb"
SCREENSHOT = REPO / "assets" / "jupyterlab_explorers.png"
TIMEOUT_MS = int(os.environ.get("RECNB_BROWSER_TIMEOUT_MS", 240_000))  # generous: CI machines are shared


def _chromium() -> str | None:
    return os.environ.get("RECNB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def _requirements():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    browser = _chromium()
    missing = [what for what, ok in (("playwright", sync_playwright), ("chromium", browser)) if not ok]
    if missing:
        message = (f"browser test needs {' and '.join(missing)}: pip install -e '.[test]'; "
                   "apt-get install chromium (or set RECNB_CHROMIUM)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return sync_playwright, browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path, ml1m_dir):
    """A JupyterLab server on 127.0.0.1 serving a copy of notebook 09; yields its base URL and token."""
    shutil.copy(REPO / "notebooks" / NOTEBOOK, tmp_path / NOTEBOOK)
    port, token = _free_port(), secrets.token_hex(16)
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')  # no news pop-up
    env = {**os.environ, "RECNB_DATA_DIR": str(ml1m_dir.parent), "RECNB_PROFILE": "quick",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings")}
    env.pop("MPLBACKEND", None)
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError((tmp_path / "jupyterlab.log").read_text()[-2000:])
                time.sleep(0.5)
        else:
            raise RuntimeError("JupyterLab did not answer within 2 minutes")
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_explorers_render_and_respond_in_jupyterlab(jupyterlab, tmp_path):
    sync_playwright, chromium = _requirements()
    url, token = jupyterlab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        page.set_default_timeout(TIMEOUT_MS)
        try:
            shots = _drive_notebook(page, url, token, tmp_path)
        except Exception:
            page.screenshot(path=tmp_path / "failure.png")  # what the browser showed, for the report
            print(f"browser test failed; screenshot at {tmp_path / 'failure.png'}")
            raise
        finally:
            browser.close()
    target = SCREENSHOT if os.environ.get("RECNB_UPDATE_ASSETS") == "1" else tmp_path / SCREENSHOT.name
    _stack_images(shots, target)
    assert target.stat().st_size > 20_000


def _drive_notebook(page, url: str, token: str, tmp_path: Path) -> list[Path]:
    """Open notebook 09, run it, use both explorers, check for errors; return screenshots of the explorers."""
    page.goto(f"{url}/lab/tree/{NOTEBOOK}?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached")

    _run_all_cells(page)
    # JupyterLab renders cells far outside the viewport lazily: wait for them in the DOM, scroll to use them.
    page.wait_for_selector(".recnb-recommendation-explorer", state="attached")
    page.wait_for_selector(".recnb-attention-explorer .recnb-att-heatmap img", state="attached")
    page.wait_for_function(  # every cell has run: no "[*]" prompt left, and the last cell has a number
        "() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(e => e.textContent);"
        " return p.length > 0 && !p.some(t => t.includes('*')) && /\\d/.test(p[p.length - 1]); }")

    lists = page.locator(".recnb-rec-lists")
    status = page.locator(".recnb-rec-status")
    heatmap = page.locator(".recnb-att-heatmap img").last
    top = page.locator(".recnb-att-top")
    page.wait_for_function("() => document.querySelector('.recnb-rec-status').textContent.includes('User 1:')")
    lists_before, top_before = lists.text_content(), top.text_content()
    image_before = heatmap.get_attribute("src")
    assert "SASRec" in lists_before and "Markov chain" in lists_before

    # A new user in the recommendation explorer: type the id, press Enter.
    user_box = page.locator(".recnb-rec-user input")
    user_box.scroll_into_view_if_needed()
    user_box.fill("42")
    user_box.press("Enter")
    page.wait_for_function("() => document.querySelector('.recnb-rec-status').textContent.includes('User 42:')")
    page.wait_for_function(  # the lists arrive in their own message, after the status line
        "(before) => document.querySelector('.recnb-rec-lists').textContent !== before", arg=lists_before)

    # Another head in the attention explorer: the heatmap and the list of attended films change.
    head = page.locator(".recnb-att-head select")
    head.scroll_into_view_if_needed()
    other = "head 1" if head.evaluate("s => s.options[s.selectedIndex].text") == "head 2" else "head 2"
    head.select_option(label=other)
    page.wait_for_function(
        "(before) => { const imgs = document.querySelectorAll('.recnb-att-heatmap img');"
        " return imgs.length && imgs[imgs.length - 1].getAttribute('src') !== before; }", arg=image_before)
    page.wait_for_function(
        "(before) => document.querySelector('.recnb-att-top').textContent !== before", arg=top_before)
    assert other in top.text_content()

    # No widget failed to render, no widget shows an error, no cell raised.
    outputs = " ".join(page.locator(".jp-OutputArea-output").all_text_contents())
    assert "Error displaying widget" not in outputs and "Traceback" not in outputs
    assert page.locator(".recnb-error").count() == 0
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    assert "User 42:" in status.text_content()

    shots = []
    for name in ("recommendation", "attention"):
        explorer = page.locator(f".recnb-{name}-explorer")
        explorer.scroll_into_view_if_needed()
        shots.append(tmp_path / f"{name}.png")
        explorer.screenshot(path=shots[-1])
    return shots


def _run_all_cells(page, attempts: int = 3) -> None:
    """Edit > Clear Outputs of All Cells, then Run > Run All Cells, as a student would, once the kernel is connected.

    A click that lands while a fresh kernel is still connecting can be dropped (the
    cells go back to ``[ ]``), so wait for the status bar's "Idle" and retry until the
    first code cell has really run.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.wait_for_function("() => /\\|\\s*Idle/.test(document.querySelector('#jp-main-statusbar')?.textContent ?? '')")
    for _ in range(attempts):
        # Clear the saved outputs first, so a number in the first prompt proves this run executed it.
        page.click(".lm-MenuBar-itemLabel:text-is('Edit')")
        page.click("li.lm-Menu-item[data-command='editmenu:clear-all']")
        page.wait_for_function("() => !/\\d/.test(document.querySelector('.jp-CodeCell .jp-InputArea-prompt')"
                               "?.textContent ?? '')")
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click("li.lm-Menu-item[data-command='runmenu:run-all']")
        try:
            page.wait_for_function("() => /\\d/.test(document.querySelector('.jp-CodeCell .jp-InputArea-prompt')"
                                   "?.textContent ?? '')", timeout=90_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"Run All Cells did not run the first cell in {attempts} tries")


def _stack_images(paths, output: Path) -> None:
    """Both explorers' screenshots one above the other in one PNG, written atomically."""
    from PIL import Image

    images = [Image.open(p).convert("RGB") for p in paths]
    gap = 24
    canvas = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images) + gap * (len(images) - 1)),
                       "white")
    y = 0
    for image in images:
        canvas.paste(image, (0, y))
        y += image.height + gap
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_suffix(".tmp.png")
    canvas.save(temporary)
    os.replace(temporary, output)
