"""The S2HAND network: image encoder, hand-model and appearance heads, and the 2D branch."""

from .s2hand import NetworkSpec, S2HandNet, S2HandPrediction

__all__ = ["NetworkSpec", "S2HandNet", "S2HandPrediction"]
