"""Background images for synthetic data: frames taken at even intervals from real videos."""

from __future__ import annotations

import numpy as np

from .video import iter_frames


def background_frames(urls: list[str], per_video: int = 8, max_long_side: int = 640
                      ) -> list[np.ndarray]:
    """``per_video`` frames spread over each video (decoded sequentially, no seeking)."""
    frames = []
    for url in urls:
        decoded = [rgb for rgb, _ in iter_frames(url, max_long_side)]
        picks = np.linspace(0, len(decoded) - 1, min(per_video, len(decoded))).round()
        frames += [decoded[int(i)] for i in picks]
    return frames
