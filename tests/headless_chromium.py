"""Open a page in headless Chromium and report what a reader would meet: console errors,
audio that will not decode, images that will not load; and take a screenshot.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
fd 3 carries commands in, fd 4 replies out, each message JSON ended by a NUL byte), so
no WebDriver, websocket package or network port is needed, only the ``chromium``
binary (Debian package ``chromium``). By hand:

    .venv/bin/python tests/headless_chromium.py results/<name>/report.html shot.png
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BINARIES = ("chromium", "chromium-browser", "google-chrome")
# The flags: no sandbox (containers run as root), no GPU, and nothing that
# phones home, so a check never depends on the network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--mute-audio", "--remote-debugging-pipe"]

# Resolves once every <audio> has its metadata (or failed) and every <img> has loaded (or failed).
# Durations go out as strings when not finite: JSON has no NaN or Infinity.
MEDIA_STATE_JS = """(async () => {
  const settle = (el, ready, events, read) => new Promise(done => {
    const finish = () => done(read());
    if (ready()) return finish();
    for (const e of events) el.addEventListener(e, finish, {once: true});
    setTimeout(finish, %d);
  });
  const audio = await Promise.all([...document.querySelectorAll('audio')].map(a => settle(a,
    () => a.readyState >= 1 || a.error, ['loadedmetadata', 'error'],
    () => ({src: a.getAttribute('src'), duration: isFinite(a.duration) ? a.duration : String(a.duration),
            error: a.error ? `${a.error.code} ${a.error.message}` : null}))));
  const images = await Promise.all([...document.images].map(img => settle(img,
    () => img.complete, ['load', 'error'],
    () => ({src: img.getAttribute('src'), width: img.naturalWidth, height: img.naturalHeight}))));
  return {audio, images};
})()"""


def find_chromium() -> str | None:
    """Path of a Chromium binary on PATH, or None."""
    return next((p for p in map(shutil.which, BINARIES) if p), None)


class DevToolsPipe:
    """A headless Chromium with a fresh profile, and a blocking DevTools client for it."""

    def __init__(self, binary: str, width: int = 1400, height: int = 900):
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_child, self._out = os.pipe()
        self._in, from_child = os.pipe()
        # Lift the child's ends above the fds the redirection writes (3, 4); bash, as dash takes single digits only.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_child, from_child)]
        for fd in (to_child, from_child):
            os.close(fd)
        self.log = open(Path(self.profile) / "chromium.log", "wb")
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{high[0]} 4>&{high[1]} {high[0]}<&- {high[1]}>&-', binary, *FLAGS,
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            pass_fds=high, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        for fd in high:
            os.close(fd)
        self._buffer, self._next_id, self.events = b"", 0, []

    # ------------------------------------------------------------------ protocol

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited; its log: {self.log_text()[-2000:]}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        """Run one command and return its result; events that arrive meanwhile go to ``events``."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict:
        """The first event named ``method`` (already received or the next to come)."""
        deadline = time.monotonic() + timeout
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._read(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def log_text(self) -> str:
        self.log.flush()
        return (Path(self.profile) / "chromium.log").read_text(errors="replace")

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:  # it may already be gone; killing it below is enough
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._in, self._out):
            os.close(fd)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def console_errors(events: list[dict]) -> list[str]:
    """Error messages among DevTools events: console.error, uncaught exceptions, and
    browser log entries of level 'error' (a resource that failed to load, a blocked request)."""
    errors = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
        elif method == "Runtime.exceptionThrown":
            details = p["exceptionDetails"]
            errors.append("exception: " + details.get("exception", {}).get("description", details.get("text", "")))
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            errors.append(f"log ({p['entry']['source']}): {p['entry']['text']} {p['entry'].get('url', '')}".strip())
    return errors


def check_page(page: Path, screenshot: Path, binary: str | None = None, timeout: float = 60.0) -> dict:
    """Load ``page`` (a local HTML file) in headless Chromium, wait for its media, write a
    full-page PNG to ``screenshot``.

    Returns {'errors': [str], 'audio': [{'src', 'duration' (s, or a string when not
    finite), 'error'}], 'images': [{'src', 'width', 'height'}]} with the natural size of
    every image (0 when it failed) and the decoded duration of every <audio>.
    """
    binary = binary or find_chromium()
    if not binary:
        raise FileNotFoundError("no Chromium on PATH (Debian: apt-get install chromium)")
    browser = DevToolsPipe(binary)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        browser.events.clear()
        browser.send("Page.navigate", {"url": Path(page).resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired", timeout)
        state = browser.send("Runtime.evaluate", {"expression": MEDIA_STATE_JS % int(timeout * 500),
                                                  "awaitPromise": True, "returnByValue": True},
                             session=session, timeout=timeout)
        if "exceptionDetails" in state:
            raise RuntimeError(f"media check failed: {state['exceptionDetails']}")
        size = browser.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
        shot = browser.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}},
            session=session, timeout=timeout)
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
        return {"errors": console_errors(browser.events), **state["result"]["value"]}
    finally:
        browser.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} PAGE.html SCREENSHOT.png")
    result = check_page(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps(result, indent=1))
    bad = (result["errors"] or [a for a in result["audio"] if not isinstance(a["duration"], (int, float))]
           or [i for i in result["images"] if not i["width"]])
    sys.exit(1 if bad else 0)
