"""The internal API for the worker and auth (service tokens only; the gateway never routes it)."""
