package harness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
)

// The broker's place on the stack's network. Every container reaches it as
// BrokerAddr, and that is also the address the broker advertises, so the
// services need no special configuration.
const (
	BrokerAlias = "kafka"
	brokerPort  = "9092"
	BrokerAddr  = BrokerAlias + ":" + brokerPort
)

// The max.message.bytes of the topics the harness creates, as the
// deployments set them: Kafka's default for every topic but the
// dead-letter topic, which takes twice as much, so that a dead letter (its
// record plus up to ~6 KiB of headers) of the largest record the orders
// topic takes fits whole. The services are told both (ServiceEnv), and a
// record too large for the retry or dead-letter topic becomes an oversize
// dead letter instead of blocking its partition (docs/contract.md). The
// setting is per topic, so it means the same on devbroker and on a real
// Kafka, and both enforce it.
const (
	MaxMessageBytes           = 1048588
	DeadLetterMaxMessageBytes = 2 << 20
)

// BrokerKind says how to run a broker image.
type BrokerKind string

const (
	// Devbroker is this repository's embedded broker (pkg/platform/cmd/devbroker),
	// configured by flags.
	Devbroker BrokerKind = "devbroker"
	// ApacheKafka is the official apache/kafka image (and images that
	// follow its convention: every KAFKA_* variable becomes a server
	// property), run as a single KRaft node.
	ApacheKafka BrokerKind = "apache-kafka"
)

// BrokerKindOf decides from the image name: an image whose repository is
// named devbroker (reefer-dlq/devbroker:dev, registry.example/devbroker:1)
// is a Devbroker, any other is taken for an ApacheKafka image.
func BrokerKindOf(image string) BrokerKind {
	name := image
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	name, _, _ = strings.Cut(name, "@")
	name, _, _ = strings.Cut(name, ":")
	if name == "devbroker" {
		return Devbroker
	}
	return ApacheKafka
}

// BrokerSpec is how the harness runs a broker image: its command line and
// environment. Both kinds listen on port 9092 and advertise BrokerAddr.
type BrokerSpec struct {
	Kind BrokerKind
	Cmd  []string
	Env  map[string]string
}

// BrokerSpecFor returns the spec for image. Topics are not created here: the
// harness creates them through the Kafka protocol once the broker answers,
// with their max.message.bytes, which works the same on both kinds.
func BrokerSpecFor(image string) BrokerSpec {
	if BrokerKindOf(image) == Devbroker {
		return BrokerSpec{
			Kind: Devbroker,
			Cmd: []string{
				"--listen", "0.0.0.0:" + brokerPort,
				"--advertise", BrokerAddr,
				"--topics", "", // the harness creates the topics itself
				"--log-format", "json",
			},
		}
	}
	// A single KRaft node (broker and controller in one process). The
	// apache/kafka image ignores its built-in properties as soon as one
	// KAFKA_* variable is set, so every setting it needs is here.
	return BrokerSpec{
		Kind: ApacheKafka,
		Env: map[string]string{
			"KAFKA_NODE_ID":                                  "1",
			"KAFKA_PROCESS_ROLES":                            "broker,controller",
			"KAFKA_LISTENERS":                                "PLAINTEXT://0.0.0.0:" + brokerPort + ",CONTROLLER://0.0.0.0:9093",
			"KAFKA_ADVERTISED_LISTENERS":                     "PLAINTEXT://" + BrokerAddr,
			"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":           "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
			"KAFKA_INTER_BROKER_LISTENER_NAME":               "PLAINTEXT",
			"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
			"KAFKA_CONTROLLER_QUORUM_VOTERS":                 "1@localhost:9093",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
			// A consumer group forms at once instead of after 3 s.
			"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
			// As with devbroker: a typo in a topic name is an error.
			"KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
			"KAFKA_LOG_DIRS":                  "/tmp/kraft-combined-logs",
		},
	}
}

// Broker is the running broker container and how the test process reaches
// it.
type Broker struct {
	Container *testcontainers.DockerContainer
	Spec      BrokerSpec
	// HostAddr is the published port on the host (host:port).
	HostAddr string
	// Kafka is the client configuration of the test process: bootstrap
	// BrokerAddr, like the services, and a Dial function that sends
	// connections for BrokerAddr to HostAddr (see DialRedirect).
	Kafka kafkaclient.Config
}

// DialRedirect returns a dial function for kafkaclient.Config.Dial (or a
// kafka-go Dialer's DialFunc, or a Transport's Dial) that connects to to
// whenever a client asks for from, and to any other address as asked.
//
// This is how a process outside the Docker network talks to a broker that
// advertises its network alias: the client bootstraps, reads the metadata
// ("broker 1 is kafka:9092") and dials that address, which the function
// turns into the published port. No host networking, no second listener,
// no hosts-file entry: it works the same on Linux and Docker Desktop.
func DialRedirect(from, to string) func(ctx context.Context, network, address string) (net.Conn, error) {
	d := &net.Dialer{Timeout: kafkaclient.DialTimeout}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if address == from {
			address = to
		}
		return d.DialContext(ctx, network, address)
	}
}

// startBroker runs image on nw as BrokerAlias and waits until it answers
// a metadata request through the redirect.
func startBroker(ctx context.Context, tb testing.TB, nw *testcontainers.DockerNetwork, image string) (*Broker, error) {
	spec := BrokerSpecFor(image)
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithLogger(log.TestLogger(tb)),
		network.WithNetwork([]string{BrokerAlias}, nw),
		testcontainers.WithExposedPorts(brokerPort + "/tcp"),
		// No internal check: it runs a shell in the container, and the
		// devbroker image (FROM scratch) has none.
		testcontainers.WithWaitStrategy(wait.ForListeningPort(brokerPort + "/tcp").SkipInternalCheck().WithStartupTimeout(2 * time.Minute)),
	}
	if len(spec.Cmd) > 0 {
		opts = append(opts, testcontainers.WithCmd(spec.Cmd...))
	}
	if len(spec.Env) > 0 {
		opts = append(opts, testcontainers.WithEnv(spec.Env))
	}
	ctr, err := testcontainers.Run(ctx, image, opts...)
	// Registered before the error check: a container that started but
	// never became ready is removed too.
	testcontainers.CleanupContainer(tb, ctr)
	keepLogs(tb, "kafka", ctr)
	if err != nil {
		return nil, fmt.Errorf("start broker %s (%s): %w", image, spec.Kind, err)
	}
	hostAddr, err := ctr.PortEndpoint(ctx, brokerPort+"/tcp", "")
	if err != nil {
		return nil, fmt.Errorf("broker's published port: %w", err)
	}
	b := &Broker{
		Container: ctr,
		Spec:      spec,
		HostAddr:  hostAddr,
		Kafka: kafkaclient.Config{
			Brokers:  []string{BrokerAddr},
			ClientID: "integration-test",
			Dial:     DialRedirect(BrokerAddr, hostAddr),
		},
	}
	// A real Kafka opens its port before it can answer; devbroker answers
	// at once. Either way, wait for a real answer.
	if err := retryUntil(ctx, 500*time.Millisecond, func() error {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return b.Kafka.Ping(pctx)
	}); err != nil {
		return nil, fmt.Errorf("broker %s does not answer on %s: %w", image, hostAddr, err)
	}
	return b, nil
}

// CreateTopics creates each topic (name -> partitions) with replication 1
// and max.message.bytes from maxMessageBytes (MaxMessageBytes for a topic
// not in it), and waits until the metadata shows every partition with a
// leader (a real Kafka creates topics asynchronously).
func (b *Broker) CreateTopics(ctx context.Context, topics, maxMessageBytes map[string]int) error {
	t, err := b.Kafka.Transport()
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	defer t.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(b.Kafka.Brokers...), Transport: t}

	names := slices.Sorted(maps.Keys(topics))
	req := &kafka.CreateTopicsRequest{}
	for _, name := range names {
		if err := kafkaclient.CheckTopicName(name); err != nil {
			return fmt.Errorf("create topics: %w", err)
		}
		req.Topics = append(req.Topics, kafka.TopicConfig{
			Topic:             name,
			NumPartitions:     topics[name],
			ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{
				{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(cmp.Or(maxMessageBytes[name], MaxMessageBytes))},
			},
		})
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics %v: %w", names, err)
	}
	var errs []error
	for _, name := range names {
		if err := resp.Errors[name]; err != nil {
			errs = append(errs, fmt.Errorf("create topic %s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return retryUntil(ctx, 100*time.Millisecond, func() error {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
		if err != nil {
			return err
		}
		for _, mt := range md.Topics {
			if mt.Error != nil {
				return fmt.Errorf("topic %s: %w", mt.Name, mt.Error)
			}
			if len(mt.Partitions) != topics[mt.Name] {
				return fmt.Errorf("topic %s has %d of %d partitions", mt.Name, len(mt.Partitions), topics[mt.Name])
			}
			for _, p := range mt.Partitions {
				if p.Error != nil || p.Leader.ID < 0 {
					return fmt.Errorf("topic %s partition %d has no leader yet", mt.Name, p.ID)
				}
			}
		}
		return nil
	})
}

// retryUntil calls f every interval until it returns nil or ctx ends; the
// error is then f's last one.
func retryUntil(ctx context.Context, interval time.Duration, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
