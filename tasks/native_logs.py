"""Keep MediaPipe's and LiteRT's native log chatter out of a process's stderr.

Their C++ code writes straight to file descriptor 2 (glog and the TFLite logger), where
Python's logging cannot reach: a 20-frame clip printed 85 such lines. :func:`quiet_native_logs`
puts a pipe in place of fd 2, once per process; a thread copies every line to the real
stderr except the known chatter (LiteRT's ``INFO: ...`` lines, glog's info and warning
lines ``I0000 ...``/``W0000 ...``, and two fixed warnings). Everything else passes: glog
errors and fatals, Python tracebacks, any other line. At exit the pipe is drained.
``HANDLABEL_NATIVE_LOGS=1`` keeps the chatter. No library does this filtering: absl/glog
offer a minimum level only before their first use, and LiteRT's logger none from Python.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

CHATTER = re.compile(
    rb"^(INFO: |[IW]\d{4} \d\d:\d\d:\d\d[.\d]* +\d+ [\w.]+:\d+\] |"
    rb"WARNING: Logging before InitGoogle\(\)|WARNING: Read-only tensor #\d+ )")
_lock = threading.Lock()
_installed: dict[str, object] = {}


def is_chatter(line: bytes) -> bool:
    return bool(CHATTER.match(line))


def quiet_native_logs() -> None:
    """Filter this process's fd 2 from now on (idempotent)."""
    if os.environ.get("HANDLABEL_NATIVE_LOGS") == "1":
        return
    with _lock:
        if _installed:
            return
        sys.stderr.flush()
        real = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        pump = threading.Thread(target=_pump, args=(read_end, real), daemon=True,
                                name="handlabel-native-logs")
        pump.start()
        _installed.update(real=real, pump=pump)
        atexit.register(_restore)


def _pump(read_end: int, real: int) -> None:
    pending = b""
    while chunk := os.read(read_end, 65536):
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        kept = [line + b"\n" for line in lines if not is_chatter(line)]
        if kept:
            os.write(real, b"".join(kept))
    if pending and not is_chatter(pending):
        os.write(real, pending)
    os.close(read_end)


def _restore() -> None:
    """Put the real stderr back and let the thread write what the pipe still holds."""
    with _lock:
        if not _installed:
            return
        sys.stderr.flush()
        os.dup2(_installed["real"], 2)  # closes the pipe's last write end: the pump ends
        _installed["pump"].join(timeout=5)
        _installed.clear()
