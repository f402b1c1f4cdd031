"""The rehearsal twin: moto for the AWS control plane, podman/MariaDB/HAProxy for the data plane."""

from gearlift.twin.errors import TwinError

__all__ = ["TwinError"]
