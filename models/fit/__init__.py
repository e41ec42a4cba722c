"""The sequence fit: per-track pose, shape and placement solved against the 2D and 3D teachers."""
