package validate

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/dlq"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

// repo returns the path of a file of the repository, from its root.
func repo(t testing.TB, path ...string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test's source file")
	}
	// This file is deployments/validate/helpers_test.go.
	root := filepath.Join(filepath.Dir(file), "..", "..")
	return filepath.Join(append([]string{root}, path...)...)
}

// contractTopics are the topics the deployments must create, with their
// partition counts: the contract's (kafkaclient.DefaultTopics) and the dlq
// CLI's resolution log, whose single partition holds one small record per
// handled dead letter.
func contractTopics() map[string]int {
	topics := kafkaclient.DefaultTopics()
	topics[resolution.TopicFor(dlq.DefaultTopic)] = 1
	return topics
}

// topicSpec is one entry of topic-init's TOPICS: name:partitions[:k=v,...].
type topicSpec struct {
	partitions int
	configs    map[string]string
}

// parseTopics reads topic-init's TOPICS value.
func parseTopics(t testing.TB, value string) map[string]topicSpec {
	t.Helper()
	out := map[string]topicSpec{}
	for _, entry := range strings.Fields(value) {
		parts := strings.SplitN(entry, ":", 3)
		if len(parts) < 2 {
			t.Fatalf("TOPICS entry %q: want name:partitions[:key=value,...]", entry)
		}
		n, err := strconv.Atoi(parts[1])
		if err != nil {
			t.Fatalf("TOPICS entry %q: partitions: %v", entry, err)
		}
		spec := topicSpec{partitions: n, configs: map[string]string{}}
		if len(parts) == 3 {
			for _, kv := range strings.Split(parts[2], ",") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("TOPICS entry %q: config %q: want key=value", entry, kv)
				}
				spec.configs[k] = v
			}
		}
		if _, dup := out[parts[0]]; dup {
			t.Fatalf("TOPICS names %s twice", parts[0])
		}
		out[parts[0]] = spec
	}
	return out
}

// checkTopics compares topic-init's TOPICS with the contract.
func checkTopics(t *testing.T, value string) {
	t.Helper()
	got := parseTopics(t, value)
	want := contractTopics()
	for name, n := range want {
		spec, ok := got[name]
		switch {
		case !ok:
			t.Errorf("TOPICS lacks %s (%d partitions)", name, n)
		case spec.partitions != n:
			t.Errorf("TOPICS: %s has %d partitions, the contract says %d", name, spec.partitions, n)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("TOPICS creates %s, which no service uses", name)
		}
	}
	// Dead letters wait for a person: the broker's 7-day default may drop
	// them before anyone looked.
	if r := got[dlq.DefaultTopic].configs["retention.ms"]; r != "-1" {
		if ms, err := strconv.ParseInt(r, 10, 64); err != nil || ms < 14*24*3600*1000 {
			t.Errorf("TOPICS: %s retention.ms=%q: want at least 14 days or -1 (forever)", dlq.DefaultTopic, r)
		}
	}
	if p := got[resolution.TopicFor(dlq.DefaultTopic)].configs["cleanup.policy"]; p != "compact" {
		t.Errorf("TOPICS: %s cleanup.policy=%q: want compact, as the dlq CLI creates it", resolution.TopicFor(dlq.DefaultTopic), p)
	}
}

// checkMessageLimits checks the topics' max.message.bytes (Kafka's
// 1048588 where TOPICS sets none) against each other and against what the
// services are told (pipeline, their environment): the dead-letter topic
// must take larger records than the topics it receives from, with room
// for the dead-letter headers (up to ~6 KiB; asked: 64 KiB), or a record
// near the limit reaches the dead-letter topic cut (reason oversize); and
// MAX_MESSAGE_BYTES / DLQ_MAX_MESSAGE_BYTES must say what the topics
// take, or the services' size checks are wrong.
func checkMessageLimits(t *testing.T, topics string, pipeline map[string]string) {
	t.Helper()
	const headroom = 64 << 10
	got := parseTopics(t, topics)
	limit := func(name string) int {
		v, ok := got[name].configs["max.message.bytes"]
		if !ok {
			return 1048588
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Errorf("TOPICS: %s max.message.bytes=%q: want a whole number", name, v)
		}
		return n
	}
	dlqLimit := limit(dlq.DefaultTopic)
	largest := 0
	for _, name := range []string{"orders", "order-retries"} {
		largest = max(largest, limit(name))
		if v := pipeline["MAX_MESSAGE_BYTES"]; v != strconv.Itoa(limit(name)) {
			t.Errorf("MAX_MESSAGE_BYTES=%q, but TOPICS gives %s max.message.bytes %d", v, name, limit(name))
		}
	}
	if dlqLimit < largest+headroom {
		t.Errorf("TOPICS: %s max.message.bytes %d: want at least %d, the largest of orders and order-retries (%d) plus %d for the dead-letter headers",
			dlq.DefaultTopic, dlqLimit, largest+headroom, largest, headroom)
	}
	if v := pipeline["DLQ_MAX_MESSAGE_BYTES"]; v != strconv.Itoa(dlqLimit) {
		t.Errorf("DLQ_MAX_MESSAGE_BYTES=%q, but TOPICS gives %s max.message.bytes %d", v, dlq.DefaultTopic, dlqLimit)
	}
}

// readEnvFile reads a KEY=VALUE file such as a kustomize env file.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			env[k] = v
		}
	}
	return env
}

// port returns the port of a host:port address.
func port(t testing.TB, addr string) int {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	n, err := strconv.Atoi(addr[i+1:])
	if i < 0 || err != nil {
		t.Fatalf("address %q has no port", addr)
	}
	return n
}
