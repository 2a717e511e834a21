"""A tiny WebDriver (W3C) client for headless Chromium, standard library only.

Starts ``chromedriver --port=<free port>``, opens a headless Chromium session, loads local
pages, runs scripts and takes screenshots; used by the report tests and to capture the
bench report for notes::

    python tools/browser.py screenshot runs/demo/report.html first-screen.png
    python tools/browser.py screenshot runs/demo/report.html full.png --full
    python tools/browser.py screenshot runs/demo/report.html fig.png --selector 'figure img'
    python tools/browser.py check runs/demo/report.html      # images loaded, tables, title

Needs ``chromedriver`` and ``chromium`` (Debian: ``apt-get install chromium
chromium-driver``; ``make browser`` does it). ``CHROMEDRIVER`` and ``CHROMIUM`` override where
they are looked up.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # W3C web element reference key
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ARGS = (
    "--headless=new",
    "--no-sandbox",  # needed as root (containers, CI); the page is a local, trusted file
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
)  # plus --window-size=WIDTH,HEIGHT (1280,900 by default)

# Images' state; lazy images are made eager so that a page is judged on all of them.
_IMAGES = """
const imgs = Array.from(document.images);
for (const img of imgs) { if (img.loading === 'lazy') img.loading = 'eager'; }
return {
  ready: document.readyState === 'complete' && imgs.every(i => i.complete),
  images: imgs.map(i => ({src: i.getAttribute('src') || '',
                          loaded: i.complete && i.naturalWidth > 0})),
  tables: document.querySelectorAll('table').length,
  title: document.title,
};
"""


class BrowserError(RuntimeError):
    """chromedriver or the browser failed."""


def find_driver() -> str | None:
    return os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")


def find_chromium() -> str | None:
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    if os.path.exists("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


@functools.cache
def browser_available() -> str | None:
    """None when a headless browser can be started here, else the reason it cannot."""
    if find_driver() is None:
        return "chromedriver not found (Debian: apt-get install chromium chromium-driver)"
    if find_chromium() is None:
        return "chromium not found (Debian: apt-get install chromium)"
    try:
        with Browser(timeout=30) as b:
            if b.run("return 1 + 1") != 2:
                return "headless chromium does not run scripts"
    except (BrowserError, OSError) as e:
        return f"headless chromium does not start: {e}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """A headless Chromium session driven through chromedriver::

    with Browser() as b:
        b.open("report.html")
        b.run("return document.title")
        b.screenshot("shot.png")
    """

    def __init__(
        self,
        *,
        width: int = 1280,
        height: int = 900,
        timeout: float = 60,
        driver: str | None = None,
        binary: str | None = None,
    ) -> None:
        self.size = (width, height)
        self.timeout = timeout
        self.driver = driver or find_driver()
        self.binary = binary or find_chromium()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.session = ""
        # Talk to 127.0.0.1 directly even when http_proxy is set.
        self._http = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- life cycle -------------------------------------------------------------------
    def __enter__(self) -> Browser:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        if self.driver is None:
            raise BrowserError("chromedriver not found")
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [self.driver, f"--port={port}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: close() kills the browser too
        )
        deadline = time.monotonic() + min(self.timeout, 20)
        while True:
            if self.proc.poll() is not None:
                raise BrowserError(f"chromedriver exited with status {self.proc.returncode}")
            try:
                if self._call("GET", "/status").get("ready"):
                    break
            except (BrowserError, OSError):
                pass
            if time.monotonic() > deadline:
                raise BrowserError("chromedriver did not become ready")
            time.sleep(0.05)
        width, height = self.size
        options: dict[str, Any] = {"args": [*ARGS, f"--window-size={width},{height}"]}
        if self.binary:
            options["binary"] = self.binary
        ms = int(self.timeout * 1000)
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "goog:chromeOptions": options,
                    "timeouts": {"pageLoad": ms, "script": ms},
                }
            }
        }
        self.session = self._call("POST", "/session", caps)["sessionId"]
        # --window-size is the outer window: grow it so that the viewport is width x height.
        extra = self.run("return window.outerHeight - window.innerHeight") or 0
        if extra > 0:
            self._s("POST", "/window/rect", {"width": width, "height": height + extra})

    def close(self) -> None:
        """End the session and always kill chromedriver (and whatever it left running)."""
        if self.session:
            try:
                self._call("DELETE", f"/session/{self.session}", timeout=10)
            except (BrowserError, OSError):
                pass
            self.session = ""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                proc.poll()
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue

    # -- protocol ---------------------------------------------------------------------
    def _call(
        self, method: str, path: str, body: Any = None, *, timeout: float | None = None
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json; charset=utf-8")
        try:
            with self._http.open(req, timeout=timeout or self.timeout + 10) as resp:
                payload = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                value = json.loads(e.read()).get("value", {})
                msg = f"{value.get('error', e.code)}: {value.get('message', '')}"
            except (ValueError, AttributeError):
                msg = str(e)
            raise BrowserError(f"{method} {path}: {msg.splitlines()[0] if msg else e}") from None
        return payload.get("value")

    def _s(self, method: str, path: str, body: Any = None) -> Any:
        if not self.session:
            raise BrowserError("no session: use Browser as a context manager")
        return self._call(method, f"/session/{self.session}{path}", body)

    # -- commands ---------------------------------------------------------------------
    def open(self, page: str | Path) -> None:
        """Load a local file (or an URL) and wait until the document is complete."""
        url = str(page)
        if "://" not in url:
            url = Path(page).resolve().as_uri()
        self._s("POST", "/url", {"url": url})
        self.wait("return document.readyState === 'complete'")

    def run(self, script: str, *args: Any) -> Any:
        """Run a function body (``return ...``) in the page; ``arguments[i]`` are ``args``."""
        return self._s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait(self, script: str, *args: Any, timeout: float | None = None) -> Any:
        """Poll ``script`` until it returns something truthy; return that."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            value = self.run(script, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for: {script}")
            time.sleep(0.05)

    def find(self, selector: str) -> dict[str, str]:
        """The first element matching a CSS selector (a W3C element reference)."""
        return self._s("POST", "/element", {"using": "css selector", "value": selector})

    def screenshot(
        self, path: str | Path | None = None, *, full: bool = False, selector: str | None = None
    ) -> bytes:
        """PNG bytes of the viewport, the whole page (``full``) or one element
        (``selector``, scrolled into view); written to ``path`` when given."""
        if selector is not None:
            element = self.find(selector)
            self.run("arguments[0].scrollIntoView({block: 'center'})", element)
            png = self._s("GET", f"/element/{element[ELEMENT]}/screenshot")
        elif full:
            rect = self._s("GET", "/window/rect")
            chrome = self.run("return window.outerHeight - window.innerHeight") or 0
            height = self.run(
                "return Math.max(document.documentElement.scrollHeight,"
                " document.body ? document.body.scrollHeight : 0)"
            )
            self._s("POST", "/window/rect", {"width": rect["width"], "height": height + chrome})
            try:
                self.run("window.scrollTo(0, 0)")
                png = self._s("GET", "/screenshot")
            finally:
                self._s("POST", "/window/rect", {"width": rect["width"], "height": rect["height"]})
        else:
            png = self._s("GET", "/screenshot")
        data = base64.b64decode(png)
        if path is not None:
            Path(path).write_bytes(data)
        return data


def _short(src: str) -> str:
    return src if len(src) <= 120 or not src.startswith("data:") else src[:60] + "..."


def page_state(b: Browser, *, timeout: float | None = None) -> dict[str, Any]:
    """Images (src, loaded), number of tables and title of the page open in ``b``, once the
    document and all its images are complete (or ``timeout`` passed)."""
    deadline = time.monotonic() + (b.timeout if timeout is None else timeout)
    while True:
        state = b.run(_IMAGES)
        if state["ready"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    images = [{"src": _short(i["src"]), "loaded": bool(i["loaded"])} for i in state["images"]]
    return {"images": images, "tables": state["tables"], "title": state["title"]}


def check_page(path: str | Path, *, timeout: float = 60) -> dict[str, Any]:
    """Open a page headless: ``{"images": [{"src", "loaded"}], "tables": n, "title"}``,
    where an image is loaded when ``img.complete && img.naturalWidth > 0``."""
    with Browser(timeout=timeout) as b:
        b.open(path)
        return page_state(b)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    shot = sub.add_parser(
        "screenshot", help="PNG of a page's first screen, all of it, or one element"
    )
    shot.add_argument("page")
    shot.add_argument("out")
    shot.add_argument("--full", action="store_true", help="the whole page, not the first screen")
    shot.add_argument("--selector", help="CSS selector of one element to capture")
    shot.add_argument("--width", type=int, default=1280)
    shot.add_argument("--height", type=int, default=900)
    check = sub.add_parser("check", help="print images (loaded?), tables and title as JSON")
    check.add_argument("page")
    args = parser.parse_args(argv)

    try:
        if args.command == "check":
            state = check_page(args.page)
            print(json.dumps(state, indent=2))
            return 0 if all(i["loaded"] for i in state["images"]) else 1
        with Browser(width=args.width, height=args.height) as b:
            b.open(args.page)
            page_state(b)  # images decoded before the shot
            data = b.screenshot(args.out, full=args.full, selector=args.selector)
        print(f"{args.out}: {len(data)} bytes")
        return 0
    except BrowserError as e:
        print(f"browser: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
