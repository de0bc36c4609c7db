"""`/insights/...`: the insights pages (issue 17): the key hygiene report, effective prices, the reconciliation."""
