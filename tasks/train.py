"""Train stage: the S2HAND network trained on the job's own hand crops, supervised by the
weighted detections; checkpoint after every epoch, resumable, metrics in the store."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from handlabel.config import (
    HandlabelConfig,
    RigStageConfig,
    RoundsConfig,
    TrainConfig,
    TrainPreset,
)
from handlabel.keys import stage_key
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.losses.stereo import StereoWeights
from handlabel.models.network import NetworkSpec, S2HandNet
from handlabel.models.render import make_renderer, renderer_name
from handlabel.models.training.batches import Augmentation, HandCrops
from handlabel.models.training.clips import clip_windows, sample_clip_rows
from handlabel.models.training.setup import (
    PRETRAINED_WIDTH,
    checkpoint_bytes,
    checkpoint_from_bytes,
    initialise_from_file,
    make_hand_model,
    pick_device,
    pretrained_checkpoint,
)
from handlabel.models.training.trainer import Trainer, TrainSettings
from handlabel.storage.hand_crops import (
    StoredHands,
    hand_index,
    read_hands,
    read_label_targets,
    sample_index,
)
from handlabel.storage.model_store import MODEL
from handlabel.storage.store import DatasetStore

from .rig_pairs import rig_pairs

STAGE = "train"
PAIR_INLIER = RigStageConfig().inlier_hand_sizes
EpochCallback = Callable[[dict, list[dict]], None]


@dataclass(frozen=True)
class LabelRound:
    """Training on the job's own labels besides the detections (a round of fit and
    training, ``tasks/rounds.py``): the weights of the label losses
    (``losses.objective.LABEL_LOSSES``) and the least quality a label needs
    (``train.rounds``; defaults there)."""

    labels_2d: float
    labels_3d: float
    min_quality: float

    @classmethod
    def of(cls, config: RoundsConfig) -> LabelRound:
        return cls(config.labels_2d, config.labels_3d, config.min_quality)


def settings_from_config(config: TrainConfig) -> TrainSettings:
    jitter = config.colour_jitter
    return TrainSettings(
        epochs=config.resolved("epochs"), batch_size=config.batch_size,
        learning_rate=config.learning_rate, lr_milestones=tuple(config.resolved("lr_milestones")),
        lr_gamma=config.lr_gamma, seed=config.seed, input_size=config.resolved("input_size"),
        render_size=config.resolved("render_size"), schedule=config.schedule,
        weights=config.losses.model_dump(),
        augmentation=Augmentation(config.rotation_deg, jitter, jitter, jitter, jitter / 6),
        amp=config.amp, stereo=_stereo_weights(config), stereo_scale=config.stereo.scale,
        pairs_per_step=config.stereo.pairs_per_step)


def _stereo_weights(config: TrainConfig) -> StereoWeights | None:
    if not config.stereo.enabled or not config.stereo.scale:
        return None
    return StereoWeights(**config.stereo.model_dump(include=set(StereoWeights.__annotations__)))


def crops_from_stored(hands: StoredHands) -> HandCrops:
    """Stored hands as tensors; the loss's confidence is sqrt(joint weight), so that its
    square (the reprojection weight of METHOD.md) is the weight stage's joint weight."""
    return HandCrops(torch.from_numpy(hands.images), torch.from_numpy(hands.keypoints).float(),
                     torch.from_numpy(np.sqrt(np.clip(hands.joint_weight, 0, None))).float(),
                     torch.from_numpy(hands.sample_weight).float(),
                     torch.from_numpy(hands.K).float(), torch.from_numpy(hands.world),
                     torch.from_numpy(hands.world_confidence), torch.from_numpy(hands.times))


def _tracks(index) -> np.ndarray:
    """A track identity per hand: its video and slot (a slot keeps one hand through the
    video: the detect stage's tracks run across chunk borders)."""
    return (index["video_id"].astype(str) + "/" + index["slot"].astype(str)).to_numpy()


def training_hands(store: DatasetStore, videos: list[str], config: TrainConfig,
                   pair_inlier: float = PAIR_INLIER, labels: LabelRound | None = None
                   ) -> HandCrops:
    """The job's usable hands, sampled to ``max_samples``; with ``clip_length`` > 1, grouped
    into clips of consecutive frames of one track (sampled as whole clips). Where the store
    has calibrated rigs (and ``stereo`` is on), the pairs of those hands seen by two cameras
    (``rig_pairs``, matched under ``pair_inlier`` hand sizes). With ``labels``, each hand's
    label from the store's labels as a target too (``read_label_targets``)."""
    index = hand_index(store, videos, config.min_joint_weight)
    length, limit = config.resolved("clip_length"), config.resolved("max_samples")
    if length == 1:
        index = sample_index(index, limit, config.seed)
    else:
        rows = sample_clip_rows(_tracks(index), index["frame"].to_numpy(), length,
                                config.clip_stride, limit, config.seed)
        index = index.iloc[rows].reset_index(drop=True)
    if len(index) < 2:
        raise ValueError(f"{len(index)} usable hands in {len(videos)} videos: too few to train")
    hands = read_hands(store, index)
    data = crops_from_stored(hands)
    if labels is not None:
        targets = read_label_targets(store, hands.index, labels.min_quality)
        data.label_joints = torch.from_numpy(targets.joints)
        data.label_weight = torch.from_numpy(targets.weight)
    if length > 1:
        windows, valid = clip_windows(_tracks(hands.index), hands.index["frame"].to_numpy(),
                                      length, config.clip_stride)
        data.clips, data.clip_valid = torch.from_numpy(windows), torch.from_numpy(valid)
    if _stereo_weights(config) is not None and store.rig_names():
        pairs, R, t = rig_pairs(store, hands.index, pair_inlier)
        data.pairs, data.pair_R, data.pair_t = (torch.from_numpy(pairs), torch.from_numpy(R),
                                                torch.from_numpy(t))
    return data


def initial_weights(config: TrainConfig) -> tuple[Path | None, str | None]:
    """The file training starts from (None: from scratch), and a warning where the shipped
    pretrained network was asked for but does not fit this network."""
    if config.init_checkpoint:
        return Path(config.init_checkpoint), None
    if not config.pretrained:
        return None, None
    width = config.resolved("encoder_width")
    if width != PRETRAINED_WIDTH or config.hand_model != "default":
        return None, (f"the shipped pretrained network is for encoder width {PRETRAINED_WIDTH} "
                      f"and the default hand, not width {width} and hand "
                      f"{config.hand_model!r}: training from scratch (build one with "
                      "scripts/pretrain_synthetic.py --width and set train.init_checkpoint)")
    return pretrained_checkpoint(), None


def _file_digest(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"  # initialise_from_file reports it when training starts


def training_key(config: TrainConfig) -> str:
    """What decides the trained network besides its data: the config, the values its preset
    fills in (so a changed preset table retrains), the renderer that 'auto' resolves to
    (should 'auto' ever pick another backend, stores trained with the old one retrain) and
    the content of the file training starts from (a rebuilt
    pretrained network retrains)."""
    resolved = {name: config.resolved(name) for name in TrainPreset.model_fields}
    renderer = renderer_name(config.renderer)
    return stage_key(STAGE, config, derived={"resolved": resolved, "renderer": renderer},
                     inputs=[f"init {_file_digest(initial_weights(config)[0])}"])


def model_identity(config_hash: str, inputs: str, checkpoint: bytes) -> str:
    """A trained model's identity: what made it (config key, the inputs' versions) and the
    content of its checkpoint. A retraining on a grown archive with the same epochs writes a
    checkpoint of the same name; its identity differs, so labels made with the old one are
    stale."""
    content = hashlib.sha256(checkpoint).hexdigest()
    return stage_key(f"{STAGE}.model", inputs=[config_hash, inputs, content])


def _inputs_version(store: DatasetStore, videos: list[str], config: TrainConfig,
                    pair_inlier: float, labels: LabelRound | None = None) -> str:
    """What the training data was made from: each video's weights and when they were made,
    where rig pairs are trained on, the residual that matched them, and with ``labels``,
    which labels (their config and when they were made) and how they were weighted."""
    table = store.manifest.table().set_index("video_id")
    version = ";".join(f"{v}@{table.loc[v, 'weight_config_hash']}@"
                       f"{table.loc[v, 'weight_finished']}" for v in sorted(videos))
    if _stereo_weights(config) is not None and store.rig_names():
        version += f"|rig pairs within {pair_inlier} hand sizes"
    if labels is not None:
        version += f"|{labels}|" + ";".join(f"{v}@{store.labels_version(v)}"
                                            for v in sorted(videos))
    return version


def train_is_current(store: DatasetStore, videos: list[str], config: TrainConfig,
                     pair_inlier: float = PAIR_INLIER, labels: LabelRound | None = None,
                     model: str = MODEL) -> bool:
    """Whether the store's model (``model``) is completely trained with this config on these
    videos' current weights (and, with ``labels``, their current labels)."""
    attrs = store.model(model).attrs if store.has_model(model) else {}
    return (bool(attrs.get("complete")) and attrs.get("config_hash") == training_key(config)
            and attrs.get("inputs") == _inputs_version(store, videos, config, pair_inlier,
                                                       labels))


def is_current(store: DatasetStore, unit: str, config: HandlabelConfig) -> bool:
    """The stage registry's currency test (flows/stages.py): the model (its one unit) is
    current with the store's weighted videos."""
    return train_is_current(store, store.videos_done("weight"), config.train,
                            config.rig.inlier_hand_sizes)


def train_store(store: DatasetStore, videos: list[str], config: TrainConfig,
                overwrite: bool = False, on_epoch: EpochCallback | None = None,
                logger: logging.Logger | None = None, pair_inlier: float = PAIR_INLIER,
                labels: LabelRound | None = None, model: str = MODEL) -> str:
    """Train (or resume training) on the hands of ``videos`` (with ``labels``, on their
    labels too) into the store's model ``model``; returns 'trained' or 'skipped'."""
    log = logger or logging.getLogger(__name__)
    if not overwrite and train_is_current(store, videos, config, pair_inlier, labels, model):
        return "skipped"
    config_hash, inputs = training_key(config), _inputs_version(store, videos, config,
                                                                 pair_inlier, labels)
    models = store.model(model)
    same = models.attrs.get("config_hash") == config_hash and models.attrs.get("inputs") == inputs
    # the train stage's model is the stage's record per video; a round's is the rounds'
    started = ({v: store.manifest.start_stage(v, STAGE, config_hash) for v in videos}
               if model == MODEL else {})
    try:
        _train(models, store, videos, config, config_hash, inputs, overwrite or not same,
               on_epoch, log, pair_inlier, labels)
    except Exception as exc:
        for v, t in started.items():
            store.manifest.finish_stage(v, STAGE, t, error=f"train: {exc}")
        raise
    for v, t in started.items():
        store.manifest.finish_stage(v, STAGE, t)
    return "trained"


def _train(models, store, videos, config, config_hash, inputs, restart, on_epoch, log,
           pair_inlier, labels) -> None:
    settings = settings_from_config(config)
    data = training_hands(store, videos, config, pair_inlier, labels)
    if labels is not None:
        settings.weights = {**settings.weights, "labels_2d": labels.labels_2d,
                            "labels_3d": labels.labels_3d}
        log.info("learning from %d of the %d hands' labels too",
                 int((data.label_weight > 0).sum()), len(data))
    if data.pairs is None or not len(data.pairs):
        settings.stereo = None
    hand_model = make_hand_model(config.hand_model)
    torch.manual_seed(config.seed)
    net = S2HandNet(hand_model, NetworkSpec(encoder_width=config.resolved("encoder_width")))
    device = pick_device(config.device)
    renderer = make_renderer(config.renderer) if _renders(settings) else None
    trainer = Trainer(net, settings, model_limit_frames(hand_model), renderer, device,
                      _frozen_reference(config, settings))
    payload = None if restart else models.latest_checkpoint()
    if payload is None:
        models.reset(config_hash=config_hash, inputs=inputs, samples=len(data),
                     videos=sorted(videos), hand_model=config.hand_model)
        init, warning = initial_weights(config)
        if warning:
            log.warning(warning)
        if init is not None:
            log.info("initialised from %s", initialise_from_file(net, init))
    else:
        trainer.load_state_dict(checkpoint_from_bytes(payload))
        log.info("resuming after epoch %d", trainer.epoch)
    rows = models.read_metrics().to_dict(orient="records")[: trainer.epoch]
    log.info("training on %d hands of %d videos%s%s, %d epochs, device %s", len(data),
             len(videos), f" as {len(data.clips)} clips of {data.clip_length} frames"
             if data.clips is not None else "",
             f", with {len(data.pairs)} rig pairs" if settings.stereo else "",
             settings.epochs, trainer.device)
    while trainer.epoch < settings.epochs:
        metrics = trainer.train_epoch(data, _progress_logger(log, trainer.epoch))
        models.write_checkpoint(metrics["epoch"], checkpoint_bytes(trainer.state_dict()))
        rows.append(metrics)
        models.write_metrics(rows)
        log.info("epoch %d/%d: reprojection %.1f px, 2D branch %.1f px, %.0f s",
                 metrics["epoch"] + 1, settings.epochs, metrics["reprojection_px"],
                 metrics["branch_px"], metrics["seconds"])
        if metrics["unrendered"]:
            log.warning("epoch %d: %d meshes could not be rendered (behind the camera, "
                        "non-finite or far outside the crop); their rendered losses saw a "
                        "blank image", metrics["epoch"] + 1, metrics["unrendered"])
        if on_epoch:
            on_epoch(metrics, rows)
    models.update_attrs(complete=True, input_size=settings.input_size,
                        identity=model_identity(config_hash, inputs, models.latest_checkpoint()))


def _renders(settings: TrainSettings) -> bool:
    return settings.stereo is not None or any(settings.weights.get(k)
                                              for k in ("photometric", "mean_colour"))


def _frozen_reference(config: TrainConfig, settings: TrainSettings) -> S2HandNet | None:
    """The network training starts from, frozen: the stereo edge loss's pseudo-meshes (the
    same on a resumed run). None without stereo terms or without a file to start from."""
    init, _ = initial_weights(config)
    if settings.stereo is None or not settings.stereo.edge or init is None:
        return None
    reference = S2HandNet(make_hand_model(config.hand_model),
                          NetworkSpec(encoder_width=config.resolved("encoder_width")))
    initialise_from_file(reference, init)
    return reference.requires_grad_(False)


def _progress_logger(log: logging.Logger, epoch: int) -> Callable[[int, int], None]:
    def report(step: int, steps: int) -> None:
        if step == steps or step % 10 == 0:
            log.info("epoch %d: step %d/%d", epoch + 1, step, steps)
    return report


def _metrics_artifact(metrics: dict, rows: list[dict]) -> None:
    table = [{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
             for row in rows]
    create_table_artifact(table=table, key="train-metrics",
                          description=f"S2HAND training, {len(rows)} epochs so far")


def usable_cpus() -> int:
    """The CPUs this process may use (its affinity where the OS has one, as Linux does)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextlib.contextmanager
def every_cpu_thread() -> Iterator[None]:
    """Torch on every CPU this process may use, for the duration. A Dask worker runs one
    thread (its nanny sets OMP_NUM_THREADS=1, so that parallel tasks do not oversubscribe the
    cores); the train stage is a single task, and the other workers wait for it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(usable_cpus(), threads))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@task(name="train", task_run_name="train s2hand")
def train_task(store_url: str, videos: list[str], config: TrainConfig,
               overwrite: bool = False, pair_inlier: float = PAIR_INLIER) -> str:
    with every_cpu_thread():
        return train_store(DatasetStore(store_url), videos, config, overwrite,
                           on_epoch=_metrics_artifact, logger=get_run_logger(),
                           pair_inlier=pair_inlier)
