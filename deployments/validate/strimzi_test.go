package validate

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/reeferdlq/reefer-dlq/deployments/validate/kube"
	"github.com/reeferdlq/reefer-dlq/deployments/validate/services"
)

// asyncTopic is one channel of docs/asyncapi.yaml with its kafka binding.
type asyncTopic struct {
	Address  string `yaml:"address"`
	Bindings struct {
		Kafka struct {
			Partitions         int32          `yaml:"partitions"`
			TopicConfiguration map[string]any `yaml:"topicConfiguration"`
		} `yaml:"kafka"`
	} `yaml:"bindings"`
}

type asyncDoc struct {
	Channels   map[string]asyncTopic `yaml:"channels"`
	Operations map[string]struct {
		Action  string `yaml:"action"`
		Channel struct {
			Ref string `yaml:"$ref"`
		} `yaml:"channel"`
	} `yaml:"operations"`
}

// readAsyncAPI reads the published contract, the source of the topics'
// partitions and configs (tests/integration/contract validates the file
// itself against the AsyncAPI 3.0.0 schema).
func readAsyncAPI(t *testing.T) asyncDoc {
	t.Helper()
	raw, err := os.ReadFile(repo(t, "docs", "asyncapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc asyncDoc
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/asyncapi.yaml: %v", err)
	}
	return doc
}

// kafkaConfig renders a topic config value as Kafka reads it.
func kafkaConfig(v any) string {
	if list, ok := v.([]any); ok {
		var parts []string
		for _, p := range list {
			parts = append(parts, fmt.Sprint(p))
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

func checkStrimzi(t *testing.T, o overlay, objs []kube.Object) {
	t.Run("KafkaTopics", func(t *testing.T) { checkKafkaTopics(t, objs) })
	t.Run("KafkaUsers", func(t *testing.T) { checkKafkaUsers(t, o, objs) })
	t.Run("NetworkPolicies", func(t *testing.T) { checkNetworkPolicies(t, o, objs) })
}

// checkKafkaTopics: one KafkaTopic per channel of the contract, with its
// partitions and topic configs; replication that survives a broker; the
// dead-letter topic able to take any record the orders topic took, plus
// the dead-letter headers.
func checkKafkaTopics(t *testing.T, objs []kube.Object) {
	doc := readAsyncAPI(t)
	topics := map[string]*kube.KafkaTopic{}
	for _, kt := range kube.All[*kube.KafkaTopic](objs) {
		topics[kt.Topic()] = kt
		if kt.Labels["strimzi.io/cluster"] == "" {
			t.Errorf("KafkaTopic/%s: no strimzi.io/cluster label: no topic operator picks it up", kt.Name)
		}
		if kt.Spec.Replicas < 3 || kafkaConfig(kt.Spec.Config["min.insync.replicas"]) != "2" {
			t.Errorf("KafkaTopic/%s: replicas %d, min.insync.replicas %v: want 3 and 2 (acks=all survives one broker)",
				kt.Name, kt.Spec.Replicas, kt.Spec.Config["min.insync.replicas"])
		}
	}
	var want []string
	for id, ch := range doc.Channels {
		want = append(want, ch.Address)
		kt, ok := topics[ch.Address]
		if !ok {
			t.Errorf("channel %s: no KafkaTopic %s", id, ch.Address)
			continue
		}
		b := ch.Bindings.Kafka
		if kt.Spec.Partitions != b.Partitions {
			t.Errorf("KafkaTopic/%s: %d partitions, the contract says %d", kt.Name, kt.Spec.Partitions, b.Partitions)
		}
		for k, v := range b.TopicConfiguration {
			if got := kafkaConfig(kt.Spec.Config[k]); got != kafkaConfig(v) {
				t.Errorf("KafkaTopic/%s: %s=%s, the contract says %s", kt.Name, k, got, kafkaConfig(v))
			}
		}
	}
	got := slices.Sorted(func(yield func(string) bool) {
		for name := range topics {
			if !yield(name) {
				return
			}
		}
	})
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("KafkaTopics (-contract +rendered):\n%s", diff)
	}

	size := func(name string) int64 {
		kt, ok := topics[name]
		if !ok {
			return 0
		}
		n, _ := strconv.ParseInt(kafkaConfig(kt.Spec.Config["max.message.bytes"]), 10, 64)
		return n
	}
	// x-error-stack (4 KiB) + x-error-message (1 KiB) + the other headers:
	// 16 KiB is a floor with room to spare.
	const headroom = 16 << 10
	for _, target := range []string{"order-retries", "order-dead-letter"} {
		if size(target) < size("orders")+headroom {
			t.Errorf("%s max.message.bytes %d: want at least the orders topic's %d + %d, or a large order cannot be handed off",
				target, size(target), size("orders"), headroom)
		}
	}
	if kafkaConfig(topics["order-dead-letter.resolutions"].Spec.Config["cleanup.policy"]) != "compact" {
		t.Error("the resolutions topic is not compacted")
	}
}

// kafkaDeployments returns, for each Deployment whose program talks to
// Kafka, its SASL user name and what its configuration makes it do.
func kafkaDeployments(t *testing.T, o overlay, objs []kube.Object) map[string]services.Access {
	out := map[string]services.Access{}
	for _, d := range kube.All[*appsv1.Deployment](objs) {
		program := d.Spec.Template.Labels["app.kubernetes.io/name"]
		svc, ok := services.Lookup(program)
		if !ok {
			t.Fatalf("Deployment %s runs no program of the suite", d.Name)
		}
		c := d.Spec.Template.Spec.Containers[0]
		env := containerEnv(t, objs, o, d.Spec.Template.Spec, c)
		loaded, err := svc.Load(env)
		if program == "dlq" {
			loaded, err = services.LoadDLQ(c.Args, env)
		}
		if err != nil {
			t.Fatal(err)
		}
		user := env["KAFKA_SASL_USERNAME"]
		if user == "" {
			t.Errorf("Deployment/%s: no KAFKA_SASL_USERNAME", d.Name)
			continue
		}
		if _, dup := out[user]; dup {
			t.Errorf("Deployment/%s: SASL user %s is shared: one user per program, so ACLs are per program", d.Name, user)
		}
		out[user] = loaded.Facts.Kafka
	}
	return out
}

// acl is one granted (or needed) permission: "topic orders Read".
type acl struct{ kind, name, op string }

// checkKafkaUsers: each KafkaUser grants exactly what its program's
// configuration says it does on Kafka (services.Facts.Kafka, derived from
// the program's own config defaults and the Deployment's environment), and
// each program logs in as its own user.
func checkKafkaUsers(t *testing.T, o overlay, objs []kube.Object) {
	needs := kafkaDeployments(t, o, objs)
	keda := kedaUsers(t, objs)
	users := kube.All[*kube.KafkaUser](objs)
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
		if u.Spec.Authentication.Type != "scram-sha-512" {
			t.Errorf("KafkaUser/%s: authentication %q, want scram-sha-512 (the services' KAFKA_SASL_MECHANISM)", u.Name, u.Spec.Authentication.Type)
		}
		if u.Spec.Authorization == nil || u.Spec.Authorization.Type != "simple" {
			t.Errorf("KafkaUser/%s: no simple authorization: it could do anything", u.Name)
			continue
		}
		need, ok := needs[u.Name]
		lagReads, isKEDA := keda[u.Name]
		if !ok && !isKEDA {
			t.Errorf("KafkaUser/%s: no Deployment and no KEDA trigger logs in as it", u.Name)
			continue
		}
		var granted []acl
		for _, a := range u.Spec.Authorization.ACLs {
			r := a.Resource
			if (r.PatternType != "" && r.PatternType != "literal") || r.Name == "*" || (a.Type != "" && a.Type != "allow") || (a.Host != "" && a.Host != "*") {
				t.Errorf("KafkaUser/%s: ACL %+v: want literal allow rules on named resources", u.Name, a)
			}
			for _, op := range a.Operations {
				granted = append(granted, acl{r.Type, r.Name, op})
			}
		}
		var want []acl
		for _, tp := range need.Reads {
			want = append(want, acl{"topic", tp, "Read"})
		}
		for _, tp := range need.Writes {
			want = append(want, acl{"topic", tp, "Write"})
		}
		for _, g := range need.Groups {
			want = append(want, acl{"group", g, "Read"})
		}
		want = append(want, lagReads...)
		less := func(a, b acl) int { return strings.Compare(a.kind+a.name+a.op, b.kind+b.name+b.op) }
		slices.SortFunc(granted, less)
		slices.SortFunc(want, less)
		want = slices.Compact(want)
		if diff := cmp.Diff(want, granted, cmp.AllowUnexported(acl{})); diff != "" {
			t.Errorf("KafkaUser/%s ACLs (-needed by its configuration +granted):\n%s", u.Name, diff)
		}
	}
	for user := range needs {
		if !slices.Contains(names, user) {
			t.Errorf("SASL user %s has no KafkaUser", user)
		}
	}
}

// peer is where an egress rule lets a pod go: a namespace, or "ipBlock".
type peer struct {
	to   string
	port string
}

// checkNetworkPolicies: everything is denied unless allowed; each program
// may reach exactly the brokers, the inventory, the database and the
// trace collector its configuration names (plus DNS), and only Prometheus may reach a server.
func checkNetworkPolicies(t *testing.T, o overlay, objs []kube.Object) {
	policies := kube.All[*networkingv1.NetworkPolicy](objs)
	i := slices.IndexFunc(policies, func(p *networkingv1.NetworkPolicy) bool {
		return len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 &&
			len(p.Spec.Ingress) == 0 && len(p.Spec.Egress) == 0 &&
			slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) && slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
	})
	if i < 0 {
		t.Fatal("no default-deny NetworkPolicy (empty pod selector, Ingress and Egress, no rules)")
	}
	for _, d := range kube.All[*appsv1.Deployment](objs) {
		pod := labels.Set(d.Spec.Template.Labels)
		c := d.Spec.Template.Spec.Containers[0]
		env := containerEnv(t, objs, o, d.Spec.Template.Spec, c)

		want := map[peer]bool{{"kube-system", "53/UDP"}: true, {"kube-system", "53/TCP"}: true}
		for _, b := range strings.Split(env["KAFKA_BROKERS"], ",") {
			want[peer{serviceNamespace(t, b), portOf(t, b) + "/TCP"}] = true
		}
		for _, u := range []string{env["INVENTORY_URL"], whenHealthy(c.Args)} {
			if u == "" {
				continue
			}
			pu, err := url.Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			want[peer{serviceNamespace(t, pu.Host), pu.Port() + "/TCP"}] = true
		}
		if otlp := env["OTEL_EXPORTER_OTLP_ENDPOINT"]; otlp != "" {
			pu, err := url.Parse(otlp)
			if err != nil {
				t.Fatal(err)
			}
			want[peer{serviceNamespace(t, pu.Host), pu.Port() + "/TCP"}] = true
		}
		if db := env["DATABASE_URL"]; db != "" {
			pu, err := url.Parse(db)
			if err != nil {
				t.Fatal(err)
			}
			want[peer{"ipBlock", pu.Port() + "/TCP"}] = true
		}

		got := map[peer]bool{}
		var ingress []string
		for _, p := range policies {
			sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
			if err != nil || !sel.Matches(pod) {
				continue
			}
			for _, r := range p.Spec.Egress {
				for _, to := range r.To {
					dest := "ipBlock"
					if to.IPBlock == nil {
						dest = to.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]
					}
					for _, port := range r.Ports {
						got[peer{dest, port.Port.String() + "/" + string(*port.Protocol)}] = true
					}
				}
			}
			for _, r := range p.Spec.Ingress {
				for _, from := range r.From {
					for _, port := range r.Ports {
						ingress = append(ingress, from.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]+":"+port.Port.String())
					}
				}
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Deployment/%s egress (-needed by its configuration +allowed):\n%s", d.Name, diff)
		}
		var wantIngress []string
		if slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "http" }) {
			wantIngress = []string{"monitoring:http"}
		}
		if diff := cmp.Diff(wantIngress, ingress); diff != "" {
			t.Errorf("Deployment/%s ingress (-want +allowed):\n%s", d.Name, diff)
		}
	}
}

// serviceNamespace reads the namespace from a cluster DNS name
// (name.namespace.svc[:port]).
func serviceNamespace(t *testing.T, hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	parts := strings.Split(host, ".")
	if len(parts) < 3 || parts[2] != "svc" {
		t.Errorf("%s is not a Service's cluster name (name.namespace.svc): no NetworkPolicy can name it", host)
		return ""
	}
	return parts[1]
}

func portOf(t *testing.T, hostport string) string {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Errorf("%s: %v", hostport, err)
	}
	return p
}

// whenHealthy returns the --when-healthy URL of dlq's arguments, if any.
func whenHealthy(args []string) string {
	if i := slices.Index(args, "--when-healthy"); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// TestKafkaAccessMatchesTheContract: what services.Facts says each program
// does on Kafka (the ACLs' source) is what docs/asyncapi.yaml says it
// does: the channels of its send and receive operations. dlq's contract
// also covers --to original, which its default (--to retry) does not use.
func TestKafkaAccessMatchesTheContract(t *testing.T) {
	doc := readAsyncAPI(t)
	db := map[string]string{"DATABASE_URL": "postgres://u:p@db:5432/reefer"}
	for _, program := range []string{"reefer-manager", "order-retry", "dlq"} {
		t.Run(program, func(t *testing.T) {
			svc, _ := services.Lookup(program)
			loaded, err := svc.Load(db)
			if program == "dlq" {
				loaded, err = services.LoadDLQ(nil, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			sends, receives := map[string]bool{}, map[string]bool{}
			for id, op := range doc.Operations {
				if !strings.HasPrefix(id, program+".") {
					continue
				}
				ch, ok := doc.Channels[strings.TrimPrefix(op.Channel.Ref, "#/channels/")]
				if !ok {
					t.Fatalf("operation %s: channel %s does not resolve", id, op.Channel.Ref)
				}
				map[string]map[string]bool{"send": sends, "receive": receives}[op.Action][ch.Address] = true
			}
			set := func(list []string) map[string]bool {
				m := map[string]bool{}
				for _, s := range list {
					m[s] = true
				}
				return m
			}
			writes, reads := set(loaded.Facts.Kafka.Writes), set(loaded.Facts.Kafka.Reads)
			if program == "dlq" {
				delete(sends, "orders") // dlq redrive --to original
			}
			if diff := cmp.Diff(sends, writes); diff != "" {
				t.Errorf("topics written (-asyncapi send operations +configuration):\n%s", diff)
			}
			if diff := cmp.Diff(receives, reads); diff != "" {
				t.Errorf("topics read (-asyncapi receive operations +configuration):\n%s", diff)
			}
		})
	}
}
