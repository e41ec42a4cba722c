"""The configuration's defaults are the models' own: each model dataclass built from a
default config equals the dataclass's defaults. They are written apart (handlabel/config.py
may not import models), so this is what keeps the pipeline, the benches and the tests, which
build the dataclasses directly, on one set of numbers."""

from __future__ import annotations

import dataclasses

from handlabel.config import DetectConfig, FitConfig, TrainConfig
from handlabel.models.detectors.mediapipe import MediaPipeOptions
from handlabel.models.fit.cuts import CutThresholds
from handlabel.models.fit.sequence import FitWeights
from handlabel.models.losses.stereo import StereoWeights
from handlabel.models.training.trainer import TrainSettings


def test_the_fit_weights():
    from handlabel.tasks.hand_fit import fit_weights_of

    assert fit_weights_of(FitConfig()) == FitWeights()


def test_the_cut_thresholds():
    fit = FitConfig()
    assert CutThresholds(fit.cut_shape, fit.cut_position, fit.cut_size) == CutThresholds()


def test_the_stereo_weights():
    from handlabel.tasks.train import _stereo_weights

    config = TrainConfig()
    enabled = config.model_copy(update={"stereo": config.stereo.model_copy(
        update={"enabled": True})})
    assert _stereo_weights(enabled) == StereoWeights()


def test_the_training_settings_that_no_preset_fills_in():
    """The preset decides epochs, sizes and milestones (TrainSettings' defaults are the
    paper's full run); every other setting is the trainer's own default."""
    from handlabel.tasks.train import settings_from_config

    configured = dataclasses.asdict(settings_from_config(TrainConfig()))
    own = dataclasses.asdict(TrainSettings())
    preset = {"epochs", "input_size", "render_size", "lr_milestones", "weights"}
    assert {k: v for k, v in configured.items() if k not in preset} == \
        {k: v for k, v in own.items() if k not in preset}
    # S2HAND's losses as the trainer weighs them; the config adds terms that are not
    # S2HAND's own (clip losses, the teacher's 3D), each with its weight there
    shared = own["weights"].keys()
    assert {k: configured["weights"][k] for k in shared} == own["weights"]
    assert set(configured["weights"]) - shared == {
        "teacher_3d", "motion", "shape_consistency", "texture_consistency", "camera_smoothness"}


def test_the_detector_options():
    from handlabel.tasks.detect import detector_from_config

    detector = detector_from_config(DetectConfig())
    try:
        assert detector.options == MediaPipeOptions()
    finally:
        detector.close()
