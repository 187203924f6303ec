"""The explorer and the app as people use them: JupyterLab and Voila driven in Debian's Chromium.

`make test-browser` runs this (not `make test`: it needs Chromium and takes minutes). Each test
starts its server on a free local port with a token, on copies of the notebooks, and stops it.
Screenshots go to $SCREENSHOTS (default reports/browser).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("SCREENSHOTS", ROOT / "reports" / "browser"))
TOKEN = "tdexplain-browser-test"
CHROMIUM = shutil.which("chromium")
# A notebook runs whole in JupyterLab before its widget is tested: 07 takes about 9 minutes on
# the slowest 2-core machine we have seen, so a run may take 20 and a test 30 (waits, not speeds).
RUN_ALL_MS = 1_200_000
pytestmark = [pytest.mark.skipif(CHROMIUM is None and os.environ.get("REQUIRE_BROWSER") != "1",
                                 reason="needs Debian's chromium"),
              pytest.mark.timeout(1800)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _server(command: list, port: int, ready_path: str):
    """Start a server, wait until it answers, stop it (and its kernels) afterwards."""
    log = open(Path(tempfile.gettempdir()) / f"tdexplain_server_{port}.log", "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[2]} did not start: see {log.name}")
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    """A video of four windows (44 frames at 8 fps: 3 s every second, and a tail)."""
    from tdexplain.workbook import data

    frames = data.synthetic_clip("fight", frames=44, size=96, seed=2).frames
    return data.write_video(tmp_path_factory.mktemp("videos") / "long.mp4", frames)


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    work = tmp_path_factory.mktemp("notebooks")
    for name in ("04_gradcam.ipynb", "07_evaluating_explanations.ipynb"):
        shutil.copy(ROOT / "notebooks" / name, work / name)
    # Every cell in the page (JupyterLab leaves cells out of view out of the page by default),
    # the notebook's kernel started without asking (JupyterLab 4.6 asks, and Run All then runs
    # nothing), no news pop-up; a workspace of its own.
    settings = tmp_path_factory.mktemp("settings")
    for plugin, values in (("notebook-extension/tracker", '{"windowingMode": "none", "autoStartDefaultKernel": true}'),
                           ("apputils-extension/notification", '{"fetchNews": "false", "checkForUpdates": false}')):
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(values)
    port = _free_port()
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
               f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={work}", "--allow-root",
               f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={tmp_path_factory.mktemp('ws')}"]
    with _server(command, port, f"/api/status?token={TOKEN}") as url:
        yield url


@pytest.fixture
def lab(lab_server):
    """The JupyterLab server, and the kernels a test started shut down after it, passed or failed
    (JupyterLab keeps a kernel when its page closes, and a kernel left computing slows the next
    test)."""
    yield lab_server
    _shut_down_kernels(lab_server)


def _run_all(page, url: str, notebook: str) -> None:
    """Open the notebook alone (a workspace of its own), run all its cells from the Run menu,
    and wait for the end; a screenshot is left in SHOTS if that fails."""
    page.goto(f"{url}/lab/workspaces/{Path(notebook).stem}/tree/{notebook}?reset&token={TOKEN}")
    try:
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        _click_run_all(page)
        page.wait_for_selector(".tdexplain-picture", state="attached", timeout=RUN_ALL_MS)
        _wait_idle(page)
    except Exception:
        page.screenshot(path=SHOTS / f"failed_{Path(notebook).stem}.png")
        raise


def _click_run_all(page, tries: int = 4) -> None:
    """Run > Run All Cells, until a cell starts. On a fresh server JupyterLab 4.6 shows the kernel
    idle a few seconds before it takes requests, and a Run All in that gap runs nothing and says
    nothing (every prompt stays "[ ]"); a click after it runs the notebook."""
    from playwright.sync_api import TimeoutError as NoCellStarted

    started = page.locator(".jp-CodeCell .jp-InputPrompt").filter(has_text=re.compile(r"\[(\*|\d+)\]"))
    for _ in range(tries):
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name=re.compile("^Run All Cells")).click()
        try:
            started.first.wait_for(timeout=20_000)
            return
        except NoCellStarted:
            continue
    raise AssertionError(f"Run All Cells started no cell in {tries} tries")


def _shut_down_kernels(url: str) -> None:
    """What the notebook started: its kernel goes (JupyterLab keeps it when the page closes)."""
    headers = {"Authorization": f"token {TOKEN}"}
    with urllib.request.urlopen(urllib.request.Request(f"{url}/api/kernels", headers=headers)) as answer:
        kernels = json.loads(answer.read())
    for kernel in kernels:
        urllib.request.urlopen(urllib.request.Request(f"{url}/api/kernels/{kernel['id']}", method="DELETE",
                                                      headers=headers))


def _wait_idle(page, timeout_ms: int = 600_000) -> None:
    """Until the kernel is idle and no widget says it is computing."""
    page.wait_for_timeout(500)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_ms)
    page.wait_for_function("""() => [...document.querySelectorAll('.tdexplain-status')]
                              .every(s => !s.innerText.includes('computing'))""", timeout=timeout_ms)


def _picture(panel) -> str:
    return panel.locator("img.tdexplain-picture").get_attribute("src")


def _caption(panel) -> str:
    return panel.locator(".tdexplain-caption").inner_text()


def _no_traceback(page) -> None:
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    texts = [errors.nth(i).inner_text() for i in range(errors.count())]
    assert not [t for t in texts if "Traceback" in t or "Error" in t], texts


def _set_slider(panel, label: str, value) -> None:
    """Type into the slider's readout, as a user can (a drag ends the same way: one value)."""
    readout = panel.locator(".widget-slider", has_text=label).locator(".widget-readout")
    readout.click()
    readout.press("Control+A")
    readout.type(str(value))
    readout.press("Enter")


def _text_box(panel, label: str):
    return panel.get_by_label(label, exact=True)


def _select(panel, label: str, value: str) -> None:
    panel.get_by_label(label, exact=True).select_option(value)


def _widget_after_run_all(browser, url: str, notebook: str):
    """A page with the notebook run to its end with no traceback, and its last widget panel."""
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    _run_all(page, url, notebook)
    _no_traceback(page)
    panel = page.locator(".widget-vbox", has=page.locator(".tdexplain-caption")).last
    panel.scroll_into_view_if_needed()
    return page, panel


def _change(page, panel, label: str, value) -> str:
    """Move one control as a user does, wait for the redraw, check that the picture changed,
    and return the caption."""
    before = _picture(panel)
    (_set_slider if label in ("frame", "opacity", "window") else _select)(panel, label, value)
    _wait_idle(page)
    assert _picture(panel) != before, label
    return _caption(panel)


def test_the_explorer_in_jupyterlab(browser, lab, long_video):
    page, panel = _widget_after_run_all(browser, lab, "04_gradcam.ipynb")
    # show(frame=4) starts there, with one picture: the widget's
    assert _caption(panel).startswith("shooting_01, frame 4: IG from blur (pixels)")
    assert page.locator("img.tdexplain-picture").count() == 1
    layer = panel.get_by_label("layer", exact=True)
    assert layer.is_disabled()  # the default method reads pixels
    steps = [("method", "gradcam", "Grad-CAM @ block4_conv4"), ("layer", "block3_conv4", "Grad-CAM @ block3_conv4"),
             ("target", "fight", "for 'fight'"), ("frame", 6, "frame 6:"), ("opacity", 0.8, "frame 6:"),
             ("method", "saliency", "saliency (pixels)")]
    for label, value, expected in steps:
        caption = _change(page, panel, label, value)
        assert expected in caption, (label, caption)
    assert layer.is_disabled()
    # changes queued while a slow method computes: the picture ends on the last one
    _select(panel, "method", "scorecam")
    _select(panel, "method", "layercam")
    _set_slider(panel, "frame", 2)
    _wait_idle(page)
    caption = _caption(panel)
    assert caption.startswith("shooting_01, frame 2: LayerCAM @ block3_conv4") and "for 'fight'" in caption
    # a bad path keeps its error, in red, while other controls move; the box shows a long path whole
    video = _text_box(panel, "video")
    missing = "/home/reviewer/footage/2026-11-30/camera_04_parking_lot_north_entrance/no_such_video.mp4"
    video.fill(missing)
    assert video.evaluate("box => box.scrollWidth <= box.clientWidth"), "the video box cuts the path off"
    video.press("Enter")
    _wait_idle(page)
    error = panel.locator(".tdexplain-status .tdexplain-error")
    assert "still showing shooting_01" in error.inner_text() and f"video '{missing}'" in error.inner_text()
    assert error.evaluate("e => getComputedStyle(e).color") == "rgb(198, 40, 40)"
    _set_slider(panel, "frame", 3)
    _wait_idle(page)
    assert "still showing shooting_01" in panel.locator(".tdexplain-status").inner_text()
    # a longer video: the window control picks which 3 s are explained
    video.fill(str(long_video))
    video.press("Enter")
    _wait_idle(page)
    assert _caption(panel).startswith("long, window 0 (0.0-3.0 s), frame 3: LayerCAM"), _caption(panel)
    caption = _change(page, panel, "window", 2)
    assert caption.startswith("long, window 2 (2.0-5.0 s), frame 3: LayerCAM"), caption
    video.fill("fight_01")
    video.press("Enter")
    _wait_idle(page)
    assert panel.locator(".tdexplain-status").inner_text().strip() == ""
    assert _caption(panel).startswith("fight_01, frame 3: LayerCAM")
    panel.screenshot(path=SHOTS / "explorer.png")
    _no_traceback(page)
    page.close()


def test_the_model_comparison_in_jupyterlab(browser, lab):
    page, panel = _widget_after_run_all(browser, lab, "07_evaluating_explanations.ipynb")
    # 07 opens the comparison at the first frame of the shots (frame 2 of its shooting clip)
    assert _caption(panel).startswith("Grad-CAM @ block4_conv4, frame 2")
    for label, value, expected in (("frame", 5, "frame 5"), ("method", "layercam", "LayerCAM @ block4_conv4, frame 5"),
                                   ("method", "smoothgrad", "SmoothGrad (pixels), frame 5")):
        caption = _change(page, panel, label, value)
        assert expected in caption, (label, caption)
    _no_traceback(page)
    page.close()


def _frame_slider_disabled(page) -> bool:
    readout = page.locator(".widget-slider", has_text="frame").locator(".widget-readout")
    return readout.get_attribute("contenteditable") == "false"


def test_the_app_with_voila(browser, tmp_path, long_video):
    port = _free_port()
    command = [sys.executable, "-m", "voila", str(ROOT / "app" / "reviewer.ipynb"), "--no-browser",
               f"--port={port}", "--Voila.ip=127.0.0.1", f"--token={TOKEN}",
               f"--Voila.config_file_paths={ROOT / 'app'}"]  # the settings `make app` serves it with
    with _server(command, port, f"/?token={TOKEN}") as url:
        page = browser.new_page(viewport={"width": 1100, "height": 1500})
        elsewhere = []  # requests to other hosts (a CDN): none
        page.on("request", lambda request: None if request.url.startswith((url, "data:", "blob:"))
                else elsewhere.append(request.url))
        page.goto(f"{url}/?token={TOKEN}", timeout=180_000)
        page.wait_for_selector("button:has-text('Explain')", timeout=180_000)
        assert "ReviewerApp" not in page.inner_text("body")  # no code shown
        # before the first result: no picture, not even a broken one, and no frame to choose
        assert not page.locator("img.tdexplain-picture").is_visible()
        assert not page.locator("img.tdexplain-timeline").is_visible() and _frame_slider_disabled(page)
        _text_box(page, "video").fill("fight_01")
        _select(page, "method", "gradcam")
        page.click("button:has-text('Explain')")
        page.wait_for_selector(".tdexplain-verdict b", timeout=300_000)
        verdict = page.locator(".tdexplain-verdict").inner_text()
        assert verdict.startswith("fight_01.mp4: fight (p = ") and "; heat: Grad-CAM @ block4_conv4 for" in verdict
        assert page.locator("img.tdexplain-timeline").get_attribute("src") and not _frame_slider_disabled(page)
        first = page.locator("img.tdexplain-picture").get_attribute("src")
        _set_slider(page, "frame", 1)
        page.wait_for_function("""() => document.querySelector('.tdexplain-caption').innerText.startsWith('frame 1 (')""",
                               timeout=60_000)
        assert "heat: Grad-CAM @ block4_conv4 for 'fight'" in page.locator(".tdexplain-caption").inner_text()
        assert page.locator("img.tdexplain-picture").get_attribute("src") != first
        page.screenshot(path=SHOTS / "app.png", full_page=True)
        # the downloads are the files the app wrote, served by Voila: the page holds their addresses
        links = page.locator(".tdexplain-downloads a")
        assert "base64" not in page.locator(".tdexplain-downloads").inner_html()
        overlay = links.first.get_attribute("href")
        assert overlay.startswith("/voila/files/explained/tdexplain_") and overlay.endswith("/overlay.mp4")
        served = page.request.get(url + overlay)
        assert served.ok and served.body() == (ROOT / "app" / overlay.removeprefix("/voila/files/")).read_bytes()
        with page.expect_download() as download:
            page.click("a[download='summary.json']")
        saved = tmp_path / "summary.json"
        download.value.save_as(saved)
        assert '"method": "gradcam"' in saved.read_text()
        # a longer video: the last result goes at once, then the windows are counted as they are done
        page.evaluate("""() => {
            window.seen = [];
            const record = () => window.seen.push([document.querySelector('.tdexplain-status').innerText,
                document.querySelector('.tdexplain-verdict').innerText,
                document.querySelector('img.tdexplain-picture').offsetParent !== null]);
            new MutationObserver(record).observe(document.querySelector('.tdexplain-status'),
                                                 {subtree: true, childList: true, characterData: true});
        }""")
        _text_box(page, "video").fill(str(long_video))
        page.click("button:has-text('Explain')")
        page.wait_for_function("() => document.querySelector('.tdexplain-verdict').innerText.startsWith('long.mp4')",
                               timeout=300_000)
        running = [(status, verdict, shown) for status, verdict, shown in page.evaluate("window.seen") if status]
        assert [status for status, _, _ in running if "windows done" in status] == [
            f"explaining long.mp4: {done} of 4 windows done..." for done in range(5)], running
        assert all(verdict == "" and not shown for _, verdict, shown in running), running
        assert not page.locator(".tdexplain-progress").is_visible()
        # an error: in red, naming the video; no stale picture or frame slider
        _text_box(page, "video").fill("/no/such/video.mp4")
        page.click("button:has-text('Explain')")
        error = page.locator(".tdexplain-status .tdexplain-error")
        error.wait_for(timeout=60_000)
        assert "no sample clip or video file '/no/such/video.mp4'" in error.inner_text()
        assert error.evaluate("e => getComputedStyle(e).color") == "rgb(198, 40, 40)"
        assert not page.locator("img.tdexplain-picture").is_visible() and _frame_slider_disabled(page)
        assert elsewhere == []
        page.close()
