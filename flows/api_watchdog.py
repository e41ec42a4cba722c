"""Stop the temporary Prefect API when the process that started it dies.

``python -m handlabel.flows.api_watchdog PARENT_PID SERVER_PID``: polls once a second; when
the parent is gone (SIGKILL, SIGTERM, a crash: no ``finally`` runs then), it terminates the
server, and it exits by itself once the server is gone. Linux offers PR_SET_PDEATHSIG for
this, but Prefect starts the server's process itself, so the watch is a separate process.
Standard library only: it must start in a fraction of a second.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def watch(parent: int, server: int, poll_s: float = 1.0, grace_s: float = 5.0) -> None:
    while alive(server):
        if not alive(parent) or os.getppid() != parent:
            os.kill(server, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while alive(server) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(server):
                os.kill(server, signal.SIGKILL)
            return
        time.sleep(poll_s)


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]))
