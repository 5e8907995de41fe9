#!/usr/bin/env bash
# Entrypoint of the offline Postgres image (Debian's postgresql-15 package).
#
# It follows the contract of the official postgres image, so tools written
# for that image (testcontainers-go's postgres module, compose files) work
# unchanged:
#   POSTGRES_PASSWORD          superuser password (required unless the auth method is trust)
#   POSTGRES_USER              superuser name (default postgres)
#   POSTGRES_DB                database created on first start (default: the user name)
#   POSTGRES_HOST_AUTH_METHOD  auth for TCP connections (default scram-sha-256)
#   POSTGRES_INITDB_ARGS       extra initdb arguments
#   /docker-entrypoint-initdb.d/*.sh, *.sql, *.sql.gz run once, in name order, on first start
# On first start it initialises $PGDATA with a temporary server that listens
# on the Unix socket only, then starts the real server. The real server logs
# "database system is ready to accept connections" a second time, which is
# what testcontainers' BasicWaitStrategies waits for.
set -Eeo pipefail

# Flags alone ("-c fsync=off") are arguments to postgres.
if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" != 'postgres' ]; then
	exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
export POSTGRES_USER POSTGRES_DB POSTGRES_HOST_AUTH_METHOD

log() { printf '%s entrypoint: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }

# As root: prepare the directories, then run this script again as postgres.
# setpriv (util-linux, part of every Debian base system) plays the role of gosu.
if [ "$(id -u)" = '0' ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown -R postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	chmod 3777 /var/run/postgresql
	exec setpriv --reuid=postgres --regid=postgres --init-groups \
		env HOME=/var/lib/postgresql "${BASH_SOURCE[0]}" "$@"
fi

mkdir -p "$PGDATA"
chmod 700 "$PGDATA" 2>/dev/null || true

psql_init() {
	psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc --username "$POSTGRES_USER" "$@"
}

run_init_files() {
	local f
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sh)
			if [ -x "$f" ]; then
				log "running $f"
				"$f"
			else
				log "sourcing $f"
				# shellcheck disable=SC1090
				. "$f"
			fi
			;;
		*.sql)
			log "running $f"
			psql_init --dbname "$POSTGRES_DB" -f "$f"
			;;
		*.sql.gz)
			log "running $f"
			gunzip -c "$f" | psql_init --dbname "$POSTGRES_DB"
			;;
		*) log "ignoring $f" ;;
		esac
	done
}

init_database() {
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != 'trust' ]; then
		cat >&2 <<-'MSG'
			error: the database is uninitialized and POSTGRES_PASSWORD is not set.
			       Set POSTGRES_PASSWORD to a non-empty value for the superuser, or
			       set POSTGRES_HOST_AUTH_METHOD=trust to allow connections without a
			       password (never do that outside a throwaway test container).
		MSG
		exit 1
	fi

	log "initialising $PGDATA for user $POSTGRES_USER"
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of flags.
	initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
		$POSTGRES_INITDB_ARGS
	printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

	# A temporary server on the Unix socket only: nothing outside can connect
	# (or look ready) before the init scripts have run.
	# printf '%q ' with no arguments prints '' (an empty argument that
	# postgres rejects), so the server's own flags are quoted only if any.
	local extra=""
	if [ $# -gt 1 ]; then extra="$(printf '%q ' "${@:2}")"; fi
	PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -w start \
		-o "$extra -c listen_addresses='' -p 5432"

	if [ "$POSTGRES_DB" != 'postgres' ]; then
		psql_init --dbname postgres --set db="$POSTGRES_DB" <<-'SQL'
			CREATE DATABASE :"db";
		SQL
	fi
	PGUSER="$POSTGRES_USER" PGDATABASE="$POSTGRES_DB" PGPASSWORD="$POSTGRES_PASSWORD" run_init_files

	PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
	log "PostgreSQL init process complete; ready for start up."
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	init_database "$@"
fi

exec "$@"
