"""MediaPipe HandLandmarker backend (the default detector), with per-joint confidence.

MediaPipe gives no per-joint confidence, and its Tasks API exposes no hand presence score:
hands under ``min_presence`` are dropped, and the handedness classifier's certainty is the
only per-hand score. A joint's confidence here is the hand score times the agreement of
test-time augmentations (flip, rotations): each augmented view is detected again, mapped
back, and a joint that moves by d (as a fraction of the hand size, median over views) gets
``exp(-0.5 (d / sigma)^2)``. bench/ and ``handlabel eval-keypoints`` measure how well this
ranks the real errors.

3D: MediaPipe's world landmarks (metres, hand-centred, axes along the image's) are kept as the
teacher 3D. Each view's landmarks are brought back to the image's axes (rotation undone,
flipped view un-mirrored), centred, and averaged with the main view's; a joint's 3D
confidence is the hand score times the agreement of the views, measured the same way as in
2D (distance to the average, in 3D hand sizes).

Handedness: on unmirrored images, the labels of mediapipe 1.2's Tasks API already name the
true hand (measured on the labelled images: tests/test_detect_mediapipe.py). For mirrored
(selfie) footage, set ``mirrored_input`` and the labels are swapped.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import BaseOptions, vision

from .augment import Augmentation, apply, crop_transform, invert, unrotate_world, warp
from .duplicates import add_new_hands, without_duplicates
from .schema import NUM_JOINTS, HandDetection
from .tta_gate import ViewGate

MODEL_ENV = "HANDLABEL_MEDIAPIPE_MODEL"
MISSED_VIEW_DISTANCE = 1.0  # a view that loses the hand counts as a joint off by a hand size


def default_model_path() -> Path:
    """``$HANDLABEL_MEDIAPIPE_MODEL``, else the file set-up builds inside the environment."""
    env = os.environ.get(MODEL_ENV)
    return Path(env) if env else Path(sys.prefix) / "share" / "handlabel" / "hand_landmarker.task"


class ModelNotFoundError(FileNotFoundError):
    pass


@dataclass(frozen=True)
class MediaPipeOptions:
    model_path: Path | None = None
    max_hands: int = 2
    min_detection: float = 0.5
    min_presence: float = 0.5
    min_tracking: float = 0.5
    mirrored_input: bool = False
    tta: tuple[str, ...] = ("hflip", "rot+20", "rot-20")
    tta_sigma: float = 0.08
    tta_crop: int = 256
    tta_margin: float = 2.0  # crop side as a multiple of the hand size
    tta_every: int = 8  # video: the most frames a hand's view agreement is carried
    tta_jump: float = 0.3  # video: a joint this far off its path (hand sizes) reruns views
    drop_ghosts: bool = True  # second readings of one hand dropped (False: as MediaPipe says)


class MediaPipeHandDetector:
    """HandLandmarker in IMAGE mode for images and VIDEO mode (tracking) for clips."""

    name = "mediapipe"

    def __init__(self, options: MediaPipeOptions | None = None):
        self.options = options or MediaPipeOptions()
        self.model_path = Path(self.options.model_path or default_model_path())
        if not self.model_path.is_file():
            raise ModelNotFoundError(
                f"{self.model_path}: MediaPipe hand model not found; run `make setup` (it builds "
                f"the file from the mediapipe 0.10.21 wheel) or give detect.model_path / "
                f"${MODEL_ENV}"
            )
        self._image = self._landmarker(vision.RunningMode.IMAGE, self.options.max_hands)
        self._views = [Augmentation.parse(text) for text in self.options.tta]
        # counts since creation: second detections of a hand dropped, and hands found by a
        # full palm detection on the frames where such a ghost held a tracking place
        self.ghosts_dropped = 0
        self.hands_recovered = 0

    def _landmarker(self, mode, hands: int):
        options = vision.HandLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=mode,
            num_hands=hands,
            min_hand_detection_confidence=self.options.min_detection,
            min_hand_presence_confidence=self.options.min_presence,
            min_tracking_confidence=self.options.min_tracking,
        )
        return vision.HandLandmarker.create_from_options(options)

    def _hands(self, result, width: int, height: int) -> list[HandDetection]:
        hands = []
        for landmarks, world, categories in zip(result.hand_landmarks,
                                                result.hand_world_landmarks, result.handedness,
                                                strict=True):
            keypoints = np.array([[p.x * width, p.y * height] for p in landmarks])
            label = categories[0].category_name.lower()
            if self.options.mirrored_input:
                label = "left" if label == "right" else "right"
            score = float(categories[0].score)
            hands.append(HandDetection(
                keypoints, np.full(NUM_JOINTS, score), label, score, score,
                world=np.array([[p.x, p.y, p.z] for p in world]),
                world_confidence=np.full(NUM_JOINTS, score)))
        return sorted(hands, key=lambda h: -h.score)

    def _detect_raw(self, landmarker, rgb: np.ndarray, timestamp_ms: int | None = None):
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if timestamp_ms is None:
            result = landmarker.detect(image)
        else:
            result = landmarker.detect_for_video(image, timestamp_ms)
        return self._hands(result, rgb.shape[1], rgb.shape[0])

    def views_back(self, rgb: np.ndarray, hand: HandDetection, trackers: list | None = None,
                   timestamp_ms: int | None = None) -> list[HandDetection | None]:
        """The hand as each augmented view sees it, mapped back to the image (keypoints in its
        pixels, world landmarks along its axes); None where a view lost the hand.

        With ``trackers`` (one VIDEO-mode landmarker per view, for one hand of a clip), each
        view tracks its hand from the previous frame instead of running palm detection.
        """
        crop = self.options.tta_crop
        center = hand.box.reshape(2, 2).mean(0)
        side = hand.size * self.options.tta_margin
        views = []
        for index, view in enumerate(self._views):
            transform = crop_transform(center, side, crop, view)
            landmarker = trackers[index] if trackers else self._image
            found = self._detect_raw(landmarker, warp(rgb, transform, crop), timestamp_ms)
            for h in found:
                h.keypoints = apply(invert(transform), h.keypoints)
                h.world = unrotate_world(transform, h.world)
            views.append(min(found, key=lambda h: np.mean(np.linalg.norm(
                h.keypoints - hand.keypoints, axis=1))) if found else None)
        return views

    def _with_confidence(self, rgb: np.ndarray, hands: list[HandDetection],
                         trackers: list[list] | None = None, timestamp_ms: int | None = None,
                         gate: ViewGate | None = None) -> list[HandDetection]:
        """Each hand's per-joint confidence from its views' agreement: measured now, or (with
        a ``gate``, on video) carried from an earlier frame of the same hand."""
        if not self._views:
            return hands
        for rank, hand in enumerate(hands):
            memory = gate.carried(hand.keypoints, hand.size) if gate else None
            if memory is None:
                views = self.views_back(rgb, hand, trackers[rank] if trackers else None,
                                        timestamp_ms)
                spread = np.median(keypoint_distances(hand, views), axis=0)
                hand.world, spread_3d = average_world(hand, views)
            else:
                spread, spread_3d = memory.spread, memory.spread_3d
            hand.extras["tta_spread"] = spread
            hand.extras["tta_fresh"] = memory is None
            hand.confidence = hand.score * np.exp(-0.5 * (spread / self.options.tta_sigma) ** 2)
            hand.world_confidence = hand.score * np.exp(
                -0.5 * (spread_3d / self.options.tta_sigma) ** 2)
            if gate:
                gate.remember(hand.keypoints, spread, spread_3d, memory)
        if gate:
            gate.next_frame()
        return hands

    def detect_image(self, rgb: np.ndarray) -> list[HandDetection]:
        return self._with_confidence(rgb, self._distinct(self._detect_raw(self._image, rgb)))

    def _distinct(self, hands: list[HandDetection], rgb: np.ndarray | None = None
                  ) -> list[HandDetection]:
        """The hands less their ghosts (:mod:`.duplicates`). With ``rgb`` (video), a frame
        that had a ghost is searched again by palm detection: while the ghost held the
        tracker's place, the tracker looked for no other hand."""
        if not self.options.drop_ghosts:
            return hands
        kept = without_duplicates(hands)
        self.ghosts_dropped += len(hands) - len(kept)
        if rgb is not None and len(kept) < len(hands):
            found = add_new_hands(kept, self._detect_raw(self._image, rgb),
                                  self.options.max_hands)
            self.hands_recovered += len(found) - len(kept)
            kept = found
        return kept

    def detect_video(
        self, frames: Iterable[np.ndarray], timestamps: Iterable[float]
    ) -> Iterator[list[HandDetection]]:
        """VIDEO mode: the landmarker tracks hands between frames instead of re-detecting."""
        video = self._landmarker(vision.RunningMode.VIDEO, self.options.max_hands)
        # one tracking landmarker per (hand rank, view): views follow their hand between frames
        trackers = [[self._landmarker(vision.RunningMode.VIDEO, 1) for _ in self._views]
                    for _ in range(self.options.max_hands)]
        gate = ViewGate(self.options.tta_every, self.options.tta_jump)
        last_ms = -1
        try:
            for rgb, seconds in zip(frames, timestamps, strict=True):
                ms = max(round(seconds * 1000), last_ms + 1)  # strictly increasing, as required
                last_ms = ms
                hands = self._distinct(self._detect_raw(video, rgb, ms), rgb)
                yield self._with_confidence(rgb, hands, trackers, ms, gate)
        finally:
            video.close()
            for landmarker in (t for per_hand in trackers for t in per_hand):
                landmarker.close()

    def close(self) -> None:
        self._image.close()


def keypoint_distances(hand: HandDetection, views: list[HandDetection | None]) -> np.ndarray:
    """(views, 21) each view's 2D joint distance from the main view, in hand sizes."""
    return np.array([np.full(NUM_JOINTS, MISSED_VIEW_DISTANCE) if view is None else
                     np.linalg.norm(view.keypoints - hand.keypoints, axis=1) / hand.size
                     for view in views])


def average_world(hand: HandDetection, views: list[HandDetection | None]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The main and found views' world landmarks, centred and averaged: (21, 3) metres, and
    (21,) the median over views of each joint's distance from that average, in 3D hand sizes
    (a missed view counts as a hand size off)."""
    found = [hand.world] + [view.world for view in views if view is not None]
    centred = np.stack([w - w.mean(0) for w in found])
    average = centred.mean(0)
    size = max(float(np.ptp(average, axis=0).max()), 1e-6)
    distances = [np.linalg.norm(w - average, axis=1) / size for w in centred[1:]]
    distances += [np.full(NUM_JOINTS, MISSED_VIEW_DISTANCE)] * (len(views) + 1 - len(found))
    return average + hand.world.mean(0), np.median(distances, axis=0)
