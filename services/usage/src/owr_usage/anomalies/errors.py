"""Errors of the anomalies list: the reads' own (a bad range, a key not of this workspace)."""

from __future__ import annotations

from owr_usage.key_usage.errors import InvalidRange, KeyUsageNotFound

__all__ = ["InvalidRange", "KeyUsageNotFound"]
