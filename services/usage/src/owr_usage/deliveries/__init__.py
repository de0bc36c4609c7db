"""Deliveries: the worker's claims of due alert deliveries, each attempt's result, the backoff and the channels it disables."""
