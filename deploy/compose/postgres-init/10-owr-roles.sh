#!/usr/bin/env bash
# Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d).
# One schema per service, and one login role per service that owns its schema and nothing else:
# auth cannot read keys' tables, keys cannot read usage's, and no role may create other schemas.
set -euo pipefail

: "${OWR_AUTH_DB_PASSWORD:?set OWR_AUTH_DB_PASSWORD in the env file}"
: "${OWR_KEYS_DB_PASSWORD:?set OWR_KEYS_DB_PASSWORD in the env file}"
: "${OWR_USAGE_DB_PASSWORD:?set OWR_USAGE_DB_PASSWORD in the env file}"
database="${POSTGRES_DB:-owr}"
# The entrypoint runs this file (or sources it when not executable); psql finds the server through its
# usual variables (the entrypoint's local socket, or PGHOST/PGPORT when run by hand).

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "$database" \
  --set=db="$database" \
  --set=auth_pw="$OWR_AUTH_DB_PASSWORD" \
  --set=keys_pw="$OWR_KEYS_DB_PASSWORD" \
  --set=usage_pw="$OWR_USAGE_DB_PASSWORD" \
  --file="$(dirname "${BASH_SOURCE[0]}")/owr-roles.psql"
