"""Hand keypoint detectors behind one interface (``HandDetector``) and one output schema."""

from .schema import JOINT_NAMES, NUM_JOINTS, HandDetection, HandDetector

__all__ = ["JOINT_NAMES", "NUM_JOINTS", "HandDetection", "HandDetector"]
