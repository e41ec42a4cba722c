"""Screenshot a Rerun recording in Rerun's web viewer, in headless Chromium (Debian's
``chromium``), through the DevTools protocol: the way a recording was looked at here.

    .venv/bin/python scripts/screenshot_rerun.py STORE/export/rerun/VIDEO.rrd shot.png [--wait 60]

It serves the recording with ``python -m rerun --serve-web``, opens the viewer with the
WebGL renderer on SwiftShader (no GPU needed), waits for the WebAssembly viewer to load (a
minute on 2 cores), saves a PNG and stops both processes by their pids.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import subprocess
import sys
import time
import urllib.request

import websockets

VIEWER = ("http://127.0.0.1:{web}/?url=rerun%2Bhttp%3A%2F%2Flocalhost%3A{grpc}%2Fproxy"
          "&renderer=webgl")


async def _capture(page_ws: str, url: str, wait_s: float) -> bytes:
    async with websockets.connect(page_ws, max_size=2**27, ping_interval=None) as ws:
        counter = 0

        async def call(method: str, **params) -> dict:
            nonlocal counter
            counter += 1
            await ws.send(json.dumps({"id": counter, "method": method, "params": params}))
            while True:
                message = json.loads(await ws.recv())
                if message.get("id") == counter:
                    return message

        await call("Page.navigate", url=url)
        await asyncio.sleep(wait_s)
        shot = await call("Page.captureScreenshot", format="png")
        return base64.b64decode(shot["result"]["data"])


def _page_socket(port: int) -> str:
    for _ in range(100):
        try:
            tabs = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
            return next(t["webSocketDebuggerUrl"] for t in tabs if t["type"] == "page")
        except (OSError, StopIteration):
            time.sleep(0.3)
    raise RuntimeError("chromium's DevTools did not answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recording")
    parser.add_argument("png")
    parser.add_argument("--wait", type=float, default=60.0)
    args = parser.parse_args()
    web, grpc, devtools = 9090, 9877, 9333
    server = subprocess.Popen([sys.executable, "-m", "rerun", args.recording, "--serve-web",
                               "--web-viewer-port", str(web), "--port", str(grpc)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    browser = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox",
                                "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                                "--window-size=1400,900", f"--remote-debugging-port={devtools}",
                                "about:blank"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)
        png = asyncio.run(_capture(_page_socket(devtools), VIEWER.format(web=web, grpc=grpc),
                                   args.wait))
        with open(args.png, "wb") as out:
            out.write(png)
        print(f"{args.png}: {len(png)} bytes")
    finally:
        for process in (browser, server):
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
