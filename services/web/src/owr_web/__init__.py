"""The web dashboard: server-rendered pages over the public API, sessions in Redis."""
