// Package grouplag exports a consumer group's lag on each partition of its
// topic as a Prometheus gauge: the partition's end offset (the offset the
// next record will get) minus the offset the group has committed there.
//
// # Why from the broker, and why committed
//
// kafka-go's Reader.Stats reports the lag of the partition it fetched from
// last, as the reader saw it in its last fetch response: with six
// partitions it is one sample of six, and a consumer that stopped fetching
// (order-retry at MAX_PENDING, a stuck lane) stops updating it while the
// producers go on. The committed offset is what a restart would resume
// from: records fetched but not yet finished (a retry waiting for its due
// time, a record whose hand-off is blocked) are still lag, which is what an
// operator must be told. So the collector asks the broker, at each scrape,
// for the end offsets (ListOffsets) and the group's offsets (OffsetFetch),
// with a short deadline, without joining the group. It is what Burrow and
// kafka-lag-exporter do, from inside the service.
//
// Every replica of a service exports the same numbers for every partition
// (the lag is the group's, not the member's, so a rebalance cannot leave a
// stale series behind); aggregate with max by (topic, partition), not sum.
//
// A partition the group never committed on counts from its first retained
// offset. A scrape that cannot reach the broker exports no lag series and
// logs why; the service's readiness check reports the broker too.
package grouplag
