#!/usr/bin/env bash
# Runs after 01-schema.sql, with the superuser and database in the environment.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	-c "INSERT INTO fleet VALUES ('C02')"
