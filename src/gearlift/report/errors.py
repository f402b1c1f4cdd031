"""The one error the report raises for bad input: printed as a message, exit code 2."""

from __future__ import annotations


class ReportError(Exception):
    """Bad input (inventory, price table, audit path): the message says what and how to fix it."""
