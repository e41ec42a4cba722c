"""Pure PyTorch / NumPy: camera geometry, hand model, renderer, detectors, networks, losses.

No Prefect, no Zarr: everything here runs on arrays and tensors.
"""
