"""Ingest one video: decode it sequentially and store it chunk by chunk.

Skips a video already ingested with the same config (by content hash), resumes one whose
ingest was interrupted (only missing chunks are written), and fails only this video's row
on bad input.
"""

from __future__ import annotations

import fnmatch
import os
import socket
import time
from dataclasses import dataclass, field

import numpy as np
from prefect import get_run_logger, task
from prefect.states import Failed

from handlabel.config import CameraConfig, IngestConfig
from handlabel.keys import stage_key
from handlabel.models.camera import intrinsics_from_fov, scale_intrinsics
from handlabel.storage.frames import VideoFrames, frame_codecs
from handlabel.storage.manifest import StageState
from handlabel.storage.store import DatasetStore
from handlabel.storage.video import VideoDecodeError, VideoInfo, iter_chunks, probe_video

from .identify import VideoIdentity
from .retry import is_permanent, retry_transient

STAGE = "ingest"


@dataclass(frozen=True)
class IngestResult:
    video_id: str
    name: str
    outcome: str  # ingested | resumed | skipped | failed
    n_frames: int = 0
    frames_written: int = 0
    seconds: float = 0.0
    error: str | None = None
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


def camera_intrinsics(camera: CameraConfig, name: str, info: VideoInfo) -> tuple[np.ndarray, bool]:
    """K for the stored frames and whether it was estimated rather than given."""
    given = next((K for pat, K in camera.per_video.items() if fnmatch.fnmatch(name, pat)), None)
    given = given if given is not None else camera.K
    if given is None:
        return intrinsics_from_fov(info.width, info.height, camera.assumed_fov_deg), True
    scale_x = info.width / info.source_width
    scale_y = info.height / info.source_height
    return scale_intrinsics(np.asarray(given), scale_x, scale_y), False


def _is_current(store: DatasetStore, video_id: str, config_hash: str) -> bool:
    row = store.manifest.get(video_id)
    return bool(
        row
        and row["ingest_state"] == StageState.DONE
        and row["ingest_config_hash"] == config_hash
        and store.video(video_id) is not None
    )


def _open_for_writing(
    store: DatasetStore, identity: VideoIdentity, info: VideoInfo, config: IngestConfig,
    config_hash: str, overwrite: bool,
) -> tuple[VideoFrames, set[int]]:
    """The video's arrays, reused when an interrupted ingest with this config left some."""
    existing = store.video(identity.video_id)
    reusable = existing is not None and not overwrite
    if reusable and existing.attrs.get("ingest_config_hash") == config_hash:
        return existing, existing.done_chunks()
    K, estimated = camera_intrinsics(config.camera, identity.name, info)
    frames = store.create_video(
        identity.video_id,
        height=info.height,
        width=info.width,
        chunk_frames=config.chunk_frames,
        codecs=frame_codecs(config.compression.codec, config.compression.level,
                            config.compression.crf),
        attrs={
            "source_uri": identity.url,
            "content_hash": identity.content_hash,
            "size_bytes": identity.size_bytes,
            "fps": info.fps,
            "codec": info.codec,
            "rotation": info.rotation,
            "source_size": [info.source_width, info.source_height],
            "K": K.tolist(),
            "intrinsics_estimated": estimated,
            "ingest_config_hash": config_hash,
            "complete": False,
        },
    )
    return frames, set()


def ingest_one(
    store: DatasetStore,
    identity: VideoIdentity,
    config: IngestConfig,
    overwrite: bool,
    logger,
    aliases: list[str] = (),
) -> IngestResult:
    """The unit of work, without Prefect: usable from a task, a test or a notebook.

    ``aliases`` are other URLs with the same content; they are recorded in the manifest row.
    """
    config_hash = stage_key(STAGE, config)
    current = not overwrite and _is_current(store, identity.video_id, config_hash)
    if identity.error is None and current:
        store.manifest.add_aliases(identity.video_id, [identity.url, *aliases])
        logger.info("%s: already ingested with this config, skipped", identity.name)
        return IngestResult(identity.video_id, identity.name, "skipped")

    store.manifest.upsert(
        identity.video_id, name=identity.name, source_uri=identity.url,
        content_hash=identity.content_hash, size_bytes=identity.size_bytes,
    )
    store.manifest.add_aliases(identity.video_id, [identity.url, *aliases])
    started = store.manifest.start_stage(identity.video_id, STAGE, config_hash)
    t0 = time.perf_counter()
    try:
        if identity.error:
            raise VideoDecodeError(identity.url, identity.error.removeprefix(identity.url + ": "))
        info = probe_video(identity.url, config.max_long_side)
        frames, done = _open_for_writing(store, identity, info, config, config_hash, overwrite)
        expected_chunks = -(-info.declared_frames // config.chunk_frames) or None
        written = _write(frames, identity, config, done, expected_chunks, logger)
    except Exception as exc:
        final = isinstance(exc, VideoDecodeError) or is_permanent(exc)
        message = _failure_message(exc, identity, store)
        if final:  # a bad file's or a full disk's partial chunks would only take space
            store.remove_video(identity.video_id)
        store.manifest.finish_stage(identity.video_id, STAGE, started, error=message)
        if final:
            return IngestResult(identity.video_id, identity.name, "failed", error=message)
        raise
    n_frames = frames.n_frames
    frames.update_attrs(complete=True, n_frames=n_frames)
    store.manifest.finish_stage(
        identity.video_id, STAGE, started, n_frames=n_frames, width=info.width,
        height=info.height, fps=info.fps, intrinsics_estimated=frames.attrs["intrinsics_estimated"],
    )
    seconds = time.perf_counter() - t0
    outcome = "resumed" if done else "ingested"
    logger.info("%s: %s, %d frames (%d written) in %.1f s", identity.name, outcome, n_frames,
                written, seconds)
    return IngestResult(identity.video_id, identity.name, outcome, n_frames, written, seconds)


def _failure_message(exc: Exception, identity: VideoIdentity, store: DatasetStore) -> str:
    if isinstance(exc, VideoDecodeError):
        return str(exc)
    if is_permanent(exc):
        return f"{identity.url}: cannot write to the store {store.url}: {exc.strerror.lower()}"
    return f"{identity.url}: {exc!r}"


def _write(frames: VideoFrames, identity: VideoIdentity, config: IngestConfig, done: set[int],
           expected_chunks: int | None, logger) -> int:
    t0 = time.perf_counter()
    counts = {"written": 0}

    def report(chunk, written: bool) -> None:
        counts["written"] += len(chunk.frames) if written else 0
        seen = chunk.start + len(chunk.frames)
        of = f"/{expected_chunks}" if expected_chunks else ""
        logger.info("%s: chunk %d%s %s (%d frames, %.0f frames/s)", identity.name,
                    chunk.index + 1, of, "written" if written else "already stored", seen,
                    seen / max(time.perf_counter() - t0, 1e-9))

    chunks = iter_chunks(identity.url, config.chunk_frames, config.max_long_side,
                         config.decoder_threads)
    frames.write_chunks(chunks, skip=done, on_chunk=report)
    return counts["written"]


@task(name="ingest-video", task_run_name="ingest {identity.name}", retries=2,
      retry_delay_seconds=5, retry_condition_fn=retry_transient)
def ingest_video(
    store_url: str,
    identity: VideoIdentity,
    aliases: list[str],
    config: IngestConfig,
    overwrite: bool = False,
):
    """Prefect task around :func:`ingest_one`; a bad video ends Failed without retries."""
    store = DatasetStore(store_url)
    result = ingest_one(store, identity, config, overwrite, get_run_logger(), aliases)
    if result.outcome == "failed":
        return Failed(message=result.error, data=result)
    return result
