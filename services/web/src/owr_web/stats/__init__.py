"""`/stats`: the daily rows, filtered by date range, key, model and provider, sorted and paginated; exports."""
