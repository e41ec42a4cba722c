"""The run's temporary Prefect API (``flows/prefect_api.py``), in a process of its own with no
API configured, as a user's first ``handlabel run`` has: one server, found by every thread,
gone when the run ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .conftest import copy_database

PROBE = """
import json, threading
import psutil
from prefect.settings import PREFECT_API_URL
from handlabel.flows.prefect_api import shared_prefect_api

seen = {}
def servers():
    return sum("uvicorn" in " ".join(p.cmdline()) for p in psutil.Process().children(True))
with shared_prefect_api(while_starting=lambda: seen.update(starting=servers())) as url:
    plain = threading.Thread(target=lambda: seen.update(thread=PREFECT_API_URL.value()))
    plain.start(); plain.join()
    import httpx
    seen.update(url=url, health=httpx.get(url + "/health").status_code, running=servers())
seen.update(after=PREFECT_API_URL.value(), left=servers())
print(json.dumps(seen))
"""


def test_one_temporary_api_serves_every_thread_and_stops_with_the_run(tmp_path,
                                                                      prefect_database):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    copy_database(prefect_database, tmp_path / "prefect-home" / "prefect.db")
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["starting"] == 1, "the server boots while the run's imports run"
    assert seen["health"] == 200
    assert seen["thread"] == seen["url"], "a thread without Prefect's context finds the API"
    assert seen["running"] == 1, "no second temporary server"
    assert seen["after"] is None and seen["left"] == 0
