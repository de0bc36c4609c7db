"""Anomalies per key (issue 17): baselines from each key's own history, what departs from them, and their events."""
