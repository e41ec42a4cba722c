"""The pipeline's stages in one process, through the tasks' own units of work (no Prefect
API, no cluster), for benchmarks that run them many times: ingest, detect, weight, train,
reconstruct. Each stage skips what its key says is current, as a rerun does.
"""

from __future__ import annotations

import logging
from pathlib import Path

from handlabel.config import HandlabelConfig
from handlabel.storage.store import DatasetStore

LOG = logging.getLogger("bench")


def label_videos(store: DatasetStore, paths: list[Path], config: HandlabelConfig) -> list[str]:
    """Every stage up to reconstruct for ``paths``; returns their video ids, in order."""
    from handlabel.tasks.detect import detect_run, finish_detect, prepare_detect
    from handlabel.tasks.detect_identity import repair_identity
    from handlabel.tasks.identify import identify
    from handlabel.tasks.ingest import ingest_one
    from handlabel.tasks.train import train_store
    from handlabel.tasks.weight import weight_video

    videos = []
    for path in paths:
        identity = identify(str(path), store.url)
        result = ingest_one(store, identity, config.ingest, False, LOG)
        if result.outcome == "failed":
            raise RuntimeError(result.error)
        videos.append(identity.video_id)
    for video in videos:
        todo = prepare_detect(store, video, config.detect, False)
        if todo is not None:
            for chunk in todo:
                detect_run(store, video, [chunk], config.detect)
            repair_identity(store, video, config.detect)
            finish_detect(store, video)
        weight_video(store, video, config.weight, False)
    train_store(store, store.videos_done("weight", None), config.train, logger=LOG)
    reconstruct_videos(store, videos, config)
    return videos


def reconstruct_videos(store: DatasetStore, videos: list[str], config: HandlabelConfig) -> None:
    """The reconstruct stage of ``videos`` (network step and fit), where not current."""
    from handlabel.tasks.reconstruct import (
        finish_reconstruct,
        fit_reconstruct,
        prepare_reconstruct,
        reconstruct_chunk,
    )

    for video in videos:
        todo = prepare_reconstruct(store, video, config.reconstruct, False)
        if todo is not None:
            for chunk in todo:
                reconstruct_chunk(store, video, chunk, config.reconstruct)
            fit_reconstruct(store, video, config.reconstruct)
            finish_reconstruct(store, video)
