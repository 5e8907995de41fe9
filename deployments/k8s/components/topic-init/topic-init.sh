#!/bin/sh
# topic-init.sh creates the suite's topics on a Kafka cluster, with the
# partition counts of the contract (docs/contract.md), and does nothing for
# topics that exist already. docker compose runs it once before the services
# start (deployments/compose/compose.yaml mounts this file), and so does the
# Kubernetes Job of this component. It needs the Kafka command-line tools
# (the apache/kafka image has them) and a POSIX shell.
#
# Environment:
#   BOOTSTRAP_SERVERS    host:port[,host:port...] of the cluster (required)
#   TOPICS               whitespace-separated name:partitions[:key=value,...]
#                        (required), e.g.
#                        "orders:6 order-dead-letter:3:retention.ms=2592000000"
#   REPLICATION_FACTOR   replicas of every partition (default 1). The script
#                        first waits until the cluster has that many brokers.
#   MIN_INSYNC_REPLICAS  min.insync.replicas of every topic (default 1): with
#                        the producers' acks=all, a write succeeds once that
#                        many replicas have it.
#   COMMAND_CONFIG       client properties file for TLS or SASL (optional)
#   WAIT_SECONDS         how long to wait for the brokers (default 180)
#   POLL_SECONDS         pause between two looks at the cluster (default 2)
#   KAFKA_BIN            directory of the Kafka tools (default /opt/kafka/bin)
#
# An existing topic is left alone, but a partition count other than the one
# asked for stops the script: changing it remaps order ids to partitions and
# breaks the per-order ordering, so it is a decision for a person.
set -eu
set -f # topic specs are words, never file patterns

fail() {
	echo "topic-init: $*" >&2
	exit 1
}

# whole reports whether $1 is a whole number >= 1.
whole() {
	case $1 in
	'' | *[!0-9]* | 0*) return 1 ;;
	esac
}

BOOTSTRAP_SERVERS=${BOOTSTRAP_SERVERS:-}
TOPICS=${TOPICS:-}
REPLICATION_FACTOR=${REPLICATION_FACTOR:-1}
MIN_INSYNC_REPLICAS=${MIN_INSYNC_REPLICAS:-1}
COMMAND_CONFIG=${COMMAND_CONFIG:-}
WAIT_SECONDS=${WAIT_SECONDS:-180}
POLL_SECONDS=${POLL_SECONDS:-2}
KAFKA_BIN=${KAFKA_BIN:-/opt/kafka/bin}

[ -n "$BOOTSTRAP_SERVERS" ] || fail "BOOTSTRAP_SERVERS is not set: want host:port of one or more brokers"
[ -n "$TOPICS" ] || fail "TOPICS is not set: want name:partitions[:key=value,...] entries separated by spaces"
whole "$REPLICATION_FACTOR" || fail "REPLICATION_FACTOR=$REPLICATION_FACTOR: want a whole number >= 1"
whole "$MIN_INSYNC_REPLICAS" || fail "MIN_INSYNC_REPLICAS=$MIN_INSYNC_REPLICAS: want a whole number >= 1"
[ "$MIN_INSYNC_REPLICAS" -le "$REPLICATION_FACTOR" ] ||
	fail "MIN_INSYNC_REPLICAS=$MIN_INSYNC_REPLICAS is above REPLICATION_FACTOR=$REPLICATION_FACTOR: every acks=all write would fail"
whole "$WAIT_SECONDS" || fail "WAIT_SECONDS=$WAIT_SECONDS: want a whole number of seconds >= 1"
case $POLL_SECONDS in '' | *[!0-9]*) fail "POLL_SECONDS=$POLL_SECONDS: want a whole number of seconds" ;; esac
if [ -n "$COMMAND_CONFIG" ] && [ ! -r "$COMMAND_CONFIG" ]; then
	fail "COMMAND_CONFIG=$COMMAND_CONFIG: no such readable file"
fi

# parse splits a TOPICS entry into name, partitions and configs (comma-
# separated key=value), or stops the script.
parse() {
	name=${1%%:*}
	rest=${1#*:}
	[ -n "$name" ] && [ "$rest" != "$1" ] || fail "TOPICS entry $1: want name:partitions[:key=value,...]"
	partitions=${rest%%:*}
	configs=
	[ "$rest" = "$partitions" ] || configs=${rest#*:}
	whole "$partitions" || fail "TOPICS entry $1: partitions $partitions: want a whole number >= 1"
	old_ifs=$IFS
	IFS=,
	for c in $configs; do
		case $c in *=?*) ;; *) fail "TOPICS entry $1: config $c: want key=value" ;; esac
	done
	IFS=$old_ifs
}

# Every entry is checked before the cluster is touched: a typo must not
# leave half of the topics created.
for spec in $TOPICS; do
	parse "$spec"
done

# kafka runs one Kafka tool against the cluster.
kafka() {
	tool=$1
	shift
	if [ -n "$COMMAND_CONFIG" ]; then
		"$KAFKA_BIN/$tool" --bootstrap-server "$BOOTSTRAP_SERVERS" --command-config "$COMMAND_CONFIG" "$@"
	else
		"$KAFKA_BIN/$tool" --bootstrap-server "$BOOTSTRAP_SERVERS" "$@"
	fi
}

# Brokers start in any order (three of them in the compose profile
# "cluster"): creating a topic with replication factor 3 before the third
# broker registered would fail, so wait for enough brokers first.
deadline=$(($(date +%s) + WAIT_SECONDS))
while :; do
	brokers=$(kafka kafka-broker-api-versions.sh 2>/dev/null | grep -c '(id: ' || true)
	[ "$brokers" -ge "$REPLICATION_FACTOR" ] && break
	if [ "$(date +%s)" -ge "$deadline" ]; then
		fail "the cluster at $BOOTSTRAP_SERVERS has $brokers broker(s) after ${WAIT_SECONDS}s; REPLICATION_FACTOR=$REPLICATION_FACTOR needs $REPLICATION_FACTOR"
	fi
	echo "topic-init: waiting for $REPLICATION_FACTOR broker(s) at $BOOTSTRAP_SERVERS ($brokers so far)"
	sleep "$POLL_SECONDS"
done
echo "topic-init: $brokers broker(s) at $BOOTSTRAP_SERVERS"

for spec in $TOPICS; do
	parse "$spec"
	set -- --create --if-not-exists --topic "$name" --partitions "$partitions" \
		--replication-factor "$REPLICATION_FACTOR" --config "min.insync.replicas=$MIN_INSYNC_REPLICAS"
	old_ifs=$IFS
	IFS=,
	for c in $configs; do
		set -- "$@" --config "$c"
	done
	IFS=$old_ifs
	kafka kafka-topics.sh "$@" >/dev/null

	have=$(kafka kafka-topics.sh --describe --topic "$name" | sed -n 's/.*PartitionCount: *\([0-9][0-9]*\).*/\1/p' | head -n 1)
	[ "$have" = "$partitions" ] ||
		fail "topic $name has ${have:-an unknown number of} partitions, want $partitions: delete it, or change its partitions by hand knowing that keys move"
	echo "topic-init: $name: $partitions partitions, replication factor $REPLICATION_FACTOR, min.insync.replicas $MIN_INSYNC_REPLICAS${configs:+, $configs}"
done
