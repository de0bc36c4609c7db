"""`/insights/...`: the insights pages (issue 17): the key hygiene report and the reconciliation."""
