package validate

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/reeferdlq/reefer-dlq/deployments/validate/kube"
	"github.com/reeferdlq/reefer-dlq/deployments/validate/services"
)

// overlay is what each Kustomize overlay must render.
type overlay struct {
	name      string
	namespace string
	// deployments are the services it runs.
	deployments []string
	// external are the Secrets it expects in the cluster, with stand-in
	// values for the services' configuration check.
	external map[string]map[string]string
	// topicInit: the overlay creates the topics with a Job, with this
	// replication factor.
	topicInit string
	// monitor: scraped through a ServiceMonitor instead of annotations.
	monitor bool
	// imageTag every image of the suite must carry.
	imageTag string
	// strimzi: topics and users are Strimzi resources (strimzi_test.go).
	strimzi bool
	// keda: KEDA ScaledObjects scale the consumers instead of HPAs.
	keda bool
}

func overlays(t *testing.T) []overlay {
	all := []overlay{
		{
			name: "dev", namespace: "reefer-dlq-dev",
			deployments: []string{"container-inventory-mock", "order-retry", "reefer-manager"},
			topicInit:   "1",
			imageTag:    ":dev",
		},
		{
			name: "prod", namespace: "reefer-dlq",
			deployments: []string{"order-retry", "reefer-manager"},
			external: map[string]map[string]string{
				"reefer-dlq-database":        {"DATABASE_URL": "postgres://reefer:secret@postgres.example.internal:5432/reefer?sslmode=verify-full"},
				"reefer-dlq":                 {"password": "secret"},
				"my-cluster-cluster-ca-cert": {"ca.crt": caPEM(t)},
			},
			monitor:  true,
			imageTag: ":0.1.0",
		},
		{
			// prod on Strimzi: one KafkaUser (and Secret) per program.
			name: "strimzi", namespace: "reefer-dlq",
			deployments: []string{"dlq-watch", "order-retry", "reefer-manager"},
			external: map[string]map[string]string{
				"reefer-dlq-database":        {"DATABASE_URL": "postgres://reefer:secret@postgres.example.internal:5432/reefer?sslmode=verify-full"},
				"reefer-manager":             {"password": "secret"},
				"order-retry":                {"password": "secret"},
				"dlq-watch":                  {"password": "secret"},
				"my-cluster-cluster-ca-cert": {"ca.crt": caPEM(t)},
			},
			monitor:  true,
			imageTag: ":0.1.0",
			strimzi:  true,
		},
	}
	// strimzi with components/keda: the same, scaled on lag by KEDA.
	keda := all[len(all)-1]
	keda.name, keda.keda = "strimzi-keda", true
	return append(all, keda)
}

func TestKustomizeOverlaysRenderStrictlyTypedAndConsistent(t *testing.T) {
	for _, o := range overlays(t) {
		t.Run(o.name, func(t *testing.T) {
			objs, err := kube.Render(repo(t, "deployments", "k8s", "overlays", o.name))
			if err != nil {
				t.Fatal(err)
			}
			external := kube.External{}
			for name, keys := range o.external {
				for k := range keys {
					external[name] = append(external[name], k)
				}
			}
			if err := kube.Check(objs, external); err != nil {
				t.Error(err)
			}
			checkNamespace(t, o, objs)

			var names []string
			for _, d := range kube.All[*appsv1.Deployment](objs) {
				names = append(names, d.Name)
				t.Run(d.Name, func(t *testing.T) { checkDeployment(t, o, objs, d) })
			}
			slices.Sort(names)
			if diff := cmp.Diff(o.deployments, names); diff != "" {
				t.Errorf("Deployments (-want +got):\n%s", diff)
			}

			job, ok := kube.Find[*batchv1.Job](objs, "topic-init")
			if ok != (o.topicInit != "") {
				t.Errorf("topic-init Job rendered: %t, want %t", ok, o.topicInit != "")
			}
			if ok {
				checkTopicInitJob(t, o, objs, job)
			}
			checkScraping(t, o, objs)
			if o.strimzi {
				checkStrimzi(t, o, objs)
			}
		})
	}
}

func checkNamespace(t *testing.T, o overlay, objs []kube.Object) {
	if _, ok := kube.Find[*corev1.Namespace](objs, o.namespace); !ok {
		t.Errorf("no Namespace %s: kubectl apply -k would fail on a fresh cluster", o.namespace)
	}
	for _, obj := range objs {
		if obj.GVK.Kind != "Namespace" && obj.Namespace != o.namespace {
			t.Errorf("%s is in namespace %q, want %s", obj, obj.Namespace, o.namespace)
		}
	}
}

// checkDeployment checks one service's Deployment against the service's
// own code: the variables it reads and accepts, its ports and probes, and
// what the group's partitions allow.
func checkDeployment(t *testing.T, o overlay, objs []kube.Object, d *appsv1.Deployment) {
	program := d.Spec.Template.Labels["app.kubernetes.io/name"]
	svc, ok := services.Lookup(program)
	if !ok {
		t.Fatalf("Deployment %s runs %q (label app.kubernetes.io/name), no program of the suite", d.Name, program)
	}
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 || spec.Containers[0].Name != program {
		t.Fatalf("want one container named %s, got %d", program, len(spec.Containers))
	}
	c := spec.Containers[0]
	if !strings.HasSuffix(c.Image, o.imageTag) {
		t.Errorf("image %s: want tag %s", c.Image, o.imageTag)
	}

	env := containerEnv(t, objs, o, spec, c)
	loaded, err := svc.Load(env)
	if program == "dlq" {
		loaded, err = services.LoadDLQ(c.Args, env)
	}
	if err != nil {
		t.Error(err)
	}
	if len(loaded.Unread) > 0 {
		t.Errorf("sets %v, which %s never reads", loaded.Unread, d.Name)
	}
	if err != nil {
		return // the facts below come from an accepted configuration
	}
	if v, ok := env["GOMEMLIMIT"]; ok && !goMemLimit.MatchString(v) {
		t.Errorf("GOMEMLIMIT=%q is not a size the Go runtime reads", v)
	}

	if loaded.Facts.HTTPAddr == "" {
		checkSingleton(t, objs, d)
		return // a command, not a server: no port, no probes
	}
	httpPort := int32(port(t, loaded.Facts.HTTPAddr))
	named := map[string]int32{}
	for _, p := range c.Ports {
		named[p.Name] = p.ContainerPort
	}
	if named["http"] != httpPort {
		t.Errorf("container port http is %d; HTTP_ADDR %q serves on %d", named["http"], loaded.Facts.HTTPAddr, httpPort)
	}
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{
		{"liveness", c.LivenessProbe, "/healthz"},
		{"readiness", c.ReadinessProbe, loaded.Facts.ReadinessPath},
		{"startup", c.StartupProbe, "/healthz"},
	} {
		if p.probe == nil {
			if p.kind != "startup" {
				t.Errorf("no %s probe", p.kind)
			}
			continue
		}
		g := p.probe.HTTPGet
		if g == nil || g.Path != p.path || named[g.Port.StrVal] != httpPort && g.Port.IntVal != httpPort {
			t.Errorf("%s probe %+v: want GET %s on the HTTP port %d", p.kind, g, p.path, httpPort)
		}
	}

	// The grace period must cover the service's own drain.
	if st, ok := env["SHUTDOWN_TIMEOUT"]; ok {
		shutdown, err := time.ParseDuration(st)
		grace := 30 * time.Second // Kubernetes' default
		if s := spec.TerminationGracePeriodSeconds; s != nil {
			grace = time.Duration(*s) * time.Second
		}
		if err != nil || grace <= shutdown {
			t.Errorf("terminationGracePeriodSeconds %v is not above SHUTDOWN_TIMEOUT %s: the kubelet kills the drain", grace, st)
		}
	}

	if _, ok := kube.Find[*policyv1.PodDisruptionBudget](objs, d.Name); !ok {
		t.Errorf("no PodDisruptionBudget %s", d.Name)
	}
	if loaded.Facts.Group == "" {
		return
	}
	// A consumer: replicas beyond the partitions of its topic sit idle.
	partitions, ok := contractTopics()[loaded.Facts.Consumes]
	if !ok {
		t.Fatalf("%s consumes %q, which is no topic of the contract", d.Name, loaded.Facts.Consumes)
	}
	hpa, hasHPA := kube.Find[*autoscalingv2.HorizontalPodAutoscaler](objs, d.Name)
	if o.keda {
		if hasHPA {
			t.Errorf("HorizontalPodAutoscaler %s next to KEDA's ScaledObject: two autoscalers fight", d.Name)
		}
		checkScaledObject(t, objs, d, env, loaded.Facts, partitions)
		return
	}
	if !hasHPA {
		t.Fatalf("consumer %s has no HorizontalPodAutoscaler", d.Name)
	}
	if hpa.Spec.MaxReplicas > int32(partitions) {
		t.Errorf("HorizontalPodAutoscaler maxReplicas %d: %s has %d partitions, so at most %d replicas of group %s get work",
			hpa.Spec.MaxReplicas, loaded.Facts.Consumes, partitions, partitions, loaded.Facts.Group)
	}
}

// checkSingleton: a program without an HTTP server in a Deployment is dlq
// watch, which must run alone (two would redrive the same letters), also
// during a rollout.
func checkSingleton(t *testing.T, objs []kube.Object, d *appsv1.Deployment) {
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas %v: want exactly 1", d.Spec.Replicas)
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy %q: want Recreate, so that old and new never run together", d.Spec.Strategy.Type)
	}
	for _, h := range kube.All[*autoscalingv2.HorizontalPodAutoscaler](objs) {
		if h.Spec.ScaleTargetRef.Name == d.Name {
			t.Errorf("HorizontalPodAutoscaler/%s scales a Deployment that must run alone", h.Name)
		}
	}
}

// goMemLimit is the form GOMEMLIMIT takes: bytes, optionally with a unit.
var goMemLimit = regexp.MustCompile(`^[0-9]+(B|KiB|MiB|GiB|TiB)?$`)

// containerEnv resolves a container's environment as the kubelet would:
// literal values, ConfigMap and Secret keys (rendered, or the overlay's
// stand-ins for external Secrets) and resource fields. A value that is a
// path into a mounted Secret or ConfigMap is replaced by a temporary file
// with that key's content, so that the service can load it.
func containerEnv(t *testing.T, objs []kube.Object, o overlay, spec corev1.PodSpec, c corev1.Container) map[string]string {
	t.Helper()
	lookup := func(kind, name, key string) (string, bool) {
		if kind == "ConfigMap" {
			cm, ok := kube.Find[*corev1.ConfigMap](objs, name)
			if !ok {
				return "", false
			}
			v, ok := cm.Data[key]
			return v, ok
		}
		if s, ok := kube.Find[*corev1.Secret](objs, name); ok {
			v, ok := s.Data[key]
			return string(v), ok
		}
		v, ok := o.external[name][key]
		return v, ok
	}
	keys := func(kind, name string) []string {
		if cm, ok := kube.Find[*corev1.ConfigMap](objs, name); ok && kind == "ConfigMap" {
			return slices.Collect(mapKeys(cm.Data))
		}
		if s, ok := kube.Find[*corev1.Secret](objs, name); ok && kind == "Secret" {
			return slices.Collect(mapKeys(s.Data))
		}
		return slices.Collect(mapKeys(o.external[name]))
	}

	env := map[string]string{}
	for _, f := range c.EnvFrom {
		kind, name := "ConfigMap", ""
		if f.ConfigMapRef != nil {
			name = f.ConfigMapRef.Name
		} else {
			kind, name = "Secret", f.SecretRef.Name
		}
		for _, k := range keys(kind, name) {
			v, _ := lookup(kind, name, k)
			env[f.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		switch vf := e.ValueFrom; {
		case vf == nil:
			env[e.Name] = e.Value
		case vf.ConfigMapKeyRef != nil:
			env[e.Name], _ = lookup("ConfigMap", vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Key)
		case vf.SecretKeyRef != nil:
			env[e.Name], _ = lookup("Secret", vf.SecretKeyRef.Name, vf.SecretKeyRef.Key)
		case vf.ResourceFieldRef != nil:
			r := vf.ResourceFieldRef
			res, isLimit := strings.CutPrefix(r.Resource, "limits.")
			q, ok := c.Resources.Limits[corev1.ResourceName(res)]
			if !isLimit || !ok {
				t.Errorf("%s reads %s, which the container does not set: it would get the node's capacity", e.Name, r.Resource)
				continue
			}
			divisor := int64(1)
			if !r.Divisor.IsZero() {
				divisor = r.Divisor.Value()
			}
			env[e.Name] = strconv.FormatInt(q.Value()/divisor, 10)
		default:
			t.Errorf("%s: a value source this test does not resolve: %+v", e.Name, vf)
		}
	}

	for k, v := range env {
		if !strings.HasPrefix(v, "/") {
			continue
		}
		for _, m := range c.VolumeMounts {
			rel, ok := strings.CutPrefix(v, m.MountPath+"/")
			if !ok {
				continue
			}
			i := slices.IndexFunc(spec.Volumes, func(vol corev1.Volume) bool { return vol.Name == m.Name })
			if i < 0 {
				t.Errorf("%s=%s: volume %s is not declared", k, v, m.Name)
				continue
			}
			kind, name, items := "Secret", "", []corev1.KeyToPath(nil)
			switch vol := spec.Volumes[i]; {
			case vol.Secret != nil:
				name, items = vol.Secret.SecretName, vol.Secret.Items
			case vol.ConfigMap != nil:
				kind, name, items = "ConfigMap", vol.ConfigMap.Name, vol.ConfigMap.Items
			default:
				t.Errorf("%s=%s: volume %s is neither a Secret nor a ConfigMap", k, v, m.Name)
				continue
			}
			key := rel
			if len(items) > 0 {
				j := slices.IndexFunc(items, func(it corev1.KeyToPath) bool { return path.Clean(it.Path) == rel })
				if j < 0 {
					t.Errorf("%s=%s: %s/%s mounted at %s projects no file %s", k, v, kind, name, m.MountPath, rel)
					continue
				}
				key = items[j].Key
			}
			content, ok := lookup(kind, name, key)
			if !ok {
				t.Errorf("%s=%s: %s/%s has no key %s", k, v, kind, name, key)
				continue
			}
			file := filepath.Join(t.TempDir(), filepath.Base(rel))
			if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			env[k] = file
		}
	}
	return env
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func checkTopicInitJob(t *testing.T, o overlay, objs []kube.Object, job *batchv1.Job) {
	spec := job.Spec.Template.Spec
	c := spec.Containers[0]
	env := containerEnv(t, objs, o, spec, c)
	checkTopics(t, env["TOPICS"])
	checkMessageLimits(t, env["TOPICS"], readEnvFile(t, repo(t, "deployments", "k8s", "base", "pipeline.env")))
	if env["REPLICATION_FACTOR"] != o.topicInit {
		t.Errorf("topic-init: REPLICATION_FACTOR=%s, want %s", env["REPLICATION_FACTOR"], o.topicInit)
	}
	pipeline := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "BOOTSTRAP_SERVERS" && e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil && e.ValueFrom.ConfigMapKeyRef.Key == "KAFKA_BROKERS"
	})
	if pipeline < 0 {
		t.Error("topic-init: BOOTSTRAP_SERVERS does not come from the services' KAFKA_BROKERS: the topics could land on another cluster")
	}
	script, err := os.ReadFile(repo(t, "deployments", "k8s", "components", "topic-init", "topic-init.sh"))
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(c.Command, func(arg string) bool { return strings.HasSuffix(arg, "/topic-init.sh") })
	if i < 0 {
		t.Fatalf("topic-init: command %v does not run topic-init.sh", c.Command)
	}
	for _, m := range c.VolumeMounts {
		if m.MountPath != path.Dir(c.Command[i]) {
			continue
		}
		vol := spec.Volumes[slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })]
		cm, ok := kube.Find[*corev1.ConfigMap](objs, vol.ConfigMap.Name)
		if !ok || cm.Data["topic-init.sh"] != string(script) {
			t.Errorf("topic-init: the mounted ConfigMap %s does not hold topic-init.sh", vol.ConfigMap.Name)
		}
		return
	}
	t.Errorf("topic-init: nothing is mounted at %s", path.Dir(c.Command[i]))
}

// checkScraping: every service is scraped once, on its HTTP port.
func checkScraping(t *testing.T, o overlay, objs []kube.Object) {
	monitors := kube.All[*monitoringv1.ServiceMonitor](objs)
	if o.monitor != (len(monitors) > 0) {
		t.Errorf("ServiceMonitors rendered: %d, want some: %t", len(monitors), o.monitor)
	}
	for _, d := range kube.All[*appsv1.Deployment](objs) {
		a := d.Spec.Template.Annotations
		c := d.Spec.Template.Spec.Containers[0]
		i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "http" })
		if i < 0 {
			continue // reported by checkDeployment
		}
		if o.monitor {
			if a["prometheus.io/scrape"] != "" {
				t.Errorf("Deployment/%s: scrape annotations next to a ServiceMonitor: scraped twice where both are configured", d.Name)
			}
			continue
		}
		if a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" || a["prometheus.io/port"] != strconv.Itoa(int(c.Ports[i].ContainerPort)) {
			t.Errorf("Deployment/%s: scrape annotations %v: want scrape true, path /metrics, port %d", d.Name, a, c.Ports[i].ContainerPort)
		}
	}
	for _, m := range monitors {
		for _, e := range m.Spec.Endpoints {
			if e.Path != "/metrics" {
				t.Errorf("ServiceMonitor/%s: endpoint path %q, want /metrics", m.Name, e.Path)
			}
		}
	}
}

// caPEM returns a self-signed CA certificate, PEM-encoded: the stand-in of
// the Strimzi cluster CA that the services load at start.
func caPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cluster-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
