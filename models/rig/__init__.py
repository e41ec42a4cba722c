"""Calibrated multi-camera rigs: camera geometry, triangulation and cross-view matching."""
