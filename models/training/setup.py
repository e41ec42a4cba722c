"""Building the training pieces from plain values: hand model, network, device, checkpoint
(de)serialisation. Kept apart from the loop so that tasks and benches share them."""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path

import torch

from ..hand.base import HandModel
from ..network import NetworkSpec, S2HandNet
from ..network.s2hand import load_encoder_weights
from .trainer import load_network_state

PRETRAINED_WIDTH = 16  # the shipped network's encoder width (the demo preset's)


def pretrained_checkpoint() -> Path:
    """The shipped network pretrained on synthetic hands for the default hand model
    (``scripts/pretrain_synthetic.py``; command and sha256 in docs/components.md)."""
    return Path(str(resources.files("handlabel.models.network").joinpath(
        "assets", "synthetic_w16.pt")))


def make_hand_model(name: str) -> HandModel:
    """'default' for the embedded hand, else a path to a MANO_RIGHT.pkl."""
    if name == "default":
        from ..hand.default import DefaultHandModel

        return DefaultHandModel()
    from ..hand.mano import ManoHandModel

    return ManoHandModel(name)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def checkpoint_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def checkpoint_from_bytes(payload: bytes) -> dict:
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)


def network_from_checkpoint(state: dict, hand_model: HandModel) -> S2HandNet:
    """A network shaped and filled as the checkpoint says."""
    spec = dict(state["spec"])
    spec["encoder_blocks"] = tuple(spec["encoder_blocks"])
    net = S2HandNet(hand_model, NetworkSpec(**spec))
    load_network_state(net, state["net"])
    return net


def initialise_from_file(net: S2HandNet, path: str | Path) -> str:
    """Fill ``net`` from a local file: a handlabel checkpoint (all of it), or a ResNet state
    dict with torchvision names (the encoder). Returns what was loaded, for the log."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise ValueError(f"{path}: not a readable torch checkpoint ({exc})") from exc
    if isinstance(state, dict) and "net" in state:
        load_network_state(net, state["net"])
        return f"{path}: handlabel checkpoint (epoch {state.get('epoch')})"
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        missing = load_encoder_weights(net, state)
    except RuntimeError as exc:
        raise ValueError(f"{path}: does not fit the encoder (width "
                         f"{net.spec.encoder_width}): {exc}") from exc
    if len(missing) == len(net.encoder.state_dict()):
        raise ValueError(f"{path}: no encoder weights found in it")
    return f"{path}: encoder weights ({len(missing)} encoder tensors not in the file)"
