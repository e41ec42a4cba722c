"""Loading a trained network: the store's latest checkpoint, or a checkpoint file."""

from __future__ import annotations

from pathlib import Path

import torch

from handlabel.models.network import S2HandNet
from handlabel.models.training.setup import (
    checkpoint_from_bytes,
    make_hand_model,
    network_from_checkpoint,
)
from handlabel.storage.store import DatasetStore


class NoTrainedModel(LookupError):
    """No usable checkpoint where one was expected; the message says where."""


def load_trained_model(store: DatasetStore | None = None, checkpoint: str | Path | None = None,
                       hand_model: str | None = None, model: str = "s2hand"
                       ) -> tuple[S2HandNet, int]:
    """(network in eval mode, its input size) from ``checkpoint`` if given, else the store's
    model ``model`` (the train stage's, or a round's: ``tasks/rounds.py``)."""
    if checkpoint is not None:
        try:
            state = torch.load(Path(checkpoint), map_location="cpu", weights_only=True)
        except (OSError, RuntimeError) as exc:
            raise NoTrainedModel(f"{checkpoint}: not a readable checkpoint ({exc})") from exc
        name = hand_model or "default"
    else:
        if store is None or not store.has_model(model):
            raise NoTrainedModel(f"{store.url if store else '?'}: no trained model; run train")
        models = store.model(model)
        payload = models.latest_checkpoint()
        if payload is None:
            raise NoTrainedModel(f"{store.url}: the model has no checkpoint yet; run train")
        state = checkpoint_from_bytes(payload)
        name = hand_model or models.attrs.get("hand_model", "default")
    if not isinstance(state, dict) or "net" not in state:
        raise NoTrainedModel(f"{checkpoint}: not a handlabel checkpoint")
    net = network_from_checkpoint(state, make_hand_model(name)).eval()
    return net, int(state.get("input_size", 224))
