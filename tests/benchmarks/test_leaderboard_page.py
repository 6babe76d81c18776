"""The leaderboard page in a real browser (headless Chromium driven over the DevTools protocol) and the forest PNG."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from benchmarks.leaderboard_page import forest_png, html

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
DELTA_HEADER = 6  # 1-based position of the Δ header in a column's table


def _cell(column: str, label: str, family: str, delta: float | None, selected: bool = False,
          marks: tuple[str, ...] = ()) -> dict:
    seeds = [0, 1, 2, 3] if delta is not None else [0]
    return {"column": column, "label": label, "family": family, "spec": f"{family}:{label.split()[-1]}",
            "temperature": 0.2, "stage": 1, "seeds": seeds, "scores": {str(s): 60.0 + s for s in seeds},
            "baseline_scores": {str(s): 59.0 + s for s in seeds} if delta is not None else {},
            "mean": 61.5, "delta": delta, "se": None if delta is None else 0.4,
            "ci95": None if delta is None else [delta - 1.2, delta + 1.2], "p": None if delta is None else 0.02,
            "p_adjusted": None if delta is None else 0.08, "correction": "image:CIFAR-10", "selected": selected,
            "marks": list(marks), "command": f"python -m image train --objective '{family}' --seed 0"}


def _column(modality: str, dataset: str, mde: float | None) -> dict:
    return {"id": f"{modality}:{dataset}", "modality": modality, "dataset": dataset, "metric": "accuracy",
            "baseline": "ntxent t=0.2", "baseline_spec": "ntxent", "baseline_temperature": 0.2, "protocol": 1,
            "stage1_seeds": [0, 1, 2, 3], "mde": mde, "baseline_mean": 60.5, "untrained_delta": -20.0}


def _data() -> dict:
    """Three modalities, two columns in image, cells without a Δ, rows deliberately not in Δ order."""
    cifar = "image:CIFAR-10"
    cells = [_cell(cifar, "ntxent t=0.2", "ntxent", None), _cell(cifar, "hard beta=1", "hard", 1.2, True, ("H", "C")),
             _cell(cifar, "debiased tau+=0.1", "debiased", -0.5, True), _cell(cifar, "hard beta=2", "hard", 3.87),
             _cell(cifar, "mochi n=64", "mochi", None), _cell(cifar, "fnc k=4", "fnc", -2.1, True),
             _cell("image:STL-10", "hard beta=1", "hard", 0.3, True), _cell("image:STL-10", "a <b>&", "fnc", -0.1),
             _cell("graph:MUTAG", "jsd beta=10", "hard", 2.5, True, ("H",)), _cell("graph:MUTAG", "jsd plain", "jsd", None),
             _cell("sentence:MR", "hard beta=5", "hard", -0.2, True), _cell("sentence:MR", "debiased", "debiased", 0.1)]
    claim = {"id": "r6-hard-cifar", "round": "6", "column": cifar, "family": "hard", "label": "hard beta=1",
             "spec": "hard:beta=1", "temperature": 0.2, "baseline": "ntxent t=0.2", "seeds": [4, 5], "scores": {},
             "baseline_scores": {}, "delta": 0.9, "se": 0.3, "ci95": [0.1, 1.7], "p": 0.01, "p_adjusted": 0.02,
             "correction": "round 6", "verdict": "gain", "mde": 0.7, "command": "python -m image train --seed 4"}
    pooled = {**claim, "id": "r5-graph", "column": "graph:mean of 6", "verdict": "no effect", "delta": 0.1}
    return {"schema": 1, "provenance": "12 records, commit abc123, 2-core Xeon",
            "columns": [_column("image", "CIFAR-10", 0.8), _column("image", "STL-10", None),
                        _column("graph", "MUTAG", 2.5), _column("sentence", "MR", 0.5)],
            "cells": cells, "claims": [claim, pooled],
            "verdicts": {"image": "Hard negatives help on CIFAR-10.", "graph": "No gain beyond noise.",
                         "sentence": "No gain beyond noise."},
            "history": "Round 4's H on PROTEINS was superseded by round 5."}


class DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe: NUL-terminated JSON on the child's fds 3 and 4."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_browser, self._out = os.pipe()
        self._in, from_browser = os.pipe()
        # The child must find the pipes at fds 3 and 4; copies above 9 cannot be clobbered by the dup2 onto them.
        child_in, child_out = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser, from_browser))

        def wire() -> None:
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        flags = ["--headless=new", "--remote-debugging-pipe", f"--user-data-dir={profile}", "--no-sandbox",
                 "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                 "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--hide-scrollbars", "about:blank"]
        self.process = subprocess.Popen([binary, *flags], close_fds=False, preexec_fn=wire,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (to_browser, from_browser, child_in, child_out):
            os.close(fd)
        self._buffer, self._id, self.events = b"", 0, []
        self.session: str | None = None

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._in], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, "Chromium did not answer in time"
            chunk = os.read(self._in, 1 << 20)
            assert chunk, f"Chromium closed the pipe (exit code {self.process.poll()})"
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message = json.loads(raw)
        if "method" in message:
            self.events.append(message)
        return message

    def send(self, method: str, timeout: float = 30.0, browser: bool = False, **params) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if self.session and not browser:
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while (reply := self._receive(deadline)).get("id") != self._id:
            pass
        assert "error" not in reply, f"{method}: {reply['error']}"
        return reply["result"]

    def wait_for(self, event: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while not any(e["method"] == event for e in self.events):
            self._receive(deadline)
        return next(e for e in self.events if e["method"] == event)

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", browser=True, url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", browser=True, targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
        self.send("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse press and release at the element's centre, so a covered or inert control fails the test."""
        x, y = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                             "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
                             "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path: Path) -> None:
        height = self.send("Page.getLayoutMetrics")["cssContentSize"]["height"]
        clip = {"x": 0, "y": 0, "width": 1280, "height": min(height, 4000), "scale": 1}
        self.evaluate("window.scrollTo(0, 0)")
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        with contextlib.suppress(AssertionError, OSError):
            self.send("Browser.close", timeout=10, browser=True)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._in)
        os.close(self._out)


def _visible_labels(browser: DevTools, scope: str) -> list[str]:
    return browser.evaluate(f"[...document.querySelectorAll({json.dumps(scope + ' tbody tr')})]"
                            ".filter(r => r.getClientRects().length).map(r => r.cells[0].textContent)")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install chromium); "
                                              ".ci/run installs it when apt can")
def test_the_page_switches_tabs_sorts_filters_and_logs_no_error_in_headless_chromium(tmp_path):
    data = _data()
    page = tmp_path / "leaderboard.html"
    page.write_text(html(data), encoding="ascii")
    browser = DevTools(CHROMIUM, tmp_path / "profile")
    try:
        browser.open(page.as_uri())
        modalities = ["image", "graph", "sentence"]
        assert browser.evaluate("[...document.querySelectorAll('[role=tab]')].map(t => t.textContent)") == modalities
        for i, modality in enumerate(modalities):
            browser.click(f"#tab-{i}")
            assert browser.evaluate("[...document.querySelectorAll('[role=tab]')]"
                                    ".map(t => t.getAttribute('aria-selected'))") == [str(j == i).lower() for j in range(3)]
            assert browser.evaluate("[...document.querySelectorAll('[role=tabpanel]')].filter(p => !p.hidden)"
                                    ".map(p => p.id)") == [f"panel-{i}"]
            columns = [c["id"] for c in data["columns"] if c["modality"] == modality]
            expected = sorted(c["label"] for c in data["cells"] if c["column"] in columns)
            assert sorted(_visible_labels(browser, f"#panel-{i} section")) == expected
            assert browser.evaluate(f"document.querySelector('#panel-{i} .verdict').textContent") == \
                data["verdicts"][modality]
            claims = [c["label"] for c in data["claims"] if c["column"].split(":")[0] == modality]
            assert browser.evaluate(f"document.querySelectorAll('#panel-{i} table:not(section table) tbody tr')"
                                    ".length") == len(claims)
            browser.screenshot(tmp_path / f"leaderboard-{modality}.png")

        browser.click("#tab-0")
        cifar = [c for c in data["cells"] if c["column"] == "image:CIFAR-10"]
        run = sorted((c for c in cifar if c["delta"] is not None), key=lambda c: c["delta"])
        unpaired = [c["label"] for c in cifar if c["delta"] is None]  # empty cells stay last, in their order
        assert _visible_labels(browser, "#col-0-0") == [c["label"] for c in cifar]
        browser.click(f"#col-0-0 th:nth-child({DELTA_HEADER}) button")
        assert _visible_labels(browser, "#col-0-0") == [c["label"] for c in run] + unpaired
        assert browser.evaluate(f"document.querySelector('#col-0-0 th:nth-child({DELTA_HEADER})')"
                                ".getAttribute('aria-sort')") == "ascending"
        browser.click(f"#col-0-0 th:nth-child({DELTA_HEADER}) button")
        assert _visible_labels(browser, "#col-0-0") == [c["label"] for c in reversed(run)] + unpaired
        browser.click("#col-0-0 th:nth-child(1) button")
        assert _visible_labels(browser, "#col-0-0") == sorted(c["label"] for c in cifar)

        browser.click('#col-0-0 fieldset input[value="hard"]')
        assert _visible_labels(browser, "#col-0-0") == sorted(c["label"] for c in cifar if c["family"] != "hard")
        assert browser.evaluate("[...document.querySelectorAll('#col-0-0 svg g[data-family=hard]')]"
                                ".map(g => getComputedStyle(g).display)") == ["none", "none"]
        assert _visible_labels(browser, "#col-0-1") == ["hard beta=1", "a <b>&"]  # other columns keep their rows
        browser.click('#col-0-0 fieldset input[value="hard"]')
        assert len(_visible_labels(browser, "#col-0-0")) == len(cifar)

        # The forest plot ranks by Δ and every row carries its spec, seeds and command.
        assert browser.evaluate("[...document.querySelectorAll('#col-0-0 svg g')].map(g => g.querySelector('text')"
                                ".textContent)") == [c["label"] for c in reversed(run)]
        tips = browser.evaluate("[...document.querySelectorAll('#col-0-0 svg g title')].map(t => t.textContent)")
        assert [f"spec {c['spec']}, seeds 0, 1, 2, 3, command {c['command']}" in t
                for c, t in zip(reversed(run), tips, strict=True)] == [True] * len(run)
        details = browser.evaluate("[...document.querySelectorAll('#col-0-0 tbody details')].map(d => d.textContent)")
        assert len(details) == len(cifar) and all("python -m image train" in d for d in details)
        assert browser.evaluate("document.querySelector('#col-0-0 rect').getAttribute('width')") != "0"

        browser.click("#tab-0")
        browser.screenshot(tmp_path / "leaderboard.png")
    finally:
        browser.close()
    problems = [e for e in browser.events if e["method"] in ("Runtime.exceptionThrown", "Page.javascriptDialogOpening")
                or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
                or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))]
    assert not problems, problems
    requested = {e["params"]["request"]["url"] for e in browser.events if e["method"] == "Network.requestWillBeSent"}
    assert requested == {page.as_uri()}, requested  # no CDN, no network: the file alone
    assert (tmp_path / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_text_field_is_escaped_and_nothing_is_fetched():
    data = _data()
    data["cells"][1]["label"] = "<script>alert(1)</script>"
    data["cells"][1]["command"] = "run --name \"x\" && echo '<y>'"
    data["verdicts"]["graph"] = "</p><script>alert(2)</script>"
    page = html(data)
    assert page.count("<script") == 1 and "alert(" not in page.split("<script>")[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;/p&gt;&lt;script&gt;alert(2)" in page
    assert "&quot;x&quot; &amp;&amp; echo &#x27;&lt;y&gt;&#x27;" in page
    assert not re.search(r"\b(src|href)=|https?://|@import", page)
    assert page.isascii() and "&#916;" in page  # Δ as a character reference: any file encoding reads it


def test_forest_png_writes_a_ranked_png(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import image, pyplot

    path = tmp_path / "forest.png"
    forest_png(_data(), path, pyplot)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = image.imread(path).shape
    assert width == round(3 * 4.6 * 120) and height > 200  # three panels a row at dpi 120
