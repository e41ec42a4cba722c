"""Metrics on arrays: 2D keypoints now; 3D (MPJPE, PA-MPJPE, AUC, F-scores) with training."""
