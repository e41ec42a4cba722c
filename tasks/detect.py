"""Detect stage: per chunk, hands tracked into left/right slots, 21 keypoints with confidence,
the detector's 3D joints with their confidence where it gives them, and square crops (left
hands mirrored) with their intrinsics, written to the store."""

from __future__ import annotations

import importlib

import numpy as np
from prefect import get_run_logger, task

from handlabel.config import DetectConfig, HandlabelConfig
from handlabel.keys import stage_key
from handlabel.models.appearance import joint_colours
from handlabel.models.crops import crop_affine, crop_image, crop_intrinsics, square_box, to_crop
from handlabel.models.detectors import NUM_JOINTS, HandDetector
from handlabel.models.detectors.duplicates import same_hand
from handlabel.models.detectors.search import search_near
from handlabel.models.keypoints import hand_sizes
from handlabel.models.tracking import N_SLOTS, SLOT_SIDES, SlotTracker
from handlabel.storage.manifest import StageState
from handlabel.storage.stage_arrays import ArraySpec
from handlabel.storage.store import DatasetStore
from handlabel.storage.video_codec import H264FrameCodec

from .native_logs import quiet_native_logs
from .retry import retry_transient

STAGE = "detect"
LEFT = SLOT_SIDES.index("left")


BACKEND_MODULES = {"mediapipe": "handlabel.models.detectors.mediapipe",
                   "openpifpaf": "handlabel.models.detectors.openpifpaf"}


def load_backend(config: DetectConfig) -> None:
    """Import the configured backend's code (MediaPipe's import alone takes 1.6 s here), for a
    run that has the time to spare before its first chunk."""
    if config.backend in BACKEND_MODULES:
        importlib.import_module(BACKEND_MODULES[config.backend])


def detector_from_config(config: DetectConfig) -> HandDetector:
    """The configured backend, in a process whose native log chatter is filtered out."""
    quiet_native_logs()
    if config.backend == "mediapipe":
        from handlabel.models.detectors.mediapipe import MediaPipeHandDetector, MediaPipeOptions

        return MediaPipeHandDetector(MediaPipeOptions(
            model_path=config.model_path, max_hands=config.max_hands,
            min_detection=config.min_detection, min_presence=config.min_presence,
            min_tracking=config.min_tracking, mirrored_input=config.mirrored_input,
            tta=tuple(config.tta), tta_sigma=config.tta_sigma, tta_every=config.tta_every,
            tta_jump=config.tta_jump,
        ))
    if config.backend == "openpifpaf":
        from handlabel.models.detectors.openpifpaf import OpenPifPafHandDetector, OpenPifPafOptions

        checkpoint = config.model_path or OpenPifPafOptions.checkpoint
        return OpenPifPafHandDetector(OpenPifPafOptions(checkpoint=checkpoint))
    raise ValueError(f"unknown detector backend {config.backend!r}")


def detect_spec(crop_size: int, crop_codec: str = "zstd") -> dict[str, ArraySpec]:
    """The detect stage's arrays per frame; axis 1 is the slot (0 left, 1 right). The crops
    are stored as each slot's H.264 stream (``crop_codec: h264``) or with zarr's default."""
    slots = N_SLOTS
    return {
        "present": ArraySpec((slots,), "bool", False),
        "keypoints": ArraySpec((slots, NUM_JOINTS, 3), "float32", np.nan),  # x, y, confidence
        # the detector's 3D (MediaPipe's world landmarks: metres, hand-centred, image axes)
        "world": ArraySpec((slots, NUM_JOINTS, 3), "float32", np.nan),
        "world_confidence": ArraySpec((slots, NUM_JOINTS), "float32", 0.0),
        "score": ArraySpec((slots,), "float32", 0.0),
        "box": ArraySpec((slots, 4), "float32", np.nan),  # crop square in the frame, x0 y0 x1 y1
        "crop_keypoints": ArraySpec((slots, NUM_JOINTS, 2), "float32", np.nan),
        "crop_K": ArraySpec((slots, 3, 3), "float32", np.nan),
        "mirrored": ArraySpec((slots,), "bool", False),
        # found again by a search where its track predicted it (models/detectors/search.py)
        "searched": ArraySpec((slots,), "bool", False),
        # the detector's probability that the hand is a right hand (models/identity.py)
        "handedness": ArraySpec((slots,), "float32", np.nan),
        # the frame's colour at each detected joint, RGB (models/appearance.py)
        "joint_colour": ArraySpec((slots, NUM_JOINTS, 3), "uint8", 0),
        "crops": ArraySpec((slots, crop_size, crop_size, 3), "uint8", 0,
                           H264FrameCodec() if crop_codec == "h264" else None),
    }


def _empty_chunk(n: int, crop_size: int) -> dict[str, np.ndarray]:
    return {key: np.full((n, *spec.tail), spec.fill_value, dtype=spec.dtype)
            for key, spec in detect_spec(crop_size).items()}


def detect_is_current(store: DatasetStore, video_id: str, config: DetectConfig) -> bool:
    """Whether the video's detections are complete and made with this config."""
    arrays, row = store.stage(video_id, STAGE), store.manifest.get(video_id)
    return (arrays is not None and row is not None and row["detect_state"] == StageState.DONE
            and arrays.attrs.get("config_hash") == stage_key(STAGE, config)
            and not set(range(arrays.n_chunks)) - arrays.done_chunks())


def is_current(store: DatasetStore, video_id: str, config: HandlabelConfig) -> bool:
    """The stage registry's currency test (flows/stages.py)."""
    return detect_is_current(store, video_id, config.detect)


def prepare_detect(store: DatasetStore, video_id: str, config: DetectConfig, overwrite: bool
                   ) -> list[int] | None:
    """Chunks still to detect for a video; None when it is done with this config."""
    config_hash = stage_key(STAGE, config)
    video = store.video(video_id)
    if video is None or not video.attrs.get("complete"):
        raise RuntimeError(f"{video_id}: not ingested; run ingest first")
    if not overwrite and detect_is_current(store, video_id, config):
        return None
    arrays = store.stage(video_id, STAGE)
    if (arrays is not None and not overwrite and arrays.attrs.get("config_hash") == config_hash):
        todo = sorted(set(range(arrays.n_chunks)) - arrays.done_chunks())
    else:
        arrays = store.create_stage(video_id, STAGE, n_frames=video.n_frames,
                                    chunk_frames=video.chunk_frames,
                                    spec=detect_spec(config.crop_size, config.crop_codec),
                                    attrs={"config_hash": config_hash})
        todo = list(range(arrays.n_chunks))
    store.manifest.start_stage(video_id, STAGE, config_hash)
    return todo


def detect_chunk(store: DatasetStore, video_id: str, chunk: int, config: DetectConfig,
                 detector: HandDetector, frames: np.ndarray | None = None) -> int:
    """Detect, track and crop the hands of one chunk; returns the number of hands found. The
    ``config.warmup_frames`` before the chunk are detected first and not written: the
    trackers then enter the chunk where the previous chunk's left them, so chunks stay
    independent (parallel on Dask) and a hand keeps its slot across their border.
    ``frames``: the chunk's frames with its warm-up (``chunk_frames``), where the caller has
    them already."""
    video = store.video(video_id)
    K = np.asarray(video.attrs["K"])
    start, stop, warm = _chunk_span(video, chunk, config.warmup_frames)
    if frames is None:
        frames = video.read(warm, stop)
    times = video.timestamps()[warm:stop]
    out = _empty_chunk(stop - start, config.crop_size)
    tracker = SlotTracker(search_frames=config.search_frames)
    found = 0
    for i, hands in enumerate(detector.detect_video(frames, times)):
        assigned = tracker.assign(hands)
        search_lost(detector, tracker, frames[i], assigned)
        if i < start - warm:
            continue
        for slot, hand in enumerate(assigned):
            if hand is not None:
                _fill(out, i - (start - warm), slot, hand, frames[i], K, config)
                found += 1
    store.stage(video_id, STAGE).write_chunk(chunk, start, out)
    return found


def search_lost(detector: HandDetector, tracker: SlotTracker, rgb: np.ndarray,
                assigned: list) -> None:
    """Each slot the tracker lost recently, looked for where its track predicts it; a hand
    found there (and not already another slot's) takes the slot in ``assigned``."""
    for slot, box in tracker.lost().items():
        hand = search_near(detector, rgb, box)
        if hand is not None and not any(
                other is not None and same_hand(hand.keypoints, other.keypoints)
                for other in assigned):
            assigned[slot] = hand
            tracker.found_again(slot, hand)


def detect_run(store: DatasetStore, video_id: str, chunks: list[int], config: DetectConfig
               ) -> int:
    """The detect task's unit of work: one detector, built and closed here (a task may run
    on any worker), for a run of chunks, each by :func:`detect_chunk` with its own warm-up
    (so a chunk's hands do not depend on the run it was in); returns the hands found."""
    detector = detector_from_config(config)
    video, before, found = store.video(video_id), None, 0
    try:
        for chunk in chunks:
            frames = chunk_frames(video, chunk, config.warmup_frames, before)
            found += detect_chunk(store, video_id, chunk, config, detector, frames)
            before = (_chunk_span(video, chunk, config.warmup_frames)[1], frames)
        return found
    finally:
        detector.close()


def _chunk_span(video, chunk: int, warmup: int) -> tuple[int, int, int]:
    """(start, stop, first warm-up frame) of a chunk."""
    start = chunk * video.chunk_frames
    return start, min(start + video.chunk_frames, video.n_frames), max(0, start - warmup)


def chunk_frames(video, chunk: int, warmup: int,
                 before: tuple[int, np.ndarray] | None = None) -> np.ndarray:
    """A chunk's frames with its warm-up frames before it. Those lie in the previous chunk,
    whose whole H.264 segment must be decoded for them; ``before`` (the frame the previous
    chunk of a run stopped at, and its frames) saves that decode when it ends where this
    chunk starts: the same pixels, so the same detections."""
    start, stop, warm = _chunk_span(video, chunk, warmup)
    if before is None or before[0] != start or len(before[1]) < start - warm:
        return video.read(warm, stop)
    earlier = before[1][len(before[1]) - (start - warm):]
    return np.concatenate([earlier, video.read(start, stop)])


def _fill(out: dict, i: int, slot: int, hand, rgb: np.ndarray, K: np.ndarray,
          config: DetectConfig) -> None:
    center, side = square_box(hand.keypoints, config.crop_margin)
    mirror = slot == LEFT
    affine = crop_affine(center, side, config.crop_size, mirror)
    out["present"][i, slot] = True
    out["keypoints"][i, slot] = np.column_stack([hand.keypoints, hand.confidence])
    out["score"][i, slot] = hand.score
    if hand.world is not None:
        out["world"][i, slot] = hand.world
        out["world_confidence"][i, slot] = hand.world_confidence
    out["box"][i, slot] = np.concatenate([center - side / 2, center + side / 2])
    out["crop_keypoints"][i, slot] = to_crop(hand.keypoints, affine)
    out["crop_K"][i, slot] = crop_intrinsics(K, affine, mirror)
    out["mirrored"][i, slot] = mirror
    out["searched"][i, slot] = bool(hand.extras.get("searched"))
    right = hand.handedness == "right"
    out["handedness"][i, slot] = hand.handedness_score if right else 1 - hand.handedness_score
    out["crops"][i, slot] = crop_image(rgb, affine, config.crop_size)
    size = float(hand_sizes(hand.keypoints))
    out["joint_colour"][i, slot] = joint_colours(rgb, hand.keypoints, size)


def finish_detect(store: DatasetStore, video_id: str, error: str | None = None) -> dict:
    """Record the stage's outcome and summary statistics in the manifest. A chunk without
    its completion record fails the video, whatever its task reported: a task on a worker
    that died can be reported done without having run (the chunk stays to do)."""
    row = store.manifest.get(video_id)
    arrays = store.stage(video_id, STAGE)
    stats = {}
    if error is None and (missing := sorted(set(range(arrays.n_chunks)) - arrays.done_chunks())):
        error = (f"chunks {missing} of {arrays.n_chunks} were not completed (their worker "
                 "lost?); rerun to detect them")
    if error is None:
        present = arrays.read("present")
        confidence = arrays.read("keypoints")[..., 2]
        arrays.update_attrs(complete=True)
        stats = {
            "detect_hand_frames": int(present.any(axis=1).sum()),
            "detect_two_hand_frames": int(present.all(axis=1).sum()),
            "detect_mean_confidence": float(np.nanmean(confidence)) if present.any() else None,
            "detect_moved_sides": int(arrays.attrs.get("moved_sides", 0)),
        }
    return store.manifest.finish_stage(video_id, STAGE, row["detect_started"], error, **stats)


@task(name="detect-prepare", task_run_name="detect-prepare {video_id}")
def prepare_detect_task(store_url: str, video_id: str, config: DetectConfig,
                        overwrite: bool = False) -> list[int] | None:
    return prepare_detect(DatasetStore(store_url), video_id, config, overwrite)


@task(name="detect-chunks", task_run_name="detect {video_id} chunks {chunks}", retries=1,
      retry_condition_fn=retry_transient)
def detect_chunk_task(store_url: str, video_id: str, chunks: list[int], config: DetectConfig
                      ) -> int:
    found = detect_run(DatasetStore(store_url), video_id, chunks, config)
    get_run_logger().info("%s: chunks %s, %d hands", video_id, chunks, found)
    return found


@task(name="detect-finish", task_run_name="detect-finish {video_id}")
def finish_detect_task(store_url: str, video_id: str, error: str | None = None) -> dict:
    return finish_detect(DatasetStore(store_url), video_id, error)
