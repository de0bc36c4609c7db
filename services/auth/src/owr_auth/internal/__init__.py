"""The internal API for other services (client credentials; the gateway never routes it)."""
