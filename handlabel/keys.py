"""One cache-key scheme for every stage: what decides a unit's output, hashed.

A unit of a stage is current when the key it was written with equals the key it would be
written with now. Every key in the pipeline is made here, from the same four things:

- the stage (or a part of it: ``reconstruct.network``, ``export.dataset``...) and its code
  version (``CODE_VERSIONS``, bumped when the code changes what it writes);
- the config fields that change what it writes (a pydantic section, less the fields in
  ``NON_RESULT_FIELDS``, or a mapping of chosen fields);
- the values the config resolves to where they are not fields (a preset's table, the
  renderer ``auto`` picks);
- its inputs: the keys and finish times of what it reads (another stage's output, a file's
  content hash), as strings.

A key with no derived values and no inputs hashes the same payload as the older
``stage_config_hash`` did, so stores written before this module keep their ingest, detect,
weight and reconstruct records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

# Bumped when a stage's code changes what it writes, so that old results stop counting as done.
# detect 3: ghost hands (a second reading of one hand) dropped, models/detectors/duplicates.py
# detect 4, reconstruct 4, export 3: lost hands searched, gaps to 1 s, per-joint visibility
# reconstruct 5, rig 2: fit.carry_unseen (models/fit/gaps.py), the self-check arrays
# detect 5: handedness stored; sides decided over the whole video (models/identity.py)
# reconstruct 6, rig 3: where the network's start wins, the teacher's is fitted too
# detect 6, weight 2, reconstruct 7: each joint's colour; joints unlike their hand's look
# down-weighted and not visible; detections mostly covered left to the track
# rounds 1: rounds of fit and training (tasks/rounds.py)
# export 4: overlays of long videos thinned (export.overlay_max_frames), encoded faster
# (reconstruct's fit.covered_edge_share, covered_edge_s, carry_unseen "line" and cut_settle_s
# change its key and the rig's through the config: no bump needed)
CODE_VERSIONS: dict[str, int] = {
    "ingest": 1, "detect": 6, "weight": 2, "train": 1, "train.model": 1,
    "reconstruct": 7, "reconstruct.network": 1, "rounds": 1, "rig": 3,
    "export": 4, "export.dataset": 1, "export.rig": 1,
}

# Fields of a stage's config section that do not change what the stage writes.
NON_RESULT_FIELDS: dict[str, set[str]] = {"ingest": {"extensions", "decoder_threads"},
                                          "train": {"device", "rounds"},
                                          "reconstruct": {"device", "batch_size"}}

KEY_CHARS = 16


def stage_key(stage: str, config: BaseModel | Mapping[str, Any] | None = None, *,
              derived: Mapping[str, Any] | None = None, inputs: Iterable[str] = ()) -> str:
    """The key of a unit of ``stage``: a 16-hex-digit hash of its code version, the config
    fields that change its output, the values they resolve to, and its inputs.

    Args:
        stage: a name in ``CODE_VERSIONS`` (``stage`` or ``stage.part``).
        config: the stage's config section (result fields only are hashed) or a mapping of
            the fields that matter to this part.
        derived: values the config resolves to that are not its fields.
        inputs: what the unit reads, each as a string naming its version.

    Returns:
        The key, 16 hex digits.

    >>> from handlabel.config import IngestConfig
    >>> stage_key("ingest", IngestConfig()) == stage_key("ingest", IngestConfig(decoder_threads=4))
    True
    >>> stage_key("export", inputs=["a@1"]) == stage_key("export", inputs=["a@2"])
    False
    """
    if stage not in CODE_VERSIONS:
        raise ValueError(f"no code version for stage {stage!r}; add it to CODE_VERSIONS")
    payload: dict[str, Any] = {"stage": stage, "code": CODE_VERSIONS[stage]}
    if isinstance(config, BaseModel):
        exclude = NON_RESULT_FIELDS.get(stage.partition(".")[0], set())
        payload["config"] = config.model_dump(mode="json", exclude=exclude)
    elif config is not None:
        payload["config"] = dict(config)
    if derived:
        payload["derived"] = dict(derived)
    inputs = list(inputs)
    if inputs:
        payload["inputs"] = inputs
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_CHARS]
