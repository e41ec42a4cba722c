"""The dataset store: Zarr v3 arrays and a Parquet manifest through fsspec; video reading.

No torch here.
"""
