"""Audit events: who did what to a key, and when, written in the same transaction as the change."""
