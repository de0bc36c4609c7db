"""The built-in alert rules: their workspace switches and parameters, and their evaluation (keys, accounts)."""
