"""parcelhub: a self-hosted express-logistics hub for DTC brands (shared library, built as a Lambda layer)."""

__version__ = "0.1.0"
