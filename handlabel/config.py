"""The one configuration file: a YAML document with a section per stage, validated by pydantic.

Every field carries its default and a description; ``handlabel config --reference`` renders
them as ``docs/configuration.md`` (a test keeps that file in step with this module).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Matrix3 = list[list[float]]


class ConfigError(ValueError):
    """A configuration file that cannot be read or does not validate."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_matrix3(value: Matrix3 | None) -> Matrix3 | None:
    if value is None:
        return None
    if len(value) != 3 or any(len(row) != 3 for row in value):
        raise ValueError("K must be a 3x3 matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]")
    if value[0][0] <= 0 or value[1][1] <= 0:
        raise ValueError("K must have positive focal lengths fx = K[0][0] and fy = K[1][1]")
    return value


class CameraConfig(Section):
    """Camera intrinsics, for frames as displayed (rotation applied) at the source resolution."""

    K: Matrix3 | None = Field(
        None, description="3x3 intrinsics for every video; null to use per_video or estimate."
    )
    per_video: dict[str, Matrix3] = Field(
        default_factory=dict,
        description="File-name glob -> 3x3 intrinsics; the first matching glob wins over K.",
    )
    assumed_fov_deg: float = Field(
        60.0,
        gt=1.0,
        lt=179.0,
        description="Field of view across the longer image side, used to estimate K when none "
        "is given (the video is then marked intrinsics_estimated).",
    )

    _check_k = field_validator("K")(_check_matrix3)

    @field_validator("per_video")
    @classmethod
    def _check_per_video(cls, value: dict[str, Matrix3]) -> dict[str, Matrix3]:
        for matrix in value.values():
            _check_matrix3(matrix)
        return value


class CompressionConfig(Section):
    """Compression of the frame chunks."""

    codec: Literal["h264", "zstd", "blosc-lz4", "blosc-zstd", "none"] = Field(
        "h264", description="Codec of the frame chunks: h264 stores each chunk as a short "
        "H.264 segment (lossy; docs/components.md, \"The frame codec\", says what it costs "
        "the stages); the others are lossless."
    )
    level: int = Field(-3, ge=-7, le=19, description="Level of the lossless codecs (zstd "
                       "accepts negative levels).")
    crf: int = Field(18, ge=0, le=51, description="h264: x264's constant rate factor; lower "
                     "keeps more detail and takes more bytes.")


class IngestConfig(Section):
    """Stage 1: decode each video into Zarr frame chunks."""

    chunk_frames: int = Field(64, ge=1, le=4096, description="Frames per Zarr chunk.")
    max_long_side: int | None = Field(
        None, ge=16, description="Resize so the longer side is at most this many pixels."
    )
    extensions: list[str] = Field(
        default_factory=lambda: [".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg"],
        description="File extensions taken as videos when a folder is scanned.",
    )
    decoder_threads: int = Field(
        0, ge=0, description="Decoder threads per video; 0 lets FFmpeg choose."
    )
    compression: CompressionConfig = Field(default_factory=CompressionConfig)
    camera: CameraConfig = Field(default_factory=CameraConfig)


class DetectConfig(Section):
    """Stage 2: hand boxes, handedness and 21 keypoints with per-joint confidence."""

    backend: Literal["mediapipe", "openpifpaf"] = Field(
        "mediapipe", description="Detector backend."
    )
    model_path: str | None = Field(
        None, description="Model file; null: the one set-up builds (mediapipe), or the "
        "backend's default checkpoint."
    )
    max_hands: int = Field(2, ge=1, le=2, description="Hands per frame.")
    min_detection: float = Field(0.5, ge=0, le=1, description="Palm detection threshold.")
    min_presence: float = Field(0.5, ge=0, le=1, description="Hand presence threshold.")
    min_tracking: float = Field(0.5, ge=0, le=1, description="Tracking threshold (video).")
    warmup_frames: int = Field(
        8, ge=0, le=256, description="Frames before a chunk that its task detects again, "
        "unseen, so that the slot tracker and the detector's video trackers (TTA views too) "
        "carry over the chunk border and a hand keeps its slot; 0 starts each chunk afresh."
    )
    mirrored_input: bool = Field(
        False, description="Footage is mirrored (selfie view): swap the handedness labels."
    )
    search_frames: int = Field(
        15, ge=0, le=256, description="Video: for this many frames after the detector loses "
        "a tracked hand, the detector looks again on a crop around where the track predicts "
        "it (hands under an object that the full frame's palm detection misses); such hands "
        "are flagged 'searched'. 0: off."
    )
    identity: bool = Field(
        True, description="Video: once all chunks are detected, decide which hand is which "
        "over the whole video (hands linked by continuity; each linked group sided by all "
        "its frames' handedness and the two hands' image order) and move hands whose side "
        "the detector got wrong to their slot. false: the frame-by-frame tracker's slots."
    )
    tta: list[str] = Field(
        default_factory=lambda: ["hflip", "rot+20", "rot-20"],
        description="Test-time augmentations whose agreement gives the per-joint confidence "
        "('hflip', 'rotN', 'scaleF', combined with ','); empty: confidence = hand score.",
    )
    tta_sigma: float = Field(
        0.08, gt=0, description="Joint spread across augmentations (in hand sizes) at which "
        "confidence falls to exp(-0.5)."
    )
    tta_every: int = Field(
        8, ge=1, description="Video: the most frames a hand's view agreement is carried before "
        "its views run again (1: views on every frame). The views also run for a new hand "
        "and where a joint leaves its constant-velocity path by more than tta_jump."
    )
    tta_jump: float = Field(
        0.3, gt=0, description="Video: a joint this far (in hand sizes) from where its last "
        "two positions put it makes the hand's views run on this frame."
    )
    crop_size: int = Field(224, ge=32, description="Side of the square hand crops, in pixels.")
    crop_codec: Literal["h264", "zstd"] = Field(
        "h264", description="Codec of the stored crops: h264 (each slot's crops as one H.264 "
        "stream per chunk, at the frames' default quality) or zstd (lossless).")
    crop_margin: float = Field(
        1.6, ge=1.0, description="Crop side as a multiple of the keypoints' longer box side."
    )


class WeightConfig(Section):
    """Stage 3: supervision weights from confidence, temporal agreement and plausibility."""

    min_confidence: float = Field(
        0.1, ge=0, le=1, description="Photometric gate: a sample whose smallest joint "
        "confidence is at or below this gets photometric weight 0 (else its mean confidence)."
    )
    temporal_jump: float = Field(
        0.3, gt=0, description="A joint this many hand sizes away from the midpoint of its "
        "positions in the previous and next frames is a temporal outlier."
    )
    max_bone_ratio: float = Field(
        1.2, gt=0, description="A 2D finger bone longer than this times the palm's size is "
        "implausible (both its joints are down-weighted)."
    )
    min_hand_px: float = Field(8.0, ge=0, description="Hands smaller than this are implausible.")
    outlier_factor: float = Field(
        0.1, ge=0, le=1, description="Confidence multiplier for outlier or implausible joints."
    )
    colour_outlier: float | None = Field(
        3.0, gt=0, description="A detected joint whose colour in the frame is more than this "
        "many robust deviations from that joint's usual colour over the video is covered by "
        "something (an outlier; `visible` false). None: colour is not used."
    )


class LossWeights(Section):
    """Weights of the S2HAND losses (METHOD.md section 1; defaults are the public code's
    end-to-end configuration). 0 switches a loss off."""

    reprojection: float = Field(1e-3, ge=0, description="Robust, confidence-weighted 2D "
                                "reprojection of the 3D joints vs the detections.")
    bone_direction: float = Field(0.1, ge=0, description="2D bone directions vs detected.")
    branch_2d: float = Field(1e-3, ge=0, description="2D heatmap branch vs the detections.")
    consistency_2d3d: float = Field(2e-4, ge=0, description="Projected 3D joints vs the 2D "
                                    "branch.")
    scale: float = Field(0.1, ge=0, description="Middle proximal bone length = 2.82 cm.")
    joint_angle: float = Field(0.1, ge=0, description="Joint angles inside anatomical limits.")
    shape: float = Field(1e-2, ge=0, description="Shape coefficients towards 0.")
    laplacian: float = Field(0.1, ge=0, description="Mesh smoothness.")
    photometric: float = Field(5e-3, ge=0, description="Rendered vs input colour (L1 + "
                               "1 - SSIM) under the silhouette, gated per sample.")
    mean_colour: float = Field(1e-3, ge=0, description="Mean rendered vs input colour.")
    texture_outliers: float = Field(5e-3, ge=0, description="Face colours beyond 2 sigma.")
    teacher_3d: float = Field(0.0, ge=0, description="Not S2HAND's: the predicted joints vs "
                              "the detector's 3D (centred, unit size, best rotation), weighted "
                              "by its 3D confidence; 0 (default, by measurement: "
                              "docs/accuracy.md) is pure S2HAND.")
    motion: float = Field(10.0, ge=0, description="S2HAND(V), clips only: the change of "
                          "every joint's frame-to-frame relative rotation (unit quaternions; "
                          "a constant rotation speed costs nothing).")
    shape_consistency: float = Field(1.0, ge=0, description="S2HAND(V), clips only: shape "
                                     "coefficients of a clip's frames vs their "
                                     "confidence-weighted mean.")
    texture_consistency: float = Field(1.0, ge=0, description="S2HAND(V), clips only: vertex "
                                       "colours of a clip's frames vs their mean.")
    camera_smoothness: float = Field(10.0, ge=0, description="Clips only: acceleration of the "
                                     "predicted translation (per depth) and log scale.")


class TrainPreset(Section):
    """Values a preset fills in for the train fields left null."""

    epochs: int
    encoder_width: int
    input_size: int
    render_size: int
    max_samples: int | None
    lr_milestones: list[int]
    clip_length: int


TRAIN_PRESETS = {
    "demo": TrainPreset(epochs=4, encoder_width=16, input_size=128, render_size=64,
                        max_samples=512, lr_milestones=[3], clip_length=1),
    "full": TrainPreset(epochs=180, encoder_width=64, input_size=224, render_size=224,
                        max_samples=None, lr_milestones=[30, 60, 90, 120, 150],
                        clip_length=1),
}


class StereoLossConfig(Section):
    """Seed 002's binocular self-supervision, on pairs of crops of one hand seen by two
    cameras of a calibrated rig (``rig.rigs``), when enabled and the store has a rig."""

    enabled: bool = Field(False, description="Train on a rig's pairs when the store has one. "
                          "Off by default: on the sample stereo pair (demo preset) it did not "
                          "make the labels better (docs/accuracy.md, Calibrated rigs).")
    scale: float = Field(1e-2, ge=0, description="Factor on the seed's weighted sum, placing "
                         "it against the monocular losses.")
    pairs_per_step: int = Field(8, ge=1, description="Pairs of crops per training step (each "
                                "used in both directions).")
    photo: float = Field(100.0, ge=0, description="Photo-consistency of the other view warped "
                         "through the carried mesh: alpha/2 (1 - SSIM) + (1 - alpha) L1 in "
                         "the mask.")
    edge: float = Field(1.0, ge=0, description="Edge lengths against the frozen initial "
                        "network's pseudo-mesh (off when training starts from scratch).")
    laplacian: float = Field(10.0, ge=0, description="Mesh smoothness.")
    mask: float = Field(0.1, ge=0, description="The carried mesh's silhouette against the "
                        "other view's own predicted one (no skin detector here).")
    chamfer: float = Field(0.001, ge=0, description="Chamfer distance between the two views' "
                           "meshes in one frame.")
    normal: float = Field(0.001, ge=0, description="Normal agreement between the two views' "
                          "meshes.")


class RoundsConfig(Section):
    """Rounds of fit and training (the ``rounds`` stage, after reconstruct): the network
    retrains on the detections and the labels of the round before, and every video is
    labelled again with it, its 3D as evidence in the fit. A round's labels replace the
    ones before only when the self-check (``reconstruct.selfcheck``) says they predict
    held-out detections better; the rounds stop at the first that does not. Not part of the
    train stage's key: changing it redoes the rounds, not the first training."""

    count: int = Field(
        0, ge=0, description="Rounds after the first training (0: none, the default: on a "
        "2-core CPU one round cost as much as train and reconstruct again and its 3D gain "
        "did not show in 2D or in the self-check; docs/accuracy.md, 'Rounds of fit and "
        "training')."
    )
    min_gain: float = Field(
        0.02, ge=0, lt=1, description="Least share by which a round must lower the store's "
        "self-check (median pixels from the hidden detections) to replace the labels; "
        "without a self-check (reconstruct.selfcheck.spans 0) every round is kept."
    )
    labels_2d: float = Field(0.01, ge=0, description="Weight of the labels' 2D joints as "
                             "a training target (ten times the detections').")
    labels_3d: float = Field(1.0, ge=0, description="Weight of the labels' articulation "
                             "(root-relative 3D joints, unit size) as a training target.")
    min_quality: float = Field(0.1, ge=0, le=1, description="Least quality of a label that "
                               "teaches (export.flag_below's default: labels the dataset "
                               "stands by); interpolated labels never do.")
    network_3d: float = Field(1.0, ge=0, description="reconstruct.fit.weights.network_3d "
                              "in the rounds' fits: the retrained network's articulation as "
                              "evidence (round 0 keeps the reconstruct config's).")


class TrainConfig(Section):
    """Stage 4: self-supervised S2HAND training on the job's own hand crops."""

    preset: Literal["demo", "full"] = Field(
        "demo", description="demo: minutes on a CPU (small encoder, 128 px, 4 epochs over at "
        "most 512 hands); full: the paper's schedule (180 epochs, ResNet-18 width, 224 px), "
        "for a GPU. Fields below left null take the preset's value."
    )
    epochs: int | None = Field(None, ge=1, description="Epochs over the training hands.")
    encoder_width: int | None = Field(
        None, ge=4, description="ResNet-18 channel width (64 = torchvision's resnet18, which "
        "loads ImageNet weights from init_checkpoint)."
    )
    input_size: int | None = Field(None, ge=32, description="Network input side in pixels.")
    render_size: int | None = Field(None, ge=16, description="Side of the rendered image for "
                                    "the photometric losses.")
    max_samples: int | None = Field(None, ge=1, description="Train on a random sample of at "
                                    "most this many hands (null: all).")
    lr_milestones: list[int] | None = Field(None, description="Epochs at which the learning "
                                            "rate is multiplied by lr_gamma.")
    clip_length: int | None = Field(
        None, ge=1, description="S2HAND(V): frames per training clip (T) of one tracked hand; "
        "each step then holds batch_size // T clips, and the clip losses (losses.motion, "
        "shape_consistency, texture_consistency, camera_smoothness) apply. 1: single-frame "
        "training (S2HAND)."
    )
    clip_stride: int = Field(1, ge=1, description="Frames between a clip's consecutive "
                             "frames; clips never span a frame without a usable hand.")
    batch_size: int = Field(32, ge=2, description="Hands per step.")
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate.")
    lr_gamma: float = Field(0.5, gt=0, le=1, description="Learning-rate decay factor.")
    schedule: Literal["end_to_end", "stagewise"] = Field(
        "end_to_end", description="stagewise: geometry losses for the first third of the "
        "epochs, + 2D branch for the second, all losses for the last."
    )
    seed: int = Field(0, description="Seed of sampling, initialisation and augmentation.")
    rotation_deg: float = Field(30.0, ge=0, le=180, description="In-plane rotation "
                                "augmentation range (+-).")
    colour_jitter: float = Field(0.2, ge=0, le=1, description="Brightness, contrast and "
                                 "saturation jitter (+-); hue gets a sixth of it.")
    min_joint_weight: float = Field(0.05, ge=0, description="Hands whose mean joint weight "
                                    "is below this are left out of training.")
    losses: LossWeights = Field(default_factory=LossWeights)
    stereo: StereoLossConfig = Field(default_factory=StereoLossConfig)
    rounds: RoundsConfig = Field(default_factory=RoundsConfig)
    hand_model: str = Field("default", description="'default' (embedded) or a MANO_RIGHT.pkl "
                            "path.")
    renderer: Literal["auto", "deodr", "pytorch3d"] = Field(
        "auto", description="Differentiable renderer (auto: DEODR; pytorch3d only when asked "
        "for, until it is checked against DEODR on CUDA).")
    device: str = Field("auto", description="'auto' (CUDA when available), 'cpu' or 'cuda:N'.")
    amp: bool = Field(True, description="Mixed precision on CUDA.")
    init_checkpoint: str | None = Field(
        None, description="Start from this local file: a handlabel checkpoint, or a "
        "torchvision-named ResNet state dict (ImageNet weights) for the encoder. Takes "
        "precedence over pretrained."
    )
    pretrained: bool = Field(
        True, description="Start from the shipped network pretrained on synthetic hands "
        "(scripts/pretrain_synthetic.py; encoder width 16, the demo preset's). With another "
        "width it does not fit: training starts from scratch, with a warning. false: from "
        "scratch (pure S2HAND)."
    )

    def resolved(self, name: str) -> object:
        """A field's value, or the preset's where the field is null."""
        value = getattr(self, name)
        return getattr(TRAIN_PRESETS[self.preset], name) if value is None else value


class FitWeightsConfig(Section):
    """Weights of the sequence fit's terms (docs/components.md, Reconstruction); 0 = off."""

    reprojection: float = Field(1.0, ge=0, description="Robust reprojection of the joints "
                                "onto the 2D detections (hand sizes, relative joint weights).")
    teacher_3d: float = Field(1.0, ge=0, description="Agreement with the detector's 3D joints: "
                              "centred, unit size, best rotation (the articulation only).")
    network_3d: float = Field(0.0, ge=0, description="Agreement with the trained network's 3D "
                              "joints (centred, unit size, best rotation: the articulation), "
                              "times the video's calibrated trust in the network "
                              "(docs/components.md); 0: the network only offers a start.")
    joint_angle: float = Field(1.0, ge=0, description="Joint angles inside anatomical limits.")
    shape: float = Field(1e-3, ge=0, description="The track's shape coefficients towards 0.")
    teacher_size: float = Field(1.0, ge=0, description="The track's size towards the "
                                "detector's metric 3D size (squared log ratio).")
    rotation_acceleration: float = Field(1.0, ge=0, description="S2HAND(V)'s quaternion "
                                         "motion term: change of each joint's frame-to-frame "
                                         "rotation.")
    translation_acceleration: float = Field(10.0, ge=0, description="Acceleration of the "
                                            "hand's position, relative to its depth.")
    skeleton: float = Field(0.01, ge=0, description="Prior on the track's own skeleton (the "
                            "hand model's rest joints moved to the person's proportions and "
                            "the detector's keypoint placement): mean squared offset in cm; "
                            "0 keeps the model's skeleton.")


class FitConfig(Section):
    """The sequence fit of every tracked hand (reconstruct's second step)."""

    enabled: bool = Field(True, description="Fit each track of each slot; false: the labels "
                          "are the network's per-crop predictions.")
    steps: int = Field(200, ge=1, description="Adam steps per track window.")
    learning_rate: float = Field(0.02, gt=0, description="Adam step size for rotations and "
                                 "shape (the position's is a tenth of it, in metres).")
    max_gap_s: float = Field(1.0, ge=0, description="Frames without a detection inside a "
                             "track are filled (and flagged interpolated) for gaps up to this "
                             "long; a longer gap starts a new track.")
    cuts: bool = Field(True, description="Start a new track where the 2D detections jump "
                       "and stay jumped (an edited video's cut, images read as frames, "
                       "another hand in the slot; docs/components.md, Reconstruction).")
    cut_shape: float = Field(0.2, gt=0, description="Cut threshold: median joint "
                             "displacement with centroid and size removed, hand sizes per "
                             "frame.")
    cut_position: float = Field(0.5, gt=0, description="Cut threshold: centroid "
                                "displacement, hand sizes per frame.")
    cut_size: float = Field(0.5, gt=0, description="Cut threshold: |log| of the hand-size "
                            "ratio per frame.")
    cut_settle_s: float = Field(
        1.0, ge=0, description="Cuts within this long (seconds) of a first one are one "
        "disturbance, and no cut at all when the hand after it is where and as it was before "
        "it, as between consecutive frames (an object passing over the hand makes the "
        "detections jump for a few frames; the track then carries the hand across, as it "
        "carries gaps up to max_gap_s). 0: every cut stands (models/fit/cuts.py).")
    window_frames: int = Field(1800, ge=8, description="Longer tracks are fitted in windows of "
                               "this many frames, each starting from the shape and size of "
                               "the one before.")
    carry_unseen: Literal["none", "line", "cubic"] = Field(
        "line", description="Frames without a detection in a track (missed, or left to the "
        "track as covered): 'line' holds them, at every step, on the bridge between the "
        "detected frames either side (rotations slerped, position on a straight line), "
        "'cubic' on a cubic keeping each end's velocity, 'none' leaves them to the temporal "
        "terms (which let a still hand's unseen frames walk away). docs/accuracy.md, 'The "
        "edges of an object's pass': with covered_edge_share, 'line' gives the lowest 2D and "
        "3D error on occluded frames of both occlusion benchmarks.")
    covered_share: float | None = Field(
        0.3, gt=0, le=1, description="A detection with at least this share of its joints "
        "covered (their colour unlike the hand's: weight.colour_outlier) is not fitted: "
        "under an object the detector's whole hand is off, not only the covered joints, so "
        "the frame is filled by the track like a missed one and flagged interpolated. Null: "
        "every detection is fitted.")
    covered_edge_share: float | None = Field(
        0.1, gt=0, le=1, description="Hysteresis of covered_share: next to a covered "
        "detection or a frame the detector missed, a detection with at least this share of "
        "its joints covered is left to the track too, and so on along consecutive frames "
        "(an object arrives and leaves over several frames, and those partly covered ends "
        "are the detector's worst; models/fit/covered.py). Null: covered_share alone.")
    covered_teacher: bool = Field(
        False, description="A covered detection left to the track keeps the detector's 3D as "
        "evidence of the hand's articulation (the teacher term is centred and scaled: it "
        "needs no 2D); its orientation and place still come from the bridge. Off by "
        "measurement: it helps on synthetic hands whose simulated 3D is as good under an "
        "object as elsewhere, and costs 2D and 3D accuracy with MediaPipe's real 3D "
        "(docs/accuracy.md, 'The detector's 3D on covered frames').")
    covered_edge_s: float = Field(
        0.2, ge=0, description="How far, in seconds, covered_edge_share reaches from a covered "
        "or missed frame: an object arrives and leaves in a few frames, while some joints look "
        "unlike the hand for long stretches of clean footage (a knuckle in shadow).")
    weights: FitWeightsConfig = Field(default_factory=FitWeightsConfig)


class SelfCheckConfig(Section):
    """The labels' self-check: spans of detections hidden from a fit of the window around
    them, and how well that fit predicts what the detector saw there (models/fit/selfcheck.py).
    The dataset's labels still use every detection."""

    spans: int = Field(4, ge=0, description="Spans hidden per video (0: no self-check). Each "
                       "costs a fit of span_s + 2 context_s seconds of its track.")
    span_s: float = Field(0.33, gt=0, description="Length of a hidden span, seconds (what an "
                          "object passing over a hand hides: 0.2-1 s).")
    context_s: float = Field(0.5, gt=0, description="Track fitted on either side of a hidden "
                             "span, seconds.")
    seed: int = Field(0, description="Which spans are hidden (with the video's id).")


class ReconstructConfig(Section):
    """Stage 5: the trained model on every hand crop, mapped back to the frame's camera, then
    the sequence fit of every tracked hand."""

    batch_size: int = Field(64, ge=1, description="Crops per forward pass.")
    refine_steps: int = Field(
        0, ge=0, description="Test-time refinement: optimisation steps of pose, shape and "
        "camera against the weighted 2D keypoints with the training priors (0: off)."
    )
    refine_lr: float = Field(0.01, gt=0, description="Adam step size of the refinement.")
    quality_scale: float = Field(
        0.1, gt=0, description="Reprojection error (in hand sizes, weighted by the joint "
        "weights) at which the quality score's reprojection factor falls to exp(-1)."
    )
    quality_teacher_scale: float = Field(
        0.05, gt=0, description="Disagreement with the detector's 3D (the fit's teacher-3D "
        "term) at which the quality score's 3D factor falls to exp(-1)."
    )
    fit: FitConfig = Field(default_factory=FitConfig)
    selfcheck: SelfCheckConfig = Field(default_factory=SelfCheckConfig)
    device: str = Field("auto", description="'auto' (CUDA when available), 'cpu' or 'cuda:N'.")


class ExportConfig(Section):
    """The export stage (the last): the dataset files users take away."""

    formats: list[Literal["parquet", "coco", "freihand", "overlay", "report", "rerun"]] = Field(
        default_factory=lambda: ["parquet", "coco", "freihand", "overlay", "report"],
        description="What to write under STORE/export/; 'rerun' adds a Rerun recording per "
        "video (needs the viewer extra: pip install -e '.[viewer]'; open with handlabel view)."
    )
    min_quality: float = Field(
        0.0, ge=0, le=1, description="Hands below this quality score are left out of the COCO "
        "and FreiHAND files (the Parquet tables keep every hand, with its score)."
    )
    flag_below: float = Field(
        0.1, ge=0, le=1, description="Hands below this quality score are flagged low_quality "
        "in every export (kept, not dropped)."
    )
    min_track_s: float = Field(
        0.2, ge=0, description="Hands whose track lasts less than this (seconds, filled "
        "frames included) are flagged short_track and low_quality: a hand seen for a few "
        "frames only is most often a ghost (a second reading of a hand, a fist, a face)."
    )
    images: bool = Field(
        True, description="Write the frames with hands as JPEG files for the COCO file."
    )
    jpeg_quality: int = Field(90, ge=10, le=100, description="JPEG quality of those frames.")
    overlay_codec: str = Field("libx264", description="Video codec of the overlay videos "
                               "(mpeg4 where libx264 is missing).")
    overlay_max_side: int = Field(960, ge=64, description="Overlay videos are scaled so the "
                                  "longer side is at most this.")
    overlay_max_frames: int | None = Field(
        9000, ge=1, description="A video longer than this many frames gets an overlay of "
        "evenly spaced frames, at most this many (every k-th frame, at the source's speed); "
        "null: every frame. The mesh drawn on every frame is most of export's time, and an "
        "overlay is for looking at, not for every frame of an hour."
    )
    report_samples: int = Field(6, ge=0, description="Overlay frames shown in the report.")
    report_lowest: int = Field(8, ge=0, description="Per video, the detected hands of lowest "
                               "quality shown first in the report (crops with the detection "
                               "and the label drawn): what a person checks first.")


class RigConfig(Section):
    """A calibrated rig: synchronised videos of one scene, one per camera of a calibration."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="The rig's name in the store "
                      "and its exports.")
    calibration: str = Field(description="Calibration file: the project's JSON/YAML (K, dist, "
                             "R_world_to_cam, t_world_to_cam per camera; docs/dataset.md) or "
                             "Anipose's calibration.toml.")
    cameras: dict[str, str] = Field(min_length=2, description="Camera name (as in the "
                                    "calibration) -> file-name glob of its video among the "
                                    "run's sources; exactly one video must match each.")
    unit_m: float | None = Field(None, gt=0, description="Metres per unit of the "
                                 "calibration's translations; null: the file's unit_m.")
    offsets: dict[str, int] = Field(default_factory=dict, description="Camera name -> frames "
                                    "to skip at the start of its video so that the cameras' "
                                    "frames line up (a late-started camera has the smaller "
                                    "offset).")
    reference: str | None = Field(None, description="The camera whose hand slots name the "
                                  "rig's hands and whose frame the fit is solved in; null: "
                                  "the first of cameras.")


class RigStageConfig(Section):
    """Calibrated rigs (the rig stage, after reconstruct): sync checks at ingest, triangulation
    of the detections, one fit per hand over every view, and the rig's exports."""

    rigs: list[RigConfig] = Field(default_factory=list, description="The rigs among the run's "
                                  "videos; each video belongs to at most one.")
    sync_tolerance_frames: float = Field(0.5, ge=0, description="Largest disagreement of the "
                                         "cameras' timestamps, in frame periods, after the "
                                         "offsets.")
    frame_count_tolerance: int = Field(0, ge=0, description="Frames by which the members' "
                                       "lengths (after the offsets) may differ; the rig has the "
                                       "shortest.")
    inlier_hand_sizes: float = Field(0.25, gt=0, description="A view's reprojection residual "
                                     "above this (in its hand sizes) leaves it out of a "
                                     "joint's triangulation (RANSAC over pairs with 3+ views), "
                                     "and out of a hand's cross-view match.")
    confidence_hand_sizes: float = Field(0.05, gt=0, description="Residual (hand sizes) at "
                                         "which a triangulated joint's confidence falls to "
                                         "exp(-1/2) of its detections'.")
    fit: bool = Field(True, description="Fit each rig hand over every view (the labels in "
                      "world and per-camera frames); false: triangulation only.")


class DaskConfig(Section):
    """Where tasks run: a local cluster by default, or an existing scheduler."""

    address: str | None = Field(
        None, description="Address of a running Dask scheduler (tcp://host:8786); null starts "
        "a LocalCluster."
    )
    n_workers: int = Field(2, ge=1, description="Workers of the LocalCluster.")
    gpu_resource: str | None = Field(
        "GPU", description="Dask resource name that GPU tasks (train, reconstruct) ask for "
        "when GPU workers exist: a LocalCluster advertises its CUDA devices under it; with an "
        "address, workers started with --resources GPU=1 get these tasks. Null: never ask."
    )
    threads_per_worker: int = Field(1, ge=1, description="Threads per LocalCluster worker.")
    in_process_below_frames: int = Field(
        300, ge=0, description="A run, rerun or label job whose sources declare fewer frames "
        "than this runs its tasks in this process, one at a time, instead of starting a "
        "LocalCluster (seconds of start-up and teardown that a short clip's work does not "
        "repay); the same flows, store and records. 0: always a cluster. Unused with an "
        "address.")
    chunk_tasks_per_stage: int = Field(
        64, ge=1, description="A chunked stage (detect, reconstruct, export) groups each "
        "video's chunks into runs of consecutive chunks, one task per run, so that the stage "
        "has about this many chunk tasks over all its videos: a short job keeps one chunk per "
        "task, an archive gets longer runs (at most max_chunks_per_task).")
    max_chunks_per_task: int = Field(
        16, ge=1, description="The most chunks one task does (1: a task per chunk). Each "
        "chunk keeps its own completion record, so a run cut short resumes chunk by chunk.")


class StorageConfig(Section):
    """How the store and sources are reached when they are URLs (s3://, gs://, ...)."""

    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="fsspec options per protocol, for this process and "
        "every Dask worker of the run: for example {s3: {endpoint_url: http://127.0.0.1:9000, "
        "key: KEY, secret: SECRET}} or {s3: {anon: true}}. The FSSPEC_S3 variable (JSON) works "
        "too, for commands without --config such as status.")


class HandlabelConfig(Section):
    """The whole configuration file."""

    ingest: IngestConfig = Field(default_factory=IngestConfig)
    detect: DetectConfig = Field(default_factory=DetectConfig)
    weight: WeightConfig = Field(default_factory=WeightConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    reconstruct: ReconstructConfig = Field(default_factory=ReconstructConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    rig: RigStageConfig = Field(default_factory=RigStageConfig)
    dask: DaskConfig = Field(default_factory=DaskConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)


def load_config(path: str | Path | None = None) -> HandlabelConfig:
    """Read and validate a YAML configuration file; no path gives the embedded defaults."""
    if path is None:
        return HandlabelConfig()
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the configuration must be a mapping of sections")
    try:
        return HandlabelConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise ConfigError(f"{path}: invalid configuration: {problems}") from exc


def _describe(error: dict) -> str:
    where = ".".join(str(part) for part in error["loc"])
    got = f" (got {error['input']!r})" if error["type"] != "missing" else ""
    return f"{where}: {error['msg']}{got}"
