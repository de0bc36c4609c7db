"""Every body that crosses a process boundary, defined once and imported by both ends.

- `openrouter`: OpenRouter's answers, each upstream quirk parsed here and nowhere else;
- `keys`: the worker <-> keys internal bodies (due list, reveals, status reports);
- `usage`: the worker -> usage ingestion bodies (snapshots, credits, key lists, activity, retention);
- `auth`: the service-token exchange every service makes with auth;
- `redis_keys`: the Redis key names auth writes and the gateway reads (revocations, the token cache);
- `fields`: the bounded field types those bodies share; `codec`: JSON with money kept exact.

A service may tighten a body by subclassing it (stricter bounds), never by redefining it.
"""
