"""marvel: declarative MLOps for the Marvel Characters dataset."""

__version__ = "0.1.0"
