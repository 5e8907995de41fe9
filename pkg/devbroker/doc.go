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
//     member of the group.
package devbroker
