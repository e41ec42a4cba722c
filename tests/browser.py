"""Open a page in headless Chromium (Debian's ``chromium``) through the DevTools protocol:
the console errors it logged, and JavaScript evaluated in it once it has loaded.

Every wait is bounded (``PAGE_S`` in all): a browser that stops answering fails the test
instead of holding the suite (a CI run once hung here past its limit)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.request

import websockets

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGE_S = 120  # the most one page may take, from the browser's start to the answer
# no network beyond loopback here: without these Chromium's own background connections fail
# many at a time; a small /dev/shm in a container can crash its renderer
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def inspect_page(url: str, expression: str, settle_s: float = 2.0) -> tuple[list[str], object]:
    """(console errors and exceptions, the value of ``expression``) for the loaded page.

    A browser that does not answer within ``PAGE_S`` is killed and a fresh one (new port)
    tried once more: the page's own faults show as console errors, not as silence. (No
    profile folder of its own: Chromium's helper processes still write to one for a moment
    after the browser is killed, and removing it failed a CI run.)"""
    try:
        return _inspect_in_new_browser(url, expression, settle_s)
    except (TimeoutError, AssertionError):
        return _inspect_in_new_browser(url, expression, settle_s)


def _inspect_in_new_browser(url: str, expression: str, settle_s: float
                            ) -> tuple[list[str], object]:
    port = _free_port()
    browser = subprocess.Popen([CHROMIUM, *FLAGS, f"--remote-debugging-port={port}",
                                "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return asyncio.run(asyncio.wait_for(
            _inspect(_page_socket(port), url, expression, settle_s), PAGE_S))
    finally:
        browser.kill()
        browser.wait(timeout=30)


def _page_socket(port: int) -> str:
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(OSError, StopIteration):
            tabs = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=5))
            return next(t["webSocketDebuggerUrl"] for t in tabs if t["type"] == "page")
        assert time.monotonic() < deadline, "chromium's DevTools did not answer"
        time.sleep(0.3)


async def _inspect(page: str, url: str, expression: str, settle_s: float):
    errors: list[str] = []
    async with websockets.connect(page, max_size=2**27, ping_interval=None,
                                  open_timeout=30) as ws:
        counter = 0

        async def call(method: str, **params) -> dict:
            nonlocal counter
            counter += 1
            await ws.send(json.dumps({"id": counter, "method": method, "params": params}))
            while True:
                message = json.loads(await ws.recv())
                if message.get("id") == counter:
                    return message.get("result", {})
                _collect(message, errors)

        await call("Runtime.enable")
        await call("Log.enable")
        await call("Page.enable")
        await call("Page.navigate", url=url)
        deadline = time.monotonic() + 60
        while (await call("Runtime.evaluate", expression="document.readyState"))[
                "result"].get("value") != "complete":
            assert time.monotonic() < deadline, "the page did not load"
            await asyncio.sleep(0.2)
        await asyncio.sleep(settle_s)
        value = (await call("Runtime.evaluate", expression=expression, returnByValue=True))
        return errors, value["result"].get("value")


def _collect(message: dict, errors: list[str]) -> None:
    method, params = message.get("method"), message.get("params", {})
    if method == "Runtime.exceptionThrown":
        errors.append(params["exceptionDetails"].get("text", "exception"))
    elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
        errors.append(" ".join(str(a.get("value")) for a in params.get("args", [])))
    elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
        errors.append(params["entry"].get("text", ""))
