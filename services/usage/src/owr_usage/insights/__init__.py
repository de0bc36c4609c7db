"""Insights over what usage already stores: the key hygiene report (issue 17)."""
