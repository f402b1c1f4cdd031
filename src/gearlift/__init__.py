"""gearlift tooling: the local rehearsal twin and helpers around the gearlift.platform collection."""

__version__ = "0.1.0"
