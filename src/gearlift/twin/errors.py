"""Errors the twin raises with a message meant for the person at the terminal."""


class TwinError(RuntimeError):
    """A problem the user can fix; the message says what and how."""
