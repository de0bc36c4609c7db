"""Budgets: an amount per UTC day, week or month for a workspace, a key or an account, and their thresholds."""
