"""Reconciliation (issue 17): each linked key's completed days, snapshot-derived spend against activity's sum."""
