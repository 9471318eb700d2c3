"""The interactive Figure 1 (docs/interactive/figure1.html) in a real headless browser.

Chromium is started headless on the page (file://, no server), driven over the Chrome DevTools protocol with the
`websockets` client: a slider is moved with real key presses (focus, ArrowRight), others are set and sent an
`input` event as a drag would, and the numbers the page displays are read back and compared with the Python closed
form (toy.regime.gibbs_point, toy.exact_bandit.kept_count). Skipped, with the reason, when no Chromium or Chrome
is installed (CI installs Debian's `chromium` in .ci/run).

`python tests/test_interactive.py` rewrites the screenshot kept in the docs (docs/interactive/figure1.png).
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from toy.exact_bandit import kept_count
from toy.regime import TrapRegime, gibbs_point

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "interactive" / "figure1.html"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--window-size=1000,1120"]


def _browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


class Page:
    """One page of a headless Chromium, driven over the DevTools protocol (one websocket, synchronous calls)."""

    def __init__(self, ws):
        self.ws, self.next_id = ws, 0

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:  # skip events until our reply
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def text(self, element_id: str) -> str:
        return self.js(f"document.getElementById({element_id!r}).textContent")

    def set_slider(self, element_id: str, value: float) -> None:
        """Set a range input and fire the `input` event a drag fires."""
        self.js(f"(() => {{ const e = document.getElementById({element_id!r}); e.value = {value!r}; "
                "e.dispatchEvent(new Event('input', {bubbles: true})); })()")

    def press_right(self, element_id: str, times: int = 1) -> None:
        """Move a slider with the keyboard: focus it, then real ArrowRight key presses."""
        self.js(f"document.getElementById({element_id!r}).focus()")
        for _ in range(times):
            for kind in ("rawKeyDown", "keyUp"):
                self.call("Input.dispatchKeyEvent", type=kind, key="ArrowRight", code="ArrowRight",
                          windowsVirtualKeyCode=39, nativeVirtualKeyCode=39)


@contextlib.contextmanager
def open_page(path: Path, ready: str = "!!window.figure1State"):
    """Start headless Chromium on ``path`` and yield a :class:`Page` once the document has loaded and the
    JavaScript expression ``ready`` is true."""
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium or Chrome installed (apt-get install chromium); CI installs it in .ci/run")
    sync_client = pytest.importorskip("websockets.sync.client", reason="needs the websockets package (test extra)")
    with tempfile.TemporaryDirectory(prefix="aent-chromium-") as profile:
        proc = subprocess.Popen([browser, *FLAGS, f"--user-data-dir={profile}", path.as_uri()],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.time() + 60
            while not (port_file.is_file() and port_file.read_text().strip()):
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail(f"{browser} did not open a DevTools port (exit code {proc.poll()})")
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            pages = []
            while not pages and time.time() < deadline:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
                    pages = [t for t in json.load(resp) if t.get("type") == "page"]
                time.sleep(0.1)
            with sync_client.connect(pages[0]["webSocketDebuggerUrl"], max_size=None) as ws:
                page = Page(ws)
                while page.js("document.readyState") != "complete" or not page.js(ready):
                    if time.time() > deadline:
                        pytest.fail("the page did not finish loading")
                    time.sleep(0.1)
                yield page
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _expected(n: int, m: int, traps: int, lam: float, p: float, r: float) -> dict:
    regime = TrapRegime(n_items=n, n_traps=traps, trap_reward=r)
    kept = kept_count(n, p)
    full, clamped = gibbs_point(regime, m, lam, n), gibbs_point(regime, m, lam, kept)
    return {"kept": kept, "v-none": r, "v-full": full["value"], "v-clamped": clamped["value"],
            "popt-full": full["p_opt"], "popt-clamped": clamped["p_opt"],
            "bias-full": 1 - full["value"], "bias-clamped": 1 - clamped["value"],
            "bound-full": lam * (math.log(n) - math.log(m)), "bound-clamped": lam * (math.log(kept) - math.log(m))}


def _check(page: Page, n: int, m: int, traps: int, lam: float, p: float, r: float) -> None:
    want = _expected(n, m, traps, lam, p, r)
    assert int(page.text("kept").replace(",", "")) == want.pop("kept")
    for element_id, value in want.items():
        shown = float(page.text(element_id))  # the page shows 4 decimals
        assert shown == pytest.approx(value, abs=6e-5), (element_id, shown, value)
    v_full, v_clamped = want["v-full"], want["v-clamped"]
    assert page.text("verdict-full").startswith("beats" if v_full > r else "loses")
    assert page.text("verdict-clamped").startswith("beats" if v_clamped > r else "loses")


def test_interactive_figure1_matches_the_closed_form():
    """Load the page, move sliders, read the displayed fixed points and bounds, compare with toy.regime."""
    with open_page(PAGE) as page:
        # the initial state: |A| = 10^5, m = 5, 10 traps, lambda = 0.1, p = 0.9, r = 0.6
        assert page.text("show-arms") == "100,000" and page.text("show-m") == "5"
        _check(page, 100_000, 5, 10, 0.1, 0.9, 0.6)
        page.press_right("m", 5)  # m 5 -> 10 with the keyboard
        assert page.text("show-m") == "10"
        _check(page, 100_000, 10, 10, 0.1, 0.9, 0.6)
        # the Figure-1 pattern at this lambda: the full bonus loses at m = 5 and wins at m = 10
        assert page.text("verdict-full").startswith("beats")
        page.set_slider("m", 5)
        assert page.text("verdict-full").startswith("loses") and page.text("verdict-clamped").startswith("beats")
        # every other slider
        page.set_slider("log-lambda", -0.7)
        page.set_slider("p", 0.33)
        page.set_slider("trap-reward", 0.3)
        page.set_slider("traps", 40)
        page.set_slider("log-arms", 7.3)
        lam, n = 10 ** -0.7, round(10 ** 7.3)
        _check(page, n, 5, 40, lam, 0.33, 0.3)


def test_interactive_figure1_says_when_the_clamp_removes_the_optimum():
    """When the kept set cannot hold every optimal and trap arm, the page says the premise fails."""
    with open_page(PAGE) as page:
        page.set_slider("log-arms", 2)
        page.set_slider("p", 0.9)  # 10 of 100 arms kept, fewer than m + traps + 1 = 16
        assert page.text("v-clamped") == "n/a" and page.text("verdict-clamped").startswith("premise fails")


def screenshot(path: Path = REPO / "docs" / "interactive" / "figure1.png") -> None:
    """Write the docs' screenshot of the page at its initial state."""
    with open_page(PAGE) as page:
        data = page.call("Page.captureScreenshot", format="png")["data"]
    path.write_bytes(base64.b64decode(data))


if __name__ == "__main__":
    screenshot()


def test_bundled_mathjax_typesets_offline(tmp_path):
    """The site's MathJax is the bundled copy (no URL in mkdocs.yml) and typesets both kinds of math offline:
    arithmatex's \\( \\) of the Markdown pages and the $ ... $ of the tutorial notebooks."""
    import yaml

    scripts = yaml.safe_load((REPO / "mkdocs.yml").read_text())["extra_javascript"]
    assert scripts and not [s for s in scripts if "://" in s], f"MathJax must be bundled, not loaded from {scripts}"
    for script in scripts:
        assert (REPO / "docs" / script).is_file(), script
    js = REPO / "docs" / "javascripts"
    page = tmp_path / "math.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<script src='{(js / 'mathjax-config.js').as_uri()}'></script>"
        f"<script src='{(js / 'mathjax' / 'tex-chtml.js').as_uri()}'></script></head><body>"
        "<p><span class='arithmatex'>\\(\\lVert\\nabla_\\theta V\\rVert \\le 2H\\)</span></p>"
        "<p>notebook math $\\tilde H_p$ and</p><p>$$\\boxed{\\frac{\\partial H}{\\partial z_a}}$$</p>"
        "<pre>$ python -m toy --help</pre></body></html>")
    with open_page(page, ready="true") as tab:
        deadline = time.time() + 30
        while not tab.js("!!(window.MathJax && MathJax.startup && MathJax.startup.promise)"):
            assert time.time() < deadline, "MathJax did not start"
            time.sleep(0.1)
        tab.js("MathJax.startup.promise.then(() => { window.typeset = true; })")
        while not tab.js("!!window.typeset"):
            assert time.time() < deadline, "MathJax did not typeset"
            time.sleep(0.1)
        assert tab.js("document.querySelectorAll('mjx-container').length") == 3
        assert tab.js("document.querySelectorAll('mjx-merror').length") == 0
        assert tab.js("document.querySelector('pre').textContent") == "$ python -m toy --help"
        # the bundled woff-v2 fonts load (a missing font file would leave them 'error')
        tab.js("document.fonts.ready.then(() => { window.fontsDone = true; })")
        while not tab.js("!!window.fontsDone"):
            assert time.time() < deadline, "fonts did not load"
            time.sleep(0.1)
        status = tab.js("[...document.fonts].filter(f => f.family.startsWith('MJX')).map(f => f.status)")
        assert status and "loaded" in status and "error" not in status, status
