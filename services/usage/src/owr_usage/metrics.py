"""Usage service metrics (`owr_usage_` prefix; outcomes only, never ids, labels of keys, URLs or secrets)."""

from __future__ import annotations

from prometheus_client import Counter

SNAPSHOTS_INGESTED = Counter(
    "owr_usage_snapshots_ingested_total",
    "Key snapshots received, by outcome (stored, duplicate, or erased: its workspace was deleted).",
    ["outcome"],
)
ACTIVITY_ROWS_INGESTED = Counter("owr_usage_activity_rows_ingested_total", "Activity rows stored.")
ACTIVITY_DAYS_INGESTED = Counter(
    "owr_usage_activity_days_ingested_total",
    "Activity days received, by outcome (replaced, or stale: older than the stored answer).",
    ["outcome"],
)
ACCOUNT_KEYS_INGESTED = Counter(
    "owr_usage_account_keys_ingested_total", "Account key lists received, by outcome (replaced or stale).", ["outcome"]
)
BALANCES_INGESTED = Counter(
    "owr_usage_balances_ingested_total", "Account balances received, by outcome (stored or duplicate).", ["outcome"]
)
INGESTED_FOR_ERASED = Counter(
    "owr_usage_reports_for_erased_workspaces_total",
    "Account reports (balance, key list, activity) dropped because their workspace was deleted.",
)
RETENTION_DELETED = Counter("owr_usage_retention_deleted_rows_total", "Rows removed by retention, by table.", ["table"])
SNAPSHOTS_COMPACTED = Counter(
    "owr_usage_snapshots_compacted_total", "Snapshots removed by compaction (neither first nor last of their day)."
)
ALERT_DELIVERIES_CLAIMED = Counter(
    "owr_usage_alert_deliveries_claimed_total", "Alert deliveries leased to the worker (each attempt once)."
)
ALERT_DELIVERIES_REPORTED = Counter(
    "owr_usage_alert_deliveries_reported_total",
    "Alert delivery attempts reported by the worker, by outcome (delivered, retrying, failed: retries spent or "
    "its channel disabled, stale: a repeated or late report that changed nothing).",
    ["outcome"],
)
CHANNELS_DISABLED = Counter(
    "owr_usage_alert_channels_disabled_total",
    "Alert channels disabled, by cause (gone: the receiver answered 410, failing: a day of failures, user).",
    ["cause"],
)
ALERT_EVENTS_RAISED = Counter(
    "owr_usage_alert_events_raised_total",
    "Alert events written to the outbox by the rules, budgets and digests, by event type (repeats not counted).",
    ["type"],
)
KEY_ANOMALIES_FOUND = Counter(
    "owr_usage_key_anomalies_found_total",
    "Anomalies of keys' days found at ingestion, by kind (a day's kind counted once).",
    ["kind"],
)
RECONCILIATION_GAPS = Counter(
    "owr_usage_reconciliation_gaps_total",
    "Reconciliation gaps detected: a linked key's completed day whose /key-derived spend and activity's sum came to "
    "differ by more than 1e-6 USD (counted when a write makes it one; a relinked key's gaps count again). "
    "Approximate: two ingestions touching the same key and day at once may both count its new gap.",
)
