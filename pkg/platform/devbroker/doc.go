// Package devbroker runs an embedded Kafka-protocol broker inside a Go
// process, for development, the demo and tests. Production uses a real Kafka
// cluster: devbroker is one broker with no replication, and kfake, the
// library it wraps (github.com/twmb/franz-go/pkg/kfake), is a test double.
//
// Why it exists: the retry and dead-letter pattern is about what happens
// between a consumer, a broker and a producer, so its tests need a broker
// that speaks the real protocol (consumer groups, offset commits, headers,
// compression) and starts in milliseconds, with no container image. kfake
// serves segmentio/kafka-go fully.
//
// Start it, point clients at Addr, and Close it after the clients are done:
//
//	b, err := devbroker.Start(ctx, devbroker.Config{
//		Listen: "127.0.0.1:0",
//		Topics: map[string]int{"orders": 6},
//	})
//	if err != nil {
//		return err
//	}
//	defer b.Close()
//	cfg := kafkaclient.Config{Brokers: []string{b.Addr()}}
//
// Listen and advertised address. A Kafka client connects to a bootstrap
// address, asks for metadata, and then connects to the addresses the
// metadata names. Those must be reachable by the client, which is not
// always the bound address: a broker in a container binds 0.0.0.0:9092 but
// must advertise "devbroker:9092" or "localhost:19092". Config.Advertise sets
// what clients are told; kfake has no such option, so devbroker hands kfake a
// listener whose Addr reports the advertised address.
//
// Topics are created at start with their partition counts. With AutoCreate
// off (the default), producing to an unknown topic fails, as it should on a
// cluster whose topics are managed. DataDir keeps topics, records and
// committed offsets across restarts. TLS and SASL (PLAIN, SCRAM-SHA-256,
// SCRAM-SHA-512) let the same clients be tested with the security settings
// of production.
//
// Behaviour worth knowing (kfake, as pinned in go.mod):
//   - a consumer group rebalances as soon as every known member has joined:
//     there is no group.initial.rebalance.delay.ms (3 s on Kafka), so the
//     first member of a new group gets its partitions at once;
//   - the minimum session timeout is 6 s, as on Kafka; kafka-go's default
//     (30 s) is above it;
//   - offset commits are answered after the commit is applied, so a
//     synchronous kafka-go commit that returns nil is visible to the next
//     member of the group;
//   - a consumer-group member that dies between its JoinGroup and the
//     answer is never expired by kfake, so a process killed while joining
//     (a crash loop, a kill right after a restart) could keep its
//     partitions unread for good. devbroker works around it; see below.
//
// # Silent members: the reaper (a workaround for kfake)
//
// Kafka removes a group member that has sent nothing for its session
// timeout. kfake arms that timer only when an answer to the member is
// delivered: group.reply in pkg/kfake/groups.go calls updateHeartbeat only
// after the send succeeded. When the member is already dead, the send of
// its JoinGroup answer either fails (no timer at all) or, because the
// connection's response channel is buffered and Go's select picks at
// random, succeeds into the void (the timer is armed). In the first case,
// once the leader's SyncGroup makes the group Stable (which also stops the
// pending-sync timer), the dead member holds its partitions for ever. That
// is the "restarted consumer logs consuming and then processes nothing"
// hang of issue 14 (in 4 of 6 runs of a kill-restart-kill sequence). It is
// in kfake as pinned in pkg/go.mod (v0.0.0-20260918054303-01f206a7e32c,
// also the newest version on the Go module proxy on 2026-12-02) and in
// github.com/twmb/franz-go at adb3a18 (pkg/kfake/groups.go, func
// (*group).reply); no upstream issue for it was found.
//
// Unless Config.KeepSilentMembers is set, devbroker therefore runs a
// reaper (reaper.go): it watches the group requests that carry a member id
// (JoinGroup, SyncGroup, Heartbeat, OffsetCommit, LeaveGroup) without
// altering them, and once a second removes, with a LeaveGroup sent on its
// behalf, every member of a Stable group that has sent nothing for longer
// than the group's session timeout. That is Kafka's own rule, so a member
// that dies while joining is gone after its session timeout plus at most a
// second, and the group rebalances without it. The reaper logs each
// removal as a warning. TestGroupRecoversFromAMemberKilledWhileJoining
// shows it, and TestKfakeKeepsAMemberKilledWhileJoining shows the defect
// without it (when that test starts failing, kfake has been fixed and the
// reaper can go).
package devbroker
