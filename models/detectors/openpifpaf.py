"""OpenPifPaf backend: the wholebody model; hands are keypoints 91-111 (left) and 112-132 (right).

OpenPifPaf is AGPL-3.0, so it is an optional extra, installed by ``scripts/install_openpifpaf.sh``
and never vendored. 0.13.11 predates the installed stack, which needs three adaptations. All
three apply only when needed:

- torchvision's wheel here links CUDA libraries that CPU torch lacks, so its C extension does
  not load. The two op schemas that torchvision's Python part registers unconditionally are
  then defined first (see :func:`import_openpifpaf`).
- matplotlib >= 3.9 removed ``cm.get_cmap``, which openpifpaf's visualizer calls at import.
- torch >= 2.6 loads checkpoints with ``weights_only=True``; openpifpaf's checkpoints pickle
  whole networks, so a local checkpoint is loaded with ``weights_only=False``. Only load
  checkpoints you trust.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .schema import NUM_JOINTS, HandDetection

LEFT_HAND = slice(91, 112)
RIGHT_HAND = slice(112, 133)
MIN_VISIBLE_JOINTS = 5


_SCHEMA_LIBRARIES: list = []  # a torch.library.Library must stay alive for its definitions


def _define_torchvision_op_schemas() -> None:
    import torch

    library = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):
        library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _SCHEMA_LIBRARIES.append(library)


def _import_torchvision() -> None:
    try:
        import torchvision
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        _define_torchvision_op_schemas()
        import torchvision  # noqa: F401


def import_openpifpaf():
    """Import openpifpaf on the current stack (see the module docstring)."""
    import matplotlib
    import matplotlib.cm

    if not hasattr(matplotlib.cm, "get_cmap"):
        matplotlib.cm.get_cmap = matplotlib.colormaps.get_cmap
    _import_torchvision()
    import openpifpaf

    return openpifpaf


@contextlib.contextmanager
def _full_pickle_loading() -> Iterator[None]:
    previous = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
        else:
            os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = previous


@dataclass(frozen=True)
class OpenPifPafOptions:
    checkpoint: str | None = "shufflenetv2k16-wholebody"  # a name (downloaded) or a local path
    random_init_base: str | None = None  # e.g. "shufflenetv2k16": untrained network (tests)
    long_edge: int | None = None
    seed: int = 0


def wholebody_head_metas(openpifpaf):
    from openpifpaf.plugins.wholebody.wholebody import Wholebody

    return Wholebody().head_metas


def hands_from_wholebody(data: np.ndarray, min_visible: int = MIN_VISIBLE_JOINTS
                         ) -> list[HandDetection]:
    """The hands of one wholebody annotation (133 x [x, y, confidence]), best first."""
    hands = []
    for side, block in (("left", LEFT_HAND), ("right", RIGHT_HAND)):
        joints = np.asarray(data[block], dtype=np.float64)
        confidence = np.clip(joints[:, 2], 0.0, 1.0)
        if (confidence > 0).sum() < min_visible:
            continue
        keypoints = joints[:, :2].copy()
        visible = confidence > 0
        keypoints[~visible] = keypoints[visible].mean(axis=0)  # invisible joints carry no place
        score = float(confidence[visible].mean())
        hands.append(HandDetection(keypoints, confidence, side, 1.0, score))
    assert all(h.keypoints.shape == (NUM_JOINTS, 2) for h in hands)
    return sorted(hands, key=lambda h: -h.score)


class OpenPifPafHandDetector:
    """Wholebody OpenPifPaf: every person's two hands; handedness is the body's own side."""

    name = "openpifpaf"

    def __init__(self, options: OpenPifPafOptions | None = None):
        self.options = options or OpenPifPafOptions()
        openpifpaf = import_openpifpaf()
        import torch

        torch.manual_seed(self.options.seed)
        factory = openpifpaf.network.Factory
        saved = factory.base_name, factory.checkpoint
        try:
            if self.options.random_init_base:
                factory.base_name, factory.checkpoint = self.options.random_init_base, None
                self.predictor = openpifpaf.Predictor(head_metas=wholebody_head_metas(openpifpaf))
            else:
                factory.base_name = None
                checkpoint = self._checkpoint()
                try:
                    with _full_pickle_loading():
                        self.predictor = openpifpaf.Predictor(checkpoint=checkpoint)
                except OSError as exc:  # a named checkpoint that cannot be downloaded
                    raise FileNotFoundError(
                        f"{checkpoint}: OpenPifPaf checkpoint could not be downloaded ({exc}); "
                        "give a local file with detect.model_path") from exc
        finally:
            factory.base_name, factory.checkpoint = saved
        self.predictor.long_edge = self.options.long_edge

    def _checkpoint(self) -> str:
        """A checkpoint name (downloaded by openpifpaf when online) or an existing local file."""
        checkpoint = self.options.checkpoint
        local = checkpoint and ("/" in checkpoint or checkpoint.endswith((".pkl", ".pt", ".pth")))
        if local and not Path(checkpoint).is_file():
            raise FileNotFoundError(f"{checkpoint}: OpenPifPaf checkpoint not found")
        return checkpoint

    def detect_image(self, rgb: np.ndarray) -> list[HandDetection]:
        predictions, _, _ = self.predictor.numpy_image(np.ascontiguousarray(rgb))
        hands = [hand for person in predictions for hand in hands_from_wholebody(person.data)]
        return sorted(hands, key=lambda h: -h.score)

    def detect_video(self, frames: Iterable[np.ndarray], timestamps: Iterable[float]
                     ) -> Iterator[list[HandDetection]]:
        for rgb, _ in zip(frames, timestamps, strict=True):
            yield self.detect_image(rgb)

    def close(self) -> None:
        pass
