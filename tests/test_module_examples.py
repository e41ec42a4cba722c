"""The usage examples in the docstrings of modules that no other test runs: each module must
have examples, and every one must pass."""

from __future__ import annotations

import doctest

import pytest

from handlabel import keys
from handlabel.models import (
    appearance,
    camera,
    geometry,
    identity,
    keypoints,
    synthetic_occlusion,
)
from handlabel.models.detectors import duplicates, tta_gate
from handlabel.models.fit import covered, visibility
from handlabel.models.hand import sides
from handlabel.models.rig import triangulation
from handlabel.storage import frames
from handlabel.tasks import export_video, rounds


@pytest.mark.parametrize("module", [duplicates, tta_gate, triangulation, sides, keys, camera,
                                    geometry, keypoints, identity, appearance,
                                    visibility, export_video, rounds, covered,
                                    synthetic_occlusion, frames],
                         ids=lambda m: m.__name__)
def test_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
