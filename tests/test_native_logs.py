"""MediaPipe's and LiteRT's native chatter is filtered out of stderr in a process that runs
the detector, while real errors (glog errors, Python's own stderr) still get through."""

from __future__ import annotations

import os
import subprocess
import sys

from handlabel.tasks.native_logs import is_chatter

from .conftest import GESTURE_AVI

SCRIPT = f"""
import os, sys
from handlabel.config import DetectConfig
from handlabel.storage.video import iter_frames
from handlabel.tasks.detect import detector_from_config
detector = detector_from_config(DetectConfig())
frames, times = zip(*iter_frames({str(GESTURE_AVI)!r}))
found = sum(len(h) for h in detector.detect_video(frames[:5], times[:5]))
detector.close()
print("python stderr line", file=sys.stderr, flush=True)
os.write(2, b"E0000 00:00:1.0 1 real.cc:1] a native error\\n")
print("hands", found)
"""


def _run(**env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300)


def test_the_chatter_goes_and_real_errors_stay(sample):
    raw = _run(HANDLABEL_NATIVE_LOGS="1")
    assert raw.returncode == 0, raw.stderr[-2000:]
    assert sum(is_chatter(line.encode()) for line in raw.stderr.splitlines()) >= 5
    quiet = _run()
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stdout == raw.stdout and "hands" in quiet.stdout
    assert [line for line in quiet.stderr.splitlines() if line.strip()] == [
        "python stderr line", "E0000 00:00:1.0 1 real.cc:1] a native error"]


def test_only_known_chatter_matches():
    assert is_chatter(b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
    assert is_chatter(b"W0000 00:00:1796176174.795246    8887 inference_runner_litert.cc:1433] x")
    assert is_chatter(b"WARNING: Logging before InitGoogle() is written to STDERR")
    assert not is_chatter(b"E0000 00:00:1796176174.795246    8887 calculator.cc:10] failed")
    assert not is_chatter(b"Traceback (most recent call last):")
    assert not is_chatter(b"WARNING: something else")
