"""A lost hand looked for again where its track predicts it: the detector run on a crop
around the predicted box (for MediaPipe: palm detection and the landmark model on a hand
that fills half the crop, which finds partly covered hands that the full frame's palm
detection misses), its hands mapped back to the frame.
"""

from __future__ import annotations

import numpy as np

from .augment import Augmentation, apply, crop_transform, invert, warp
from .schema import HandDetection, HandDetector

SEARCH_CROP = 256  # px: the crop the detector sees
SEARCH_MARGINS = (2.0, 3.0)  # crop sides tried in turn, in predicted hand sizes


def search_near(detector: HandDetector, rgb: np.ndarray, box: np.ndarray
                ) -> HandDetection | None:
    """The hand found in a crop around ``box`` (x0, y0, x1, y1, frame px; the crop twice its
    size, else three times) whose centre lies within half a hand size of the box's and
    whose size is within a factor 2 of it; None when there is none. Its keypoints are in
    frame pixels; ``extras['searched']`` is True.
    """
    centre = (box[:2] + box[2:]) / 2
    side = float(max(box[2] - box[0], box[3] - box[1], 1.0))
    for margin in SEARCH_MARGINS:
        transform = crop_transform(centre, side * margin, SEARCH_CROP, Augmentation())
        back = invert(transform)
        best, best_distance = None, 0.5 * side
        for hand in detector.detect_image(warp(rgb, transform, SEARCH_CROP)):
            hand.keypoints = apply(back, hand.keypoints)
            distance = float(np.linalg.norm((hand.box[:2] + hand.box[2:]) / 2 - centre))
            if distance < best_distance and 0.5 < hand.size / side < 2.0:
                best, best_distance = hand, distance
        if best is not None:
            best.extras["searched"] = True
            return best
    return None
