"""The internal API for other services (service tokens only; the gateway never routes it)."""
