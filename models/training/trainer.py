"""The S2HAND training loop: Adam with step decay, the end-to-end or stage-wise loss schedule,
mixed precision on CUDA, and deterministic epochs.

Every epoch draws its sample order and augmentation from a generator seeded by (seed, epoch),
so resuming from the checkpoint written after epoch k gives the same parameters as a run
that never stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from ..hand.limits import rest_middle_proximal_length
from ..losses.objective import EXTRA_LOSSES, S2HandObjective, Supervision
from ..losses.s2hand import DEFAULT_WEIGHTS
from ..losses.stereo import StereoWeights
from ..network import S2HandNet
from ..render import Renderer
from .batches import Augmentation, HandCrops, make_batch
from .stereo_step import PairBatch, pair_batch, stereo_terms

GEOMETRY_LOSSES = ("reprojection", "bone_direction", "scale", "joint_angle", "shape", "laplacian")
STAGE_LOSSES = (GEOMETRY_LOSSES, (*GEOMETRY_LOSSES, "branch_2d"),
                (*DEFAULT_WEIGHTS, *EXTRA_LOSSES))


@dataclass
class TrainSettings:
    epochs: int = 180
    batch_size: int = 32
    learning_rate: float = 1e-3
    lr_milestones: tuple[int, ...] = (30, 60, 90, 120, 150)
    lr_gamma: float = 0.5
    seed: int = 0
    input_size: int = 224
    render_size: int = 224
    schedule: str = "end_to_end"  # or "stagewise"
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    augmentation: Augmentation | None = field(default_factory=Augmentation)
    amp: bool = True  # only on CUDA
    max_steps_per_epoch: int | None = None
    # seed 002's binocular terms on a rig's pairs (HandCrops.pairs); None: off
    stereo: StereoWeights | None = None
    stereo_scale: float = 1e-2
    pairs_per_step: int = 8


def epoch_weights(settings: TrainSettings, epoch: int) -> dict[str, float]:
    """The loss weights in force at ``epoch`` (stage-wise: thirds of the run add losses)."""
    if settings.schedule == "end_to_end":
        return settings.weights
    stage = min(3 * epoch // max(settings.epochs, 1), 2)
    return {k: v for k, v in settings.weights.items() if k in STAGE_LOSSES[stage]}


class Trainer:
    def __init__(self, net: S2HandNet, settings: TrainSettings, limit_frames: torch.Tensor,
                 renderer: Renderer | None = None, device: str | torch.device = "cpu",
                 reference: S2HandNet | None = None):
        """``reference``: the frozen network whose meshes the stereo edge loss keeps to."""
        self.device = torch.device(device)
        self.net = net.to(self.device)
        self.reference = None if reference is None else reference.to(self.device).eval()
        self.settings, self.renderer, self.frames = settings, renderer, limit_frames
        self.optimizer = torch.optim.Adam(
            [p for p in net.parameters() if p.requires_grad], lr=settings.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, list(settings.lr_milestones), settings.lr_gamma)
        self.amp = settings.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.epoch = 0  # epochs completed
        self.scale_reference = rest_middle_proximal_length(net.hand_model)

    def objective(self, epoch: int) -> S2HandObjective:
        return S2HandObjective(self.net.hand_model.faces, self.frames,
                               epoch_weights(self.settings, epoch), self.renderer,
                               self.settings.render_size, self.scale_reference)

    def train_epoch(self, data: HandCrops,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
        """One pass over ``data``; returns the epoch's mean terms, pixel errors and timing,
        and ``unrendered``: how many meshes the renderer could not render in the epoch."""
        s, epoch = self.settings, self.epoch
        generator = torch.Generator().manual_seed(s.seed * 1_000_003 + epoch)
        torch.manual_seed(s.seed * 1_000_003 + epoch)
        batches = _epoch_batches(data, s.batch_size, generator)[: s.max_steps_per_epoch]
        objective, sums, started = self.objective(epoch), {}, time.perf_counter()
        self.net.train()
        pairs = s.stereo is not None and data.pairs is not None and len(data.pairs) > 0
        for step, (indices, valid) in enumerate(batches):
            batch = make_batch(data, indices, s.input_size, self.device, s.augmentation,
                               generator, data.clip_length, valid)
            pair = (pair_batch(data, s.pairs_per_step, s.input_size, self.device, generator)
                    if pairs else None)
            for key, value in self.step(objective, batch, pair).items():
                sums[key] = sums.get(key, 0.0) + value
            if progress:
                progress(step + 1, len(batches))
        self.scheduler.step()
        self.epoch += 1
        unrendered = int(sums.pop("unrendered", 0))
        metrics = {key: value / len(batches) for key, value in sums.items()}
        return {"epoch": epoch, **metrics, "unrendered": unrendered,
                "lr": self.optimizer.param_groups[0]["lr"], "steps": len(batches),
                "seconds": time.perf_counter() - started}

    def step(self, objective: S2HandObjective, batch: Supervision,
             pair: PairBatch | None = None) -> dict[str, float]:
        prediction = self.net(batch.images, batch.K, amp=self.amp)
        terms = objective(prediction, batch)
        unrendered = terms.pop("unrendered", None)
        if pair is not None:
            stereo = stereo_terms(self.net, self.reference, self.renderer, pair,
                                  self.settings.stereo, self.settings.render_size, self.amp)
            terms.update({f"stereo_{k}": v for k, v in stereo.items() if k != "total"})
            terms["stereo"] = self.settings.stereo_scale * stereo["total"]
            terms["total"] = terms["total"] + terms["stereo"]
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms["total"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        weight = batch.confidence**2
        values = {f"loss_{k}": float(v.detach()) for k, v in terms.items()}
        values["reprojection_px"] = _weighted_px(prediction.joints_2d, batch.keypoints, weight)
        values["branch_px"] = _weighted_px(prediction.branch_2d, batch.keypoints, weight)
        if unrendered is not None:
            values["unrendered"] = float(unrendered)
        return values

    def state_dict(self) -> dict:
        return {"net": network_state(self.net), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "epoch": self.epoch, "spec": asdict(self.net.spec),
                "input_size": self.settings.input_size}

    def load_state_dict(self, state: dict) -> None:
        load_network_state(self.net, state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])


def _epoch_batches(data: HandCrops, batch_size: int, generator: torch.Generator
                   ) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """An epoch's batches as (sample indices, valid mask or None): shuffled samples, or with
    clips, shuffled clips (batch_size // T of them per batch, clip-major)."""
    if data.clips is None:
        order = torch.randperm(len(data), generator=generator)
        batches = list(order.split(batch_size))
        if len(batches) > 1 and len(batches[-1]) < 2:
            batches = batches[:-1]  # batch norm needs two samples
        return [(b, None) for b in batches]
    order = torch.randperm(len(data.clips), generator=generator)
    per_batch = max(batch_size // data.clip_length, 1)
    return [(data.clips[b].flatten(), data.clip_valid[b].flatten())
            for b in order.split(per_batch)]


def _weighted_px(predicted: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> float:
    distance = (predicted.detach() - target).norm(dim=-1)
    return float((distance * weight).sum() / weight.sum().clamp_min(1e-8))


def network_state(net: S2HandNet) -> dict[str, torch.Tensor]:
    """The learned state only: the hand model's fixed arrays are not saved with it."""
    return {k: v for k, v in net.state_dict().items() if not k.startswith("hand_model.")}


def load_network_state(net: S2HandNet, state: dict[str, torch.Tensor]) -> None:
    result = net.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("hand_model.")]
    if missing or result.unexpected_keys:
        raise ValueError(f"checkpoint does not fit the network: missing {missing[:5]}, "
                         f"unexpected {result.unexpected_keys[:5]}")
