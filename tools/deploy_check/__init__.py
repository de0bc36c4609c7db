"""`make deploy-check`: static checks of everything that deploys the system and cannot run here, one module
per checker:

- `images`: hadolint on the one Dockerfile, and each process's build arguments agreeing with the process;
- `compose`: docker-compose.yml against the compose-spec schema and this project's rules;
- `prometheus`: promtool on the alert rules and the scrape configuration, the PrometheusRule in sync;
- `kubernetes`: each overlay rendered with kustomize, validated, and held to this project's rules;
- `metrics`: every dashboard query and alert naming only metrics the code exports, and the workspace
  dashboard (`deploy/grafana/workspace-dashboard.json`) only what `GET /api/v1/metrics` serves.

Prints one line per check and `N passed, N failed`; exits 1 when a check fails.
"""
