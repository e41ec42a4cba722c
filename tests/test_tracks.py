"""A hand keeps its slot across chunk borders: each chunk first detects the last frames of
the one before (unseen), so the slot tracker and the detector's video trackers carry over.

The detector here replays MediaPipe's real detections of the clip with one change: for the
three frames after a chunk border, the hand's handedness label flips to an unsure "left".
MediaPipe cannot be made to do that on demand, and it is exactly the case where a tracker
that restarts at the border swaps the hand's slot while one that carries over keeps it.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from handlabel.config import DetectConfig, IngestConfig
from handlabel.models.detectors.mediapipe import MediaPipeHandDetector
from handlabel.storage.store import DatasetStore
from handlabel.storage.video import iter_frames
from handlabel.tasks.detect import detect_chunk, prepare_detect
from handlabel.tasks.identify import identify
from handlabel.tasks.ingest import ingest_one

from .conftest import GESTURE_AVI

CHUNK = 5  # 20 frames: 4 chunks, borders inside the gesture's motion
FLIPPED = (10, 11, 12)  # the frames after the border between chunks 1 and 2


class ReplayDetector:
    """MediaPipe's detections of each frame, keyed by timestamp, with the flips above."""

    name = "replay"

    def __init__(self, by_ms: dict[int, list], flipped_ms: set[int]):
        self.by_ms, self.flipped_ms = by_ms, flipped_ms

    def detect_video(self, frames, timestamps):
        for _, seconds in zip(frames, timestamps, strict=True):
            ms = round(seconds * 1000)
            hands = self.by_ms[ms]
            if ms in self.flipped_ms:
                hands = [dataclasses.replace(h, handedness="left", handedness_score=0.55)
                         for h in hands]
            yield hands

    def detect_image(self, rgb):
        return []  # a replay has nothing to find on a search crop

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def replay(sample):
    frames, times = zip(*iter_frames(str(GESTURE_AVI)), strict=True)
    detector = MediaPipeHandDetector()
    try:
        found = list(detector.detect_video(frames, times))
    finally:
        detector.close()
    by_ms = {round(t * 1000): hands for t, hands in zip(times, found, strict=True)}
    assert all(len(by_ms[round(times[i] * 1000)]) == 1 for i in FLIPPED), "one hand there"
    return ReplayDetector(by_ms, {round(times[i] * 1000) for i in FLIPPED})


def _slots(tmp_path, detector, warmup: int, chunk_frames: int = CHUNK) -> np.ndarray:
    store = DatasetStore(str(tmp_path / f"store-{warmup}-{chunk_frames}"))
    identity = identify(str(GESTURE_AVI), store.url)
    ingest_one(store, identity, IngestConfig(chunk_frames=chunk_frames), False,
               logging.getLogger("test"))
    config = DetectConfig(warmup_frames=warmup)
    for chunk in prepare_detect(store, identity.video_id, config, overwrite=False):
        detect_chunk(store, identity.video_id, chunk, config, detector)
    return store.stage(identity.video_id, "detect").read("present")


def test_a_hand_keeps_its_slot_across_chunk_borders(replay, tmp_path):
    sequential = _slots(tmp_path, replay, warmup=0, chunk_frames=64)  # one chunk
    flipped = list(FLIPPED)
    assert sequential[flipped, 1].all() and not sequential[flipped, 0].any(), "kept right"
    restarted = _slots(tmp_path, replay, warmup=0)
    assert restarted[FLIPPED[0], 0], "a tracker restarting at the border swaps the slot"
    carried = _slots(tmp_path, replay, warmup=DetectConfig().warmup_frames)
    np.testing.assert_array_equal(carried, sequential)
