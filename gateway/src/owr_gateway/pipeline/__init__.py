"""The steps of one proxied request, in order: screen, route, admit, forward, relay.

Each step raises `Refusal` to answer with a problem instead of going on; `GatewayApp` runs them.
"""
