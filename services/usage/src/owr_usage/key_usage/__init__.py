"""One key's figures as its workspace reads them: limits, windows and the daily series."""
