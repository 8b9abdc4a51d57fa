"""Headless Chromium driven over the DevTools protocol (a websocket), for the explorer page's tests and benchmark.

The distribution's `chromium` runs with `--headless=new --remote-debugging-port=0`; the port it picked
is read from `DevToolsActivePort` in its throw-away profile folder. Every console error, uncaught
exception and browser log error of the page is collected in `Browser.errors`.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The first Chromium-family browser on PATH ($CHROMIUM first), None if there is none."""
    for name in ([os.environ["CHROMIUM"]] if os.environ.get("CHROMIUM") else []) + list(CANDIDATES):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium with one page. `with Browser(path) as b: b.open(url); b.eval("1 + 1")`."""

    def __init__(self, executable: str, width: int = 1400, height: int = 1000, timeout: float = 60.0):
        self.executable, self.width, self.height, self.timeout = executable, width, height, timeout
        self.errors: list[str] = []
        self.events: list[dict[str, Any]] = []
        self._consumed = 0  # events before this index were waited for
        self._id = 0

    def __enter__(self) -> "Browser":
        import websocket  # websocket-client (the dev extra)

        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self.proc = subprocess.Popen(
            [self.executable, "--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--disable-dev-shm-usage", "--hide-scrollbars",
             f"--user-data-dir={self.profile}", "--remote-debugging-port=0", f"--window-size={self.width},{self.height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        try:
            port = self._port()
            targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
            page = next(t for t in targets if t.get("type") == "page")
            self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=self.timeout, suppress_origin=True,
                                                  enable_multithread=False)
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable")
            self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _port(self) -> int:
        marker = Path(self.profile) / "DevToolsActivePort"
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            if marker.is_file() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}: {self.proc.stderr.read()[-2000:]}")
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    def __exit__(self, *exc) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)

    # the protocol
    def _record(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        self.events.append(message)
        if method == "Runtime.exceptionThrown":
            d = params["exceptionDetails"]
            self.errors.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')} (line {d.get('lineNumber')})")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append("console." + params["type"] + ": " + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.errors.append(f"log ({params['entry'].get('source')}): {params['entry'].get('text')} {params['entry'].get('url', '')}")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Sends one command and returns its result (events that arrive meanwhile are recorded)."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._record(message)

    def wait_for(self, event: str, timeout: float | None = None) -> dict[str, Any]:
        """The first `event` not waited for yet (events that came during earlier commands count)."""
        deadline = time.time() + (timeout or self.timeout)
        while True:
            for k in range(self._consumed, len(self.events)):
                if self.events[k].get("method") == event:
                    self._consumed = k + 1
                    return self.events[k]
            if time.time() >= deadline:
                raise TimeoutError(f"no {event} within the timeout")
            self.ws.settimeout(max(0.1, deadline - time.time()))
            try:
                self._record(json.loads(self.ws.recv()))
            finally:
                self.ws.settimeout(self.timeout)

    def poll(self, expression: str, timeout: float | None = None) -> Any:
        """Evaluates `expression` until it is truthy (e.g. after a click whose effect is asynchronous)."""
        deadline = time.time() + (timeout or self.timeout)
        while True:
            value = self.eval(expression)
            if value or time.time() >= deadline:
                if not value:
                    raise TimeoutError(f"{expression!r} stayed falsy")
                return value
            time.sleep(0.05)

    # what the tests use
    def open(self, url: str) -> None:
        """Navigates and waits for the load event."""
        self._consumed = len(self.events)
        self.send("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            d = result["exceptionDetails"]
            raise RuntimeError(f"{expression!r} threw: {d.get('exception', {}).get('description') or d.get('text')}")
        return result["result"].get("value")

    def type_into(self, selector: str, text: str) -> None:
        """Focuses an input, clears it and types `text` as keyboard input (input events fire as for a user)."""
        self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.focus(); e.select(); }})()")
        if text:
            self.send("Input.insertText", text=text)
        else:  # nothing to type: delete the selection
            self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.value = ''; e.dispatchEvent(new Event('input')); }})()")

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        """A PNG of the page (the whole page with `full_page`: the viewport is stretched to the page's height
        first, so that content drawn only on screen, e.g. content-visibility: auto, is drawn too)."""
        frame = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(document.documentElement.scrollHeight))))"
        if full_page:
            height = self.eval(frame)
            for _ in range(5):  # drawn cards take their real heights: measure until the height settles
                self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=min(int(height), 16000), deviceScaleFactor=1, mobile=False)
                height, previous = self.eval(frame), height
                if height == previous:
                    break
        try:
            data = self.send("Page.captureScreenshot", format="png")["data"]
        finally:
            if full_page:
                self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1, mobile=False)
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path
