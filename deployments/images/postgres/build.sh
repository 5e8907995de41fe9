#!/usr/bin/env bash
# Builds the Postgres image from Debian packages, with nothing pulled from a
# registry: debootstrap (rootfs.sh) -> `docker import` -> Dockerfile on top.
#
# Usage: build.sh [image]      default: $POSTGRES_IMAGE or reefer-dlq/postgres:15
#   DEBIAN_MIRROR  overrides the mirror (default: the one apt is configured with)
#
# Both stages are tagged by a hash of their recipe and skipped when that tag
# exists, so a second run takes a second and editing the entrypoint does not
# repeat the debootstrap (1-5 minutes, mostly downloads).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
image=${1:-${POSTGRES_IMAGE:-reefer-dlq/postgres:15}}
case "${image##*/}" in
*:*) ;;
*) image="$image:latest" ;;
esac

hash_of() { cat "$@" | sha256sum | cut -c1-12; }
rootfs_image="${image%:*}-rootfs:bookworm-$(hash_of "$here/rootfs.sh")"
final_image="$image-$(hash_of "$here/rootfs.sh" "$here/build.sh" "$here/Dockerfile" "$here/docker-entrypoint.sh")"

log() { printf 'postgres image: %s\n' "$*" >&2; }
exists() { docker image inspect "$1" >/dev/null 2>&1; }

# The Debian mirror apt uses here (deb822 "URIs:" or one-line "deb" entries).
apt_mirror() {
	local f files=()
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		if [ -f "$f" ]; then files+=("$f"); fi
	done
	if [ ${#files[@]} -eq 0 ]; then return 0; fi
	awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }
	     $1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "${files[@]}" |
		{ grep -E '/debian/?$' || true; } | head -n1
}

if exists "$final_image"; then
	log "$final_image exists (recipe unchanged), tagging $image"
	docker tag "$final_image" "$image"
	exit 0
fi

sudo=()
if [ "$(id -u)" != 0 ]; then sudo=(sudo); fi
work=$(mktemp -d "${TMPDIR:-/var/tmp}/reefer-dlq-postgres.XXXXXX")
trap '"${sudo[@]}" rm -rf "$work"' EXIT

if ! exists "$rootfs_image"; then
	if ! command -v debootstrap >/dev/null; then
		if ! command -v apt-get >/dev/null; then
			log "debootstrap is missing and there is no apt-get to install it: build on Debian/Ubuntu, or set POSTGRES_IMAGE to a public image (postgres:16)"
			exit 1
		fi
		log "installing debootstrap (apt-get)"
		"${sudo[@]}" apt-get update -qq
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
	fi
	mirror=${DEBIAN_MIRROR:-$(apt_mirror)}
	mirror=${mirror:-http://deb.debian.org/debian}
	log "debootstrap bookworm + postgresql-15 from $mirror (1-3 minutes)"
	"${sudo[@]}" "$here/rootfs.sh" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
		tail -n 30 "$work/debootstrap.log" >&2
		log "debootstrap failed (the last lines of its log are above)"
		exit 1
	}
	log "docker import -> $rootfs_image"
	"${sudo[@]}" tar --numeric-owner -C "$work/root" -c . |
		docker import -m "debootstrap --variant=minbase --include=postgresql-15 bookworm" - "$rootfs_image" >/dev/null
fi

ctx="$work/context"
mkdir "$ctx"
cp "$here/Dockerfile" "$here/docker-entrypoint.sh" "$ctx/"
chmod 0755 "$ctx/docker-entrypoint.sh"
log "docker build -> $final_image"
docker build --quiet --build-arg "ROOTFS_IMAGE=$rootfs_image" -t "$final_image" "$ctx" >/dev/null
docker tag "$final_image" "$image"
log "built $image ($final_image)"

# Untag the builds of earlier recipes; their layers go once unused.
docker image ls --format '{{.Repository}}:{{.Tag}}' "${image%:*}" |
	{ grep -Fx -v "$final_image" || true; } | { grep -F "$image-" || true; } |
	while read -r old; do docker rmi "$old" >/dev/null 2>&1 || true; done
