"""handlabel: raw hand video archives in, annotated 3D hand datasets out.

The design card's layers are installed as sub-packages: ``handlabel.storage`` (folder
``storage/``), ``handlabel.models`` (``models/``), ``handlabel.tasks`` (``tasks/``) and
``handlabel.flows`` (``flows/``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("handlabel")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
