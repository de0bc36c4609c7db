"""Keys service metrics (`owr_keys_` prefix; outcomes only, never ids or key material in labels)."""

from __future__ import annotations

from prometheus_client import Counter

REVEALS = Counter("owr_keys_reveals_total", "Plaintext reveals to services, by outcome.", ["outcome"])
SYNC_REQUESTS = Counter("owr_keys_sync_requests_total", "Sync requests from users, by outcome.", ["outcome"])
FIRST_SYNCS = Counter("owr_keys_first_syncs_total", "First syncs queued when a key is added, by outcome.", ["outcome"])
