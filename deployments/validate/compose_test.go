package validate

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/deployments/validate/compose"
	"github.com/reeferdlq/reefer-dlq/deployments/validate/services"
)

// composeProfiles are the optional profiles of compose.yaml and the services
// each adds to the default set.
var composeProfiles = map[string][]string{
	"cluster": {"kafka-2", "kafka-3"},
	"observe": {"dlq-watch", "grafana", "jaeger", "kafka-ui", "prometheus"},
	"tools":   {"dlq"},
}

var composeDefault = []string{"container-inventory-mock", "kafka", "order-retry", "postgres", "reefer-manager", "topic-init"}

// composeEnv is the environment `make up` gives Compose for these profiles:
// three replicas and min.insync.replicas 2 with the cluster profile.
func composeEnv(profiles []string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if slices.Contains(profiles, "cluster") {
		env = append(env, "KAFKA_REPLICATION_FACTOR=3", "KAFKA_MIN_INSYNC_REPLICAS=2")
	}
	return env
}

// profileCombinations returns every subset of the optional profiles.
func profileCombinations() [][]string {
	names := []string{"cluster", "observe", "tools"}
	var out [][]string
	for mask := range 1 << len(names) {
		var set []string
		for i, n := range names {
			if mask&(1<<i) != 0 {
				set = append(set, n)
			}
		}
		out = append(out, set)
	}
	return out
}

func findCompose(t *testing.T) compose.Tool {
	t.Helper()
	tool, err := compose.Find(context.Background())
	if errors.Is(err, compose.ErrNotFound) {
		t.Skipf("precondition: %v; install one (Debian: apt-get install docker-compose) to check deployments/compose", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Profiles arrived in docker-compose 1.28.
	if v := strings.TrimPrefix(tool.Version, "v"); tool.Argv[0] == "docker-compose" && strings.HasPrefix(v, "1.") {
		minor, _ := strconv.Atoi(strings.Split(v, ".")[1])
		if minor < 28 {
			t.Fatalf("%s predates Compose profiles (1.28): the compose file cannot be checked with it", tool)
		}
	}
	t.Logf("checking with %s", tool)
	return tool
}

func TestComposeConfigForEveryProfileCombination(t *testing.T) {
	tool := findCompose(t)
	file := repo(t, "deployments", "compose", "compose.yaml")
	for _, profiles := range profileCombinations() {
		t.Run("profiles="+strings.Join(profiles, ","), func(t *testing.T) {
			p, err := tool.Config(t.Context(), file, "reefer-dlq", profiles, composeEnv(profiles))
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(composeDefault)
			for _, pr := range profiles {
				want = append(want, composeProfiles[pr]...)
			}
			slices.Sort(want)
			if diff := cmp.Diff(want, p.Active()); diff != "" {
				t.Fatalf("active services (-want +got):\n%s", diff)
			}
			checkComposeWiring(t, p)
			checkComposeServices(t, p)
			checkComposeKafka(t, p)
		})
	}
}

// checkComposeWiring: dependencies, mounts and builds that the schema
// cannot check.
func checkComposeWiring(t *testing.T, p compose.Project) {
	active := p.Active()
	for _, name := range active {
		s := p.Services[name]
		for dep, d := range s.DependsOn {
			if !slices.Contains(active, dep) {
				t.Errorf("%s depends on %s, which profiles %v do not start", name, dep, p.Profiles)
			}
			if d.Condition == "service_healthy" && p.Services[dep].Healthcheck == nil {
				t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			}
		}
		for _, v := range s.Volumes {
			switch v.Type {
			case "bind":
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s, which does not exist: %v", name, v.Source, err)
				}
				if !v.ReadOnly {
					t.Errorf("%s mounts %s read-write: configuration from the repository is mounted read-only", name, v.Source)
				}
			case "volume":
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s uses volume %s, which the file does not declare", name, v.Source)
				}
			}
		}
		if b := s.Build; b != nil {
			if b.Context != repo(t) {
				t.Errorf("%s builds in %s, want the repository root %s", name, b.Context, repo(t))
			}
			if _, err := os.Stat(filepath.Join(b.Context, b.Dockerfile)); err != nil {
				t.Errorf("%s: Dockerfile: %v", name, err)
			}
			if _, err := os.Stat(repo(t, "services", b.Args["SERVICE"], "go.mod")); err != nil {
				t.Errorf("%s: build arg SERVICE=%q is no module under services/: %v", name, b.Args["SERVICE"], err)
			}
		}
	}
}

// checkComposeServices runs each service's own configuration code on the
// environment compose gives it, and checks that they find each other.
func checkComposeServices(t *testing.T, p compose.Project) {
	facts := map[string]services.Facts{}
	for _, svc := range services.All() {
		s, ok := p.Services[svc.Name]
		if !ok {
			t.Errorf("compose.yaml has no service %s", svc.Name)
			continue
		}
		loaded, err := svc.Load(s.Env())
		if err != nil {
			t.Errorf("compose service %s: %v", svc.Name, err)
		}
		if len(loaded.Unread) > 0 {
			t.Errorf("compose service %s sets %v, which %s never reads", svc.Name, loaded.Unread, svc.Name)
		}
		facts[svc.Name] = loaded.Facts
	}

	// The two consumers must agree on everything they share.
	rm, or := p.Services["reefer-manager"].Env(), p.Services["order-retry"].Env()
	for _, k := range []string{"KAFKA_BROKERS", "DATABASE_URL", "INVENTORY_URL", "ORDERS_TOPIC", "CONTAINERS_TOPIC", "RETRY_TOPIC", "DLQ_TOPIC",
		"RETRY_MAX_ATTEMPTS", "RETRY_BASE_DELAY", "RETRY_MAX_DELAY", "RETRY_JITTER", "RETRY_JITTER_FRACTION", "REEFER_FLEET_SIZE",
		"MAX_MESSAGE_BYTES", "DLQ_MAX_MESSAGE_BYTES"} {
		if rm[k] != or[k] {
			t.Errorf("%s differs: reefer-manager %q, order-retry %q", k, rm[k], or[k])
		}
	}
	if d := p.Services["dlq"].Env(); d["DLQ_TOPIC"] != rm["DLQ_TOPIC"] || d["RETRY_TOPIC"] != rm["RETRY_TOPIC"] {
		t.Errorf("dlq reads %s and redrives to %s; the services use %s and %s", d["DLQ_TOPIC"], d["RETRY_TOPIC"], rm["DLQ_TOPIC"], rm["RETRY_TOPIC"])
	}

	// The inventory URL names the mock's service and port.
	u, err := url.Parse(rm["INVENTORY_URL"])
	if err != nil {
		t.Fatalf("INVENTORY_URL: %v", err)
	}
	if want := net.JoinHostPort("container-inventory-mock", strconv.Itoa(port(t, facts["container-inventory-mock"].HTTPAddr))); u.Host != want {
		t.Errorf("INVENTORY_URL %s: want host %s", u, want)
	}

	// The database URL names the postgres service and its credentials.
	db, err := url.Parse(rm["DATABASE_URL"])
	if err != nil {
		t.Fatalf("DATABASE_URL: %v", err)
	}
	pg := p.Services["postgres"].Env()
	password, _ := db.User.Password()
	got := fmt.Sprintf("%s %s %s %s", db.Hostname(), db.User.Username(), password, strings.TrimPrefix(db.Path, "/"))
	if want := fmt.Sprintf("postgres %s %s %s", pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"]); got != want {
		t.Errorf("DATABASE_URL %s: host, user, password, database %q; the postgres service has %q", db.Redacted(), got, want)
	}
}

// broker is a Kafka node of the compose file.
type broker struct {
	service  string
	id       string
	roles    []string
	internal string // the advertised host:port of the INTERNAL listener
}

// checkComposeKafka checks that the active brokers form one cluster and
// that every client points at it, with a replication factor it can hold.
func checkComposeKafka(t *testing.T, p compose.Project) {
	var (
		brokers  []broker
		clusters = map[string]bool{}
	)
	for _, name := range p.Active() {
		env := p.Services[name].Env()
		if env["KAFKA_PROCESS_ROLES"] == "" {
			continue
		}
		b := broker{service: name, id: env["KAFKA_NODE_ID"], roles: strings.Split(env["KAFKA_PROCESS_ROLES"], ",")}
		for _, l := range strings.Split(env["KAFKA_ADVERTISED_LISTENERS"], ",") {
			if rest, ok := strings.CutPrefix(l, "INTERNAL://"); ok {
				b.internal = rest
			}
		}
		if host, _, _ := net.SplitHostPort(b.internal); host != name || p.Services[name].Hostname != name {
			t.Errorf("%s advertises INTERNAL://%s with hostname %q: other containers reach it as %s", name, b.internal, p.Services[name].Hostname, name)
		}
		if id, err := base64.RawURLEncoding.DecodeString(env["CLUSTER_ID"]); err != nil || len(id) != 16 {
			t.Errorf("%s: CLUSTER_ID %q is not a Kafka cluster id (16 bytes, base64url without padding)", name, env["CLUSTER_ID"])
		}
		clusters[env["CLUSTER_ID"]] = true
		if slices.ContainsFunc(brokers, func(o broker) bool { return o.id == b.id }) {
			t.Errorf("%s: KAFKA_NODE_ID %s is used twice", name, b.id)
		}
		voters := env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
		for _, v := range strings.Split(voters, ",") {
			id, addr, _ := strings.Cut(v, "@")
			host, _, _ := net.SplitHostPort(addr)
			peer := p.Services[host].Env()
			if !slices.Contains(p.Active(), host) || peer["KAFKA_NODE_ID"] != id || !strings.Contains(peer["KAFKA_PROCESS_ROLES"], "controller") {
				t.Errorf("%s: controller quorum voter %s is not an active controller with that node id", name, v)
			}
		}
		brokers = append(brokers, b)
	}
	if len(clusters) != 1 {
		t.Errorf("the brokers have %d different CLUSTER_IDs, want one cluster", len(clusters))
	}
	var internals []string
	count := 0
	for _, b := range brokers {
		if slices.Contains(b.roles, "broker") {
			count++
			internals = append(internals, b.internal)
		}
	}

	for _, name := range p.Active() {
		env := p.Services[name].Env()
		for _, k := range []string{"KAFKA_BROKERS", "BOOTSTRAP_SERVERS", "KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"} {
			for _, addr := range strings.Split(env[k], ",") {
				if addr != "" && !slices.Contains(internals, addr) {
					t.Errorf("%s: %s names %s, which is not the INTERNAL listener of an active broker %v", name, k, addr, internals)
				}
			}
		}
		for _, k := range []string{"KAFKA_DEFAULT_REPLICATION_FACTOR", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "REPLICATION_FACTOR"} {
			if v, ok := env[k]; ok {
				if n, err := strconv.Atoi(v); err != nil || n < 1 || n > count {
					t.Errorf("%s: %s=%s with %d broker(s)", name, k, v, count)
				}
			}
		}
	}

	init := p.Services["topic-init"].Env()
	checkTopics(t, init["TOPICS"])
	checkMessageLimits(t, init["TOPICS"], p.Services["reefer-manager"].Env())
	wantRF := "1"
	if slices.Contains(p.Profiles, "cluster") {
		wantRF = "3" // composeEnv, as make up sets it
	}
	if init["REPLICATION_FACTOR"] != wantRF {
		t.Errorf("topic-init: REPLICATION_FACTOR=%s, want %s", init["REPLICATION_FACTOR"], wantRF)
	}
	mounted := slices.ContainsFunc(p.Services["topic-init"].Volumes, func(v compose.Volume) bool {
		return v.Source == repo(t, "deployments", "k8s", "components", "topic-init", "topic-init.sh") && slices.Contains(p.Services["topic-init"].Entrypoint, v.Target)
	})
	if !mounted {
		t.Errorf("topic-init does not run the mounted deployments/k8s/components/topic-init/topic-init.sh: entrypoint %v, volumes %v",
			p.Services["topic-init"].Entrypoint, p.Services["topic-init"].Volumes)
	}
}
