"""A workspace's own Prometheus exposition (`GET /api/v1/metrics`): its keys' and accounts' latest figures."""
