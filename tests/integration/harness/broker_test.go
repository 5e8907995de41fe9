package harness_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/tests/integration/harness"
)

func TestBrokerKindOfReadsTheRepositoryName(t *testing.T) {
	tests := []struct {
		image string
		want  harness.BrokerKind
	}{
		{"reefer-dlq/devbroker:dev", harness.Devbroker},
		{"devbroker", harness.Devbroker},
		{"registry.example.com:5000/team/devbroker:1.2", harness.Devbroker},
		{"localhost:5000/devbroker", harness.Devbroker},
		{"ghcr.io/acme/devbroker@sha256:0123", harness.Devbroker},
		{"apache/kafka:3.9.0", harness.ApacheKafka},
		{"apache/kafka-native:3.9.0", harness.ApacheKafka},
		{"registry.example.com/devbroker-fork/kafka:1", harness.ApacheKafka},
	}
	for _, tt := range tests {
		if got := harness.BrokerKindOf(tt.image); got != tt.want {
			t.Errorf("BrokerKindOf(%q) = %s, want %s", tt.image, got, tt.want)
		}
	}
}

func TestDevbrokerSpecAdvertisesTheNetworkAlias(t *testing.T) {
	spec := harness.BrokerSpecFor("reefer-dlq/devbroker:dev")
	flags := map[string]string{}
	for i := 0; i+1 < len(spec.Cmd); i += 2 {
		flags[spec.Cmd[i]] = spec.Cmd[i+1]
	}
	want := map[string]string{"--listen": "0.0.0.0:9092", "--advertise": harness.BrokerAddr, "--topics": "", "--log-format": "json"}
	if diff := cmp.Diff(want, flags); diff != "" {
		t.Errorf("devbroker flags (-want +got):\n%s", diff)
	}
	if len(spec.Env) != 0 {
		t.Errorf("devbroker spec sets environment %v, want flags only", spec.Env)
	}
}

// The apache/kafka image cannot be pulled where this suite's CI runs, so its
// configuration is checked here the way the broker would check it at start:
// every listener has a protocol, the controller listener is one of them and
// is the one the quorum voter names, and clients are sent to BrokerAddr on
// a listener that is not the controller's.
func TestApacheKafkaSpecIsAConsistentSingleNodeKRaftCluster(t *testing.T) {
	spec := harness.BrokerSpecFor("apache/kafka:3.9.0")
	if spec.Kind != harness.ApacheKafka || len(spec.Cmd) != 0 {
		t.Fatalf("spec = %+v, want the image's own command with KRaft environment", spec)
	}
	env := spec.Env
	for _, k := range []string{"KAFKA_NODE_ID", "KAFKA_PROCESS_ROLES", "KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS",
		"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "KAFKA_CONTROLLER_LISTENER_NAMES", "KAFKA_CONTROLLER_QUORUM_VOTERS",
		"KAFKA_INTER_BROKER_LISTENER_NAME", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_LOG_DIRS"} {
		if env[k] == "" {
			t.Errorf("%s is not set: the image ignores its defaults once any KAFKA_ variable is set", k)
		}
	}

	listeners := map[string]string{} // name -> port
	for _, l := range strings.Split(env["KAFKA_LISTENERS"], ",") {
		name, hostPort, ok := strings.Cut(l, "://")
		_, port, err := net.SplitHostPort(hostPort)
		if !ok || err != nil {
			t.Fatalf("KAFKA_LISTENERS entry %q is not NAME://host:port", l)
		}
		listeners[name] = port
	}
	protocols := map[string]string{}
	for _, p := range strings.Split(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"], ",") {
		name, proto, _ := strings.Cut(p, ":")
		protocols[name] = proto
	}
	for name := range listeners {
		if protocols[name] == "" {
			t.Errorf("listener %s has no entry in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", name)
		}
	}
	controller := env["KAFKA_CONTROLLER_LISTENER_NAMES"]
	if _, ok := listeners[controller]; !ok {
		t.Errorf("controller listener %s is not in KAFKA_LISTENERS", controller)
	}
	if _, ok := listeners[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]; !ok {
		t.Errorf("inter-broker listener %s is not in KAFKA_LISTENERS", env["KAFKA_INTER_BROKER_LISTENER_NAME"])
	}
	voterID, voterAddr, _ := strings.Cut(env["KAFKA_CONTROLLER_QUORUM_VOTERS"], "@")
	if voterID != env["KAFKA_NODE_ID"] {
		t.Errorf("quorum voter %s is not this node (KAFKA_NODE_ID %s)", voterID, env["KAFKA_NODE_ID"])
	}
	if _, port, _ := net.SplitHostPort(voterAddr); port != listeners[controller] {
		t.Errorf("quorum voter port %s is not the controller listener's port %s", port, listeners[controller])
	}
	roles := strings.Split(env["KAFKA_PROCESS_ROLES"], ",")
	slices.Sort(roles)
	if !slices.Equal(roles, []string{"broker", "controller"}) {
		t.Errorf("KAFKA_PROCESS_ROLES %q, want broker and controller in one node", env["KAFKA_PROCESS_ROLES"])
	}
	advName, advAddr, _ := strings.Cut(env["KAFKA_ADVERTISED_LISTENERS"], "://")
	if advAddr != harness.BrokerAddr || advName == controller {
		t.Errorf("KAFKA_ADVERTISED_LISTENERS %q, want a client listener advertising %s", env["KAFKA_ADVERTISED_LISTENERS"], harness.BrokerAddr)
	}
	if _, port, _ := net.SplitHostPort(harness.BrokerAddr); listeners[advName] != port {
		t.Errorf("advertised listener %s listens on port %s, want %s (the port the harness publishes)", advName, listeners[advName], port)
	}
}

func TestDialRedirectSendsOnlyTheAdvertisedAddressToThePublishedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dial := harness.DialRedirect("kafka:9092", ln.Addr().String())
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // generous: a loaded -race run
	defer cancel()

	c, err := dial(ctx, "tcp", "kafka:9092")
	if err != nil {
		t.Fatalf("dial the advertised address: %v", err)
	}
	if got := c.RemoteAddr().String(); got != ln.Addr().String() {
		t.Errorf("connected to %s, want the published port %s", got, ln.Addr())
	}
	c.Close()

	// Any other address is dialled as asked: a name that does not resolve
	// fails instead of reaching the broker.
	if c, err := dial(ctx, "tcp", "kafka.invalid:9092"); err == nil {
		c.Close()
		t.Errorf("dial kafka.invalid:9092 succeeded, want it left alone (and failing)")
	}
}

// The whole mechanism against a broker that advertises an address the test
// process cannot resolve, as the broker container does: kafka-go bootstraps,
// reads "kafka:9092" from the metadata and still reaches the broker for
// producing and for a consumer group.
func TestKafkaClientsReachABrokerAdvertisingItsAliasThroughDialRedirect(t *testing.T) {
	b, err := devbroker.Start(t.Context(), devbroker.Config{Advertise: harness.BrokerAddr, Topics: map[string]int{"t": 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := kafkaclient.Config{Brokers: []string{harness.BrokerAddr}, Dial: harness.DialRedirect(harness.BrokerAddr, b.ListenAddr())}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	w, err := cfg.NewWriter("t")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	want := []string{"a", "b", "c"}
	for _, v := range want {
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(v), Value: []byte(v)}); err != nil {
			t.Fatalf("produce through the redirect: %v", err)
		}
	}
	r, err := cfg.NewReader(kafka.ReaderConfig{Topic: "t", GroupID: "g"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []string
	for range want {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("consume through the redirect: %v", err)
		}
		got = append(got, string(m.Value))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("consumed %v, want %v", got, want)
	}
}
