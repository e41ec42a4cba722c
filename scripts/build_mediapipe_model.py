"""Build MediaPipe's hand landmarker model file from the registry, for offline use.

mediapipe >= 1.x ships no hand model (its HandLandmarker needs a ``.task`` file, normally
downloaded at run time). mediapipe 0.10.21's wheel carries the Apache-2.0 models
``palm_detection_full.tflite`` and ``hand_landmark_full.tflite``; a ``.task`` file is an
uncompressed zip of the two under the names the Tasks API expects. This script downloads that
wheel with pip (no install), takes the two files out and writes the ``.task`` file.

    python scripts/build_mediapipe_model.py [OUTPUT]   # default: <venv>/share/handlabel/...
"""

from __future__ import annotations

import glob
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SOURCE_WHEEL = "mediapipe==0.10.21"
MEMBERS = {
    "hand_detector.tflite": "mediapipe/modules/palm_detection/palm_detection_full.tflite",
    "hand_landmarks_detector.tflite": "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
}
DEFAULT_OUTPUT = Path(sys.prefix) / "share" / "handlabel" / "hand_landmarker.task"


def download_wheel(folder: str) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", "--python-version", "3.11", "--platform",
               "manylinux_2_28_x86_64", "-d", folder, SOURCE_WHEEL]
    subprocess.run(command, check=True)
    return Path(glob.glob(f"{folder}/mediapipe-*.whl")[0])


def build(output: Path) -> Path:
    with tempfile.TemporaryDirectory() as folder:
        wheel = zipfile.ZipFile(download_wheel(folder))
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_suffix(".partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as task:
            for name, member in MEMBERS.items():
                task.writestr(name, wheel.read(member))
        partial.replace(output)
    return output


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT
    if target.exists():
        print(f"mediapipe model: {target} (exists)")
    else:
        print(f"mediapipe model: built {build(target)} from {SOURCE_WHEEL}")
