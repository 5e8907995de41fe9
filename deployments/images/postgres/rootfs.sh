#!/usr/bin/env bash
# Makes the root file system of the Postgres image from Debian packages.
# Usage: rootfs.sh <empty dir> <debian mirror URL>   (as root)
#
# Only Debian's package mirror is needed: debootstrap installs a minimal
# bookworm with postgresql-15, then we drop what a container never uses.
set -euo pipefail

root=${1:?usage: rootfs.sh <dir> <mirror>}
mirror=${2:?usage: rootfs.sh <dir> <mirror>}

debootstrap --variant=minbase --include=postgresql-15 bookworm "$root" "$mirror"

# The package creates a cluster "main" for the init system; the container
# creates its own in $PGDATA on first start instead (see docker-entrypoint.sh).
rm -rf "$root/etc/postgresql/15/main" "$root/var/lib/postgresql/15"

# Listen on every interface, as the official image does: the container's
# network namespace is the boundary, pg_hba.conf the access control.
sed -ri "s/^#?(listen_addresses)\s*=\s*\S+.*/\1 = '*'/" \
	"$root/usr/share/postgresql/15/postgresql.conf.sample"
grep -q "^listen_addresses = '\*'" "$root/usr/share/postgresql/15/postgresql.conf.sample"

# Package caches, indexes and documentation: about 180 MB nobody reads here.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
	"$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
	"$root"/var/log/*.log "$root"/var/log/apt/*
