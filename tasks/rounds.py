"""The rounds stage's units of work: rounds of fit and training (``train.rounds``).

Round 0 is what the train and reconstruct stages made. Round k retrains the network on the
detections and on the store's labels (the last kept round's; ``train.LabelRound``) into its
own model, labels every video again with it (network step and sequence fit, the network's
3D as evidence at ``train.rounds.network_3d``) and measures the new labels with the
self-check, whose seeded spans are the same every round. The new labels replace the
store's (``videos/<id>/reconstruct``) only where the store's self-check falls by at least
``min_gain``; the rounds stop at the first round that does not (``round_helped``).

Kept per round in the store: its model (``models/s2hand-round<k>``), per video its network
step and labels (``videos/<id>/rounds/<k>/network`` and ``.../labels``; round 0's labels as
``rounds/0/labels``), and the store's record (the ``rounds`` group's attrs: each round's
self-check and whether it was kept). Labels a round replaced keep round 0's key and inputs
(so the reconstruct stage stays current) with ``round`` and ``round_model`` besides, which
the stages after them key on (``DatasetStore.labels_version``). The stage's own key is its
config, the training and reconstruct configs and every video's round-0 labels: a rerun
with the same is skipped, and any change starts again from round 0.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
from prefect import get_run_logger, task

from handlabel.config import HandlabelConfig, ReconstructConfig
from handlabel.keys import stage_key
from handlabel.models.fit.selfcheck import summarise
from handlabel.storage.model_store import MODEL
from handlabel.storage.store import DatasetStore

from .reconstruct import STAGE as LABELS
from .reconstruct import (
    LabelSource,
    fit_reconstruct,
    label_stats,
    model_version,
    network_step,
)
from .retry import retry_transient
from .train import LabelRound, every_cpu_thread, train_store, training_key

STAGE = "rounds"
ROUND_0_COPY = "rounds/0/labels"
RUNNING = "running"  # the record's ``stopped`` while the rounds run


@dataclass(frozen=True)
class RoundCheck:
    """A round's self-check over the store: the hidden detections' distance from the labels
    fitted without them (median px over every video's hidden frames) and from a straight
    line between the span's ends, and how many frames that is."""

    round: int
    frames: int
    labels_px: float | None
    interpolation_px: float | None
    kept: bool = False
    seconds: float = 0.0


def round_source(k: int) -> LabelSource:
    """Round ``k``'s model and groups (``k`` >= 1)."""
    return LabelSource(f"{MODEL}-round{k}", f"rounds/{k}/network", f"rounds/{k}/labels")


def rounds_key(store: DatasetStore, videos: list[str], config: HandlabelConfig) -> str:
    """What decides the rounds: their config, training's and reconstruct's, and each video's
    round-0 labels (the reconstruct stage's key and finish time)."""
    rows = [store.manifest.get(v) for v in sorted(videos)]
    return stage_key(STAGE, config.train.rounds, inputs=[
        training_key(config.train), stage_key(LABELS, config.reconstruct),
        *(f"{r['video_id']}@{r['reconstruct_config_hash']}@{r['reconstruct_finished']}"
          for r in rows)])


def read_record(store: DatasetStore) -> dict:
    """The store's rounds record (empty where rounds never ran)."""
    group = store.root.get(STAGE)
    return dict(group.attrs) if group is not None else {}


def write_record(store: DatasetStore, key: str, checks: list[RoundCheck], complete: bool,
                 stopped: str) -> None:
    kept = max((c.round for c in checks if c.kept), default=0)
    store.root.require_group(STAGE).attrs.put({
        "key": key, "complete": complete, "kept": kept, "stopped": stopped,
        "rounds": [asdict(c) for c in checks]})


def mark_failed(store: DatasetStore, error: str) -> None:
    """An unfinished record says why it stopped (and stops counting as running)."""
    group = store.root.get(STAGE)
    if group is not None and not group.attrs.get("complete"):
        group.attrs["stopped"] = f"failed: {error}"


def progress(store: DatasetStore, config: HandlabelConfig) -> tuple[int, int, str, str] | None:
    """While the rounds run: rounds done of those asked for, and what the current round is
    doing (its network's training epochs, then the labelling); None otherwise."""
    record = read_record(store)
    if record.get("complete") or record.get("stopped") != RUNNING:
        return None
    k = len(record["rounds"])
    model = round_source(k).model
    trained = len(store.model(model).read_metrics()) if store.has_model(model) else 0
    epochs = config.train.resolved("epochs")
    doing = (f"training its network, epoch {trained}/{epochs}" if trained < epochs
             else "labelling the videos with it")
    return k - 1, config.train.rounds.count, "rounds", f"round {k}: {doing}"


def is_current(store: DatasetStore, unit: str, config: HandlabelConfig) -> bool:
    """The stage registry's currency test (flows/stages.py): the rounds (one unit per store)
    are done with this config over the store's reconstructed videos. A store that never ran
    rounds and asks for none is current."""
    record = read_record(store)
    if not record:
        return config.train.rounds.count == 0
    return bool(record.get("complete")) and record.get("key") == rounds_key(
        store, store.videos_done(LABELS), config)


def round_helped(before: RoundCheck, after: RoundCheck, min_gain: float) -> bool:
    """Whether ``after``'s labels predict the hidden detections better than ``before``'s by
    at least ``min_gain`` (a share); without a self-check on either, a round is kept
    unmeasured.

    >>> round_helped(RoundCheck(0, 40, 10.0, 12.0), RoundCheck(1, 40, 9.7, 12.0), 0.02)
    True
    >>> round_helped(RoundCheck(0, 40, 10.0, 12.0), RoundCheck(1, 40, 9.9, 12.0), 0.02)
    False
    """
    if not before.frames or not after.frames:
        return True
    return after.labels_px <= before.labels_px * (1.0 - min_gain)


def pooled_check(round_: int, per_video: list[tuple[list[float], list[float]]]) -> RoundCheck:
    """One round's self-check from its videos' hidden frames (``selfcheck_values``)."""
    labels = np.array([x for px, _ in per_video for x in px], dtype=float)
    straight = np.array([x for _, px in per_video for x in px], dtype=float)
    check = summarise(labels, straight)
    if not check.frames:
        return RoundCheck(round_, 0, None, None)
    return RoundCheck(round_, check.frames, check.labels_px, check.interpolation_px)


def selfcheck_values(store: DatasetStore, video_id: str, group: str
                     ) -> tuple[list[float], list[float]]:
    """A video's self-check pixels (fitted, straight line) on its measured hidden frames."""
    labels = store.stage(video_id, group)
    if "selfcheck_px" not in labels.group:
        return [], []
    fitted, straight = labels.read("selfcheck_px"), labels.read("selfcheck_interpolation_px")
    both = np.isfinite(fitted) & np.isfinite(straight)
    return fitted[both].tolist(), straight[both].tolist()


def start_rounds(store: DatasetStore, video_id: str, count: int
                 ) -> tuple[list[float], list[float]]:
    """Round 0 of a video: its labels kept as ``rounds/0/labels``, or, where a round before
    had replaced them, restored from there; the groups of rounds beyond ``count`` (an
    earlier config's) removed. Returns its self-check (``selfcheck_values``)."""
    _forget_rounds_beyond(store.videos[video_id].get(STAGE), count)
    labels = store.stage(video_id, LABELS)
    if not labels.attrs.get("round"):
        labels.copy_to(store.videos[video_id], ROUND_0_COPY, labels.attrs)
        return selfcheck_values(store, video_id, LABELS)
    kept = store.stage(video_id, ROUND_0_COPY)
    made = ("config_hash", "inputs")
    if kept is None or any(kept.attrs.get(k) != labels.attrs.get(k) for k in made):
        raise RuntimeError(f"{video_id}: round 0's labels are not in the store; rerun "
                           "reconstruct with --overwrite")
    restored = kept.copy_to(store.videos[video_id], LABELS, kept.attrs)
    store.manifest.upsert(video_id, **label_stats(restored))
    return selfcheck_values(store, video_id, LABELS)


def _forget_rounds_beyond(rounds, count: int) -> None:
    for name in list(rounds.group_keys()) if rounds is not None else []:
        if name.isdigit() and int(name) > count:
            del rounds[name]


def forget_models_beyond(store: DatasetStore, count: int) -> None:
    """The models of rounds beyond ``count`` (an earlier config's) removed."""
    models = store.root.get("models")
    prefix = f"{MODEL}-round"
    for name in list(models.group_keys()) if models is not None else []:
        if name.startswith(prefix) and int(name.removeprefix(prefix)) > count:
            del models[name]


def train_round(store: DatasetStore, videos: list[str], k: int, config: HandlabelConfig,
                logger: logging.Logger | None = None) -> str:
    """Round ``k``'s network: trained on the detections and the store's labels."""
    return train_store(store, videos, config.train, logger=logger,
                       pair_inlier=config.rig.inlier_hand_sizes,
                       labels=LabelRound.of(config.train.rounds), model=round_source(k).model)


def round_fit_config(config: HandlabelConfig) -> ReconstructConfig:
    """The reconstruct config of the rounds' fits: the network's 3D as evidence."""
    data = config.reconstruct.model_dump()
    data["fit"]["weights"]["network_3d"] = config.train.rounds.network_3d
    return ReconstructConfig.model_validate(data)


def label_round(store: DatasetStore, video_id: str, k: int, config: HandlabelConfig
                ) -> tuple[list[float], list[float]]:
    """A video labelled with round ``k``'s network (its network step and fit, into the
    round's groups); returns the new labels' self-check (``selfcheck_values``)."""
    source, fit_config = round_source(k), round_fit_config(config)
    network_step(store, video_id, fit_config, source)
    fit_reconstruct(store, video_id, fit_config, source)
    store.stage(video_id, source.labels).update_attrs(complete=True)
    return selfcheck_values(store, video_id, source.labels)


def accept_round(store: DatasetStore, video_id: str, k: int) -> None:
    """Round ``k``'s labels become the video's labels. They keep round 0's key and inputs
    (the reconstruct stage made what they descend from) and say which round they are."""
    source = round_source(k)
    current = store.stage(video_id, LABELS)
    made = {key: current.attrs[key] for key in ("config_hash", "inputs")}
    new = store.stage(video_id, source.labels)
    attrs = {**new.attrs, **made, "round_config_hash": new.attrs["config_hash"], "round": k,
             "round_model": model_version(store, source.model), "complete": True}
    accepted = new.copy_to(store.videos[video_id], LABELS, attrs)
    store.manifest.upsert(video_id, **label_stats(accepted))


@task(name="rounds-start", task_run_name="rounds-start {video_id}")
def start_rounds_task(store_url: str, video_id: str, count: int
                      ) -> tuple[list[float], list[float]]:
    return start_rounds(DatasetStore(store_url), video_id, count)


@task(name="rounds-train", task_run_name="rounds-train round {k}")
def train_round_task(store_url: str, videos: list[str], k: int, config: HandlabelConfig
                     ) -> str:
    with every_cpu_thread():
        return train_round(DatasetStore(store_url), videos, k, config, get_run_logger())


@task(name="rounds-label", task_run_name="rounds-label {video_id} round {k}", retries=1,
      retry_delay_seconds=1, retry_condition_fn=retry_transient)
def label_round_task(store_url: str, video_id: str, k: int, config: HandlabelConfig
                     ) -> tuple[list[float], list[float]]:
    return label_round(DatasetStore(store_url), video_id, k, config)


@task(name="rounds-accept", task_run_name="rounds-accept {video_id} round {k}")
def accept_round_task(store_url: str, video_id: str, k: int) -> None:
    accept_round(DatasetStore(store_url), video_id, k)
