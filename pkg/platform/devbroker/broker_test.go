package devbroker_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/testkit/testcert"
)

func start(t testing.TB, cfg devbroker.Config) *devbroker.Broker {
	t.Helper()
	b, err := devbroker.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// write writes msgs to topic with the given compression.
func write(t *testing.T, client kafkaclient.Config, topic string, compression kafka.Compression, msgs ...kafka.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	w, err := client.NewWriter(topic)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	w.Compression = compression
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		w.Close()
		t.Fatalf("WriteMessages: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}
}

// readGroup reads n records of topic as a member of group and commits them.
func readGroup(t *testing.T, client kafkaclient.Config, topic, group string, n int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	r, err := client.NewReader(kafka.ReaderConfig{GroupID: group, Topic: topic})
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	defer r.Close()
	var got []kafka.Message
	for len(got) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("FetchMessage after %d of %d: %v", len(got), n, err)
		}
		got = append(got, m)
	}
	if err := r.CommitMessages(ctx, got...); err != nil {
		t.Fatalf("CommitMessages: %v", err)
	}
	return got
}

// roundTrip writes msgs uncompressed and reads them back with a group.
func roundTrip(t *testing.T, client kafkaclient.Config, topic, group string, msgs ...kafka.Message) []kafka.Message {
	t.Helper()
	write(t, client, topic, 0, msgs...)
	return readGroup(t, client, topic, group, len(msgs))
}

type record struct {
	Key, Value string
	Headers    map[string]string
}

func records(msgs []kafka.Message) map[string]record {
	out := map[string]record{}
	for _, m := range msgs {
		r := record{Key: string(m.Key), Value: string(m.Value), Headers: map[string]string{}}
		for _, h := range m.Headers {
			r.Headers[h.Key] = string(h.Value)
		}
		out[r.Key] = r
	}
	return out
}

func TestKafkaGoProducesAndConsumesWithAGroup(t *testing.T) {
	b := start(t, devbroker.Config{Topics: map[string]int{"orders": 3}})
	client := kafkaclient.Config{Brokers: []string{b.Addr()}}

	// Every codec kafka-go offers, with headers, read back by one group.
	codecs := map[string]kafka.Compression{"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd}
	var sent []kafka.Message
	for name, codec := range codecs {
		var batch []kafka.Message
		for i := range 3 {
			batch = append(batch, kafka.Message{
				Key:   fmt.Appendf(nil, "order-%s-%d", name, i),
				Value: fmt.Appendf(nil, `{"orderID":"order-%s-%d"}`, name, i),
				Headers: []kafka.Header{
					{Key: "x-retry-attempt", Value: []byte(strconv.Itoa(i))},
					{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
				},
			})
		}
		write(t, client, "orders", codec, batch...)
		sent = append(sent, batch...)
	}
	got := readGroup(t, client, "orders", "reefer-manager", len(sent))
	if diff := cmp.Diff(records(sent), records(got)); diff != "" {
		t.Errorf("records read back (-sent +got):\n%s", diff)
	}

	// The commit holds: the group resumes after what it committed.
	again := roundTrip(t, client, "orders", "reefer-manager", kafka.Message{Key: []byte("order-late"), Value: []byte("late")})
	if len(again) != 1 || string(again[0].Value) != "late" {
		t.Errorf("after the commit the group read %v, want only the new record", again)
	}
}

func TestBrokerAdvertisesWhatItIsTold(t *testing.T) {
	tests := []struct {
		name      string
		listen    string
		advertise string
		want      func(boundPort string) string
	}{
		{
			name: "empty advertise is the bound address", listen: "127.0.0.1:0",
			want: func(p string) string { return "127.0.0.1:" + p },
		},
		{
			name: "unspecified bind host advertises loopback", listen: ":0",
			want: func(p string) string { return "127.0.0.1:" + p },
		},
		{
			name: "host alone keeps the bound port", listen: "127.0.0.1:0", advertise: "localhost",
			want: func(p string) string { return "localhost:" + p },
		},
		{
			name: "port 0 keeps the bound port", listen: "127.0.0.1:0", advertise: "localhost:0",
			want: func(p string) string { return "localhost:" + p },
		},
		{
			name: "another host and port, as behind a published container port", listen: "127.0.0.1:0", advertise: "devbroker.internal:19092",
			want: func(string) string { return "devbroker.internal:19092" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := start(t, devbroker.Config{Listen: tt.listen, Advertise: tt.advertise, Topics: map[string]int{"orders": 2}})
			_, boundPort, err := net.SplitHostPort(b.ListenAddr())
			if err != nil {
				t.Fatalf("ListenAddr() = %q: %v", b.ListenAddr(), err)
			}
			want := tt.want(boundPort)
			if b.Addr() != want {
				t.Errorf("Addr() = %q, want %q", b.Addr(), want)
			}

			// A client dialing the bound port is told the advertised address
			// in metadata, as broker and as partition leader.
			conn, err := kafka.DialContext(t.Context(), "tcp", net.JoinHostPort("127.0.0.1", boundPort))
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer conn.Close()
			brokers, err := conn.Brokers()
			if err != nil {
				t.Fatalf("metadata: %v", err)
			}
			var got []string
			for _, br := range brokers {
				got = append(got, net.JoinHostPort(br.Host, strconv.Itoa(br.Port)))
			}
			if diff := cmp.Diff([]string{want}, got); diff != "" {
				t.Errorf("brokers in metadata (-want +got):\n%s", diff)
			}
			parts, err := conn.ReadPartitions("orders")
			if err != nil {
				t.Fatalf("read partitions: %v", err)
			}
			for _, p := range parts {
				if leader := net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port)); leader != want {
					t.Errorf("leader of orders/%d = %s, want %s", p.ID, leader, want)
				}
			}
		})
	}
}

func TestConsumerGroupWorksThroughTheAdvertisedName(t *testing.T) {
	// Clients bootstrap with the advertised name and follow it for the
	// coordinator and the partition leaders.
	b := start(t, devbroker.Config{Listen: "127.0.0.1:0", Advertise: "localhost", Topics: map[string]int{"orders": 6}})
	if !strings.HasPrefix(b.Addr(), "localhost:") {
		t.Fatalf("Addr() = %q, want localhost:<port>", b.Addr())
	}
	got := roundTrip(t, kafkaclient.Config{Brokers: []string{b.Addr()}}, "orders", "g",
		kafka.Message{Key: []byte("o1"), Value: []byte("v1")})
	if len(got) != 1 || string(got[0].Value) != "v1" {
		t.Errorf("read %v, want v1", got)
	}
}

func TestTopicsAreCreatedWithTheirPartitionCounts(t *testing.T) {
	topics := map[string]int{"orders": 6, "containers": 6, "order-retries": 6, "order-dead-letter": 3}
	b := start(t, devbroker.Config{Topics: topics})
	conn, err := kafka.DialContext(t.Context(), "tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions()
	if err != nil {
		t.Fatalf("read partitions: %v", err)
	}
	got := map[string]int{}
	for _, p := range parts {
		got[p.Topic]++
	}
	if diff := cmp.Diff(topics, got); diff != "" {
		t.Errorf("partitions per topic (-want +got):\n%s", diff)
	}
}

func TestAutoCreate(t *testing.T) {
	tests := []struct {
		name       string
		autoCreate bool
		wantErr    error
		wantParts  int
	}{
		{name: "off rejects an unknown topic", autoCreate: false, wantErr: kafka.UnknownTopicOrPartition},
		{name: "on creates it with the default partitions", autoCreate: true, wantParts: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := start(t, devbroker.Config{AutoCreate: tt.autoCreate, DefaultPartitions: 2})
			w, err := kafkaclient.Config{Brokers: []string{b.Addr()}}.NewWriter("surprise")
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			w.AllowAutoTopicCreation = true // the client asks; the broker decides
			w.MaxAttempts = 1
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // generous: a loaded -race run
			defer cancel()
			err = w.WriteMessages(ctx, kafka.Message{Value: []byte("x")})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("WriteMessages = %v, want %v", err, tt.wantErr)
				}
				if b.Cluster().TopicInfo("surprise") != nil {
					t.Error("topic surprise was created with auto-create off")
				}
				return
			}
			if err != nil {
				t.Fatalf("WriteMessages = %v, want success", err)
			}
			if got := len(b.Cluster().PartitionInfos("surprise")); got != tt.wantParts {
				t.Errorf("auto-created topic has %d partitions, want %d", got, tt.wantParts)
			}
		})
	}
}

func TestTLSAndSASLWithKafkaclient(t *testing.T) {
	certs := testcert.New(t, "localhost", "127.0.0.1")
	clientTLS := kafkaclient.TLSConfig{Enabled: true, CAFile: certs.CAFile}
	tests := []struct {
		name   string
		tls    *tls.Config
		sasl   []devbroker.SASLUser
		client kafkaclient.Config
	}{
		{
			name:   "TLS",
			tls:    certs.Server,
			client: kafkaclient.Config{TLS: clientTLS},
		},
		{
			name:   "SASL PLAIN",
			sasl:   []devbroker.SASLUser{{Mechanism: "PLAIN", User: "svc", Password: "pw"}},
			client: kafkaclient.Config{SASL: kafkaclient.SASLConfig{Mechanism: "plain", Username: "svc", Password: "pw"}},
		},
		{
			name:   "SASL SCRAM-SHA-256",
			sasl:   []devbroker.SASLUser{{Mechanism: "scram-sha-256", User: "svc", Password: "pw"}},
			client: kafkaclient.Config{SASL: kafkaclient.SASLConfig{Mechanism: "scram-sha-256", Username: "svc", Password: "pw"}},
		},
		{
			name:   "SASL SCRAM-SHA-512",
			sasl:   []devbroker.SASLUser{{Mechanism: "SCRAM-SHA-512", User: "svc", Password: "pw"}},
			client: kafkaclient.Config{SASL: kafkaclient.SASLConfig{Mechanism: "scram-sha-512", Username: "svc", Password: "pw"}},
		},
		{
			name:   "TLS and SASL PLAIN",
			tls:    certs.Server,
			sasl:   []devbroker.SASLUser{{Mechanism: "PLAIN", User: "svc", Password: "pw"}},
			client: kafkaclient.Config{TLS: clientTLS, SASL: kafkaclient.SASLConfig{Mechanism: "plain", Username: "svc", Password: "pw"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := start(t, devbroker.Config{Advertise: "localhost", TLS: tt.tls, SASL: tt.sasl, Topics: map[string]int{"orders": 2}})
			client := tt.client
			client.Brokers = []string{b.Addr()}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // generous: a loaded -race run
			defer cancel()
			if err := client.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			got := roundTrip(t, client, "orders", "secure", kafka.Message{Key: []byte("k"), Value: []byte("secret cargo")})
			if string(got[0].Value) != "secret cargo" {
				t.Errorf("read %q, want %q", got[0].Value, "secret cargo")
			}
		})
	}
}

func TestSecuredBrokerRefusesClientsWithoutTheRightSettings(t *testing.T) {
	certs := testcert.New(t, "localhost", "127.0.0.1")
	plain := []devbroker.SASLUser{{Mechanism: "PLAIN", User: "svc", Password: "pw"}}
	tests := []struct {
		name   string
		broker devbroker.Config
		client kafkaclient.Config
	}{
		{"plaintext client, TLS broker", devbroker.Config{TLS: certs.Server}, kafkaclient.Config{}},
		{"TLS client, plaintext broker", devbroker.Config{}, kafkaclient.Config{TLS: kafkaclient.TLSConfig{Enabled: true, CAFile: certs.CAFile}}},
		{"TLS client that does not trust the CA", devbroker.Config{TLS: certs.Server}, kafkaclient.Config{TLS: kafkaclient.TLSConfig{Enabled: true}}},
		{"no SASL, SASL broker", devbroker.Config{SASL: plain}, kafkaclient.Config{}},
		{"wrong password", devbroker.Config{SASL: plain}, kafkaclient.Config{SASL: kafkaclient.SASLConfig{Mechanism: "plain", Username: "svc", Password: "nope"}}},
		{"mechanism the user does not have", devbroker.Config{SASL: plain}, kafkaclient.Config{SASL: kafkaclient.SASLConfig{Mechanism: "scram-sha-256", Username: "svc", Password: "pw"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.broker
			cfg.Advertise = "localhost"
			b := start(t, cfg)
			client := tt.client
			client.Brokers = []string{b.Addr()}
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			if err := client.Ping(ctx); err == nil {
				t.Error("Ping succeeded, want the broker to refuse the client")
			}
		})
	}
}

func TestDataDirKeepsRecordsAndCommittedOffsets(t *testing.T) {
	dir := t.TempDir()
	cfg := devbroker.Config{DataDir: dir, Topics: map[string]int{"orders": 2}}

	first, err := devbroker.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	client := kafkaclient.Config{Brokers: []string{first.Addr()}}
	roundTrip(t, client, "orders", "g",
		kafka.Message{Key: []byte("a"), Value: []byte("1")},
		kafka.Message{Key: []byte("b"), Value: []byte("2")})
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	// Restarted (on another port) with a different partition count asked
	// for: the stored topic is kept as it was.
	cfg.Topics = map[string]int{"orders": 4, "containers": 1}
	second := start(t, cfg)
	if got := len(second.Cluster().PartitionInfos("orders")); got != 2 {
		t.Errorf("orders has %d partitions after restart, want the stored 2", got)
	}
	if second.Cluster().TopicInfo("containers") == nil {
		t.Error("new topic containers was not created on restart")
	}
	client.Brokers = []string{second.Addr()}
	// The group committed both records before the restart: it reads only
	// the new one.
	got := roundTrip(t, client, "orders", "g", kafka.Message{Key: []byte("c"), Value: []byte("3")})
	if len(got) != 1 || string(got[0].Value) != "3" {
		t.Errorf("after restart the group read %v, want only the new record", got)
	}
	// A new group still finds the records written before the restart.
	all := 0
	for _, p := range second.Cluster().PartitionInfos("orders") {
		all += int(p.HighWatermark)
	}
	if all != 3 {
		t.Errorf("orders holds %d records after restart, want 3", all)
	}
}

func TestCloseStopsTheBrokerAndIsIdempotent(t *testing.T) {
	b, err := devbroker.Start(t.Context(), devbroker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := b.Close(); err != nil {
			t.Errorf("Close #%d = %v", i+1, err)
		}
	}
	conn, err := net.DialTimeout("tcp", b.ListenAddr(), time.Second)
	if err == nil {
		conn.Close()
		t.Error("the broker still accepts connections after Close")
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  devbroker.Config
		want string
	}{
		{"listen without port", devbroker.Config{Listen: "localhost"}, `listen address "localhost": want host:port`},
		{"listen with bad port", devbroker.Config{Listen: "127.0.0.1:99999"}, "not a number in 0-65535"},
		{"advertise with bad port", devbroker.Config{Advertise: "localhost:x"}, `advertised address "localhost:x": port "x"`},
		{"advertise without host", devbroker.Config{Advertise: ":9092"}, "has no host"},
		{"topic without partitions", devbroker.Config{Topics: map[string]int{"orders": 0}}, "topic orders: 0 partitions"},
		{"bad topic name", devbroker.Config{Topics: map[string]int{"a b": 1}}, `topic name "a b" has ' '`},
		{"negative default partitions", devbroker.Config{DefaultPartitions: -1}, "default partitions -1"},
		{"TLS without certificate", devbroker.Config{TLS: &tls.Config{}}, "TLS config has no server certificate"},
		{"unknown SASL mechanism", devbroker.Config{SASL: []devbroker.SASLUser{{Mechanism: "GSSAPI", User: "u", Password: "p"}}}, `mechanism "GSSAPI": want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`},
		{"SASL user without password", devbroker.Config{SASL: []devbroker.SASLUser{{Mechanism: "PLAIN", User: "u"}}}, "user name and password must both be set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := devbroker.Start(t.Context(), tt.cfg)
			if err == nil {
				b.Close()
				t.Fatalf("Start succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestStartFailsWhenThePortIsTaken(t *testing.T) {
	b := start(t, devbroker.Config{})
	_, err := devbroker.Start(t.Context(), devbroker.Config{Listen: b.ListenAddr()})
	if err == nil || !strings.Contains(err.Error(), "listen on "+b.ListenAddr()) {
		t.Errorf("Start on a taken port = %v, want a listen error naming the address", err)
	}
}
