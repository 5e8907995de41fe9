package kube

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

func TestDecodeIsStrict(t *testing.T) {
	cases := []struct {
		name, json, wantErr string
	}{
		{
			name: "a valid Deployment",
			json: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"i"}]}}}}`,
		},
		{
			name:    "an unknown field",
			json:    `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replica":2}}`,
			wantErr: `unknown field "spec.replica"`,
		},
		{
			name:    "a field spelled with another case",
			json:    `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"name":"c","readinessprobe":{}}]}}}}`,
			wantErr: `unknown field "spec.template.spec.containers[0].readinessprobe"`,
		},
		{
			name:    "a duplicate field",
			json:    `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"A":"1"},"data":{"B":"2"}}`,
			wantErr: `duplicate field "data"`,
		},
		{
			name:    "a number where a string belongs",
			json:    `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"A":1}}`,
			wantErr: "cannot unmarshal number",
		},
		{
			name:    "a kind without a Go type",
			json:    `{"apiVersion":"kafka.strimzi.io/v1beta2","kind":"KafkaConnect","metadata":{"name":"c"}}`,
			wantErr: `no Go type for apiVersion "kafka.strimzi.io/v1beta2" kind "KafkaConnect"`,
		},
		{
			name:    "a KafkaUser with a misspelled field",
			json:    `{"apiVersion":"kafka.strimzi.io/v1beta2","kind":"KafkaUser","metadata":{"name":"u"},"spec":{"authentication":{"type":"scram-sha-512"},"authorization":{"type":"simple","acl":[]}}}`,
			wantErr: `unknown field "spec.authorization.acl"`,
		},
		{
			name: "a KafkaTopic",
			json: `{"apiVersion":"kafka.strimzi.io/v1beta2","kind":"KafkaTopic","metadata":{"name":"orders"},"spec":{"partitions":6,"replicas":3,"config":{"retention.ms":1}}}`,
		},
		{
			name:    "a kind of another API version",
			json:    `{"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler","metadata":{"name":"h"}}`,
			wantErr: `no Go type for apiVersion "autoscaling/v1"`,
		},
		{
			name: "a ServiceMonitor",
			json: `{"apiVersion":"monitoring.coreos.com/v1","kind":"ServiceMonitor","metadata":{"name":"m"},"spec":{"selector":{},"endpoints":[{"port":"http"}]}}`,
		},
		{
			name:    "a ServiceMonitor with a misspelled field",
			json:    `{"apiVersion":"monitoring.coreos.com/v1","kind":"ServiceMonitor","metadata":{"name":"m"},"spec":{"selector":{},"endpoints":[{"targetport":"http"}]}}`,
			wantErr: `unknown field "spec.endpoints[0].targetport"`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj, err := Decode([]byte(tc.json))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if obj.Typed == nil || obj.Name == "" {
					t.Fatalf("Decode returned %+v", obj)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Decode error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// render writes a kustomization of the given resources in a temporary
// directory and renders it.
func render(t *testing.T, resources string) ([]Object, error) {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [objects.yaml]\n",
		"objects.yaml":       resources,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Render(dir)
}

func TestRenderDecodesEveryObject(t *testing.T) {
	objs, err := render(t, deployment("web", "replicas: 1")+"---\n"+`
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("rendered %d objects, want 2", len(objs))
	}
	d, ok := Find[*appsv1.Deployment](objs, "web")
	if !ok || *d.Spec.Replicas != 1 {
		t.Fatalf("Deployment web not decoded: %+v", objs)
	}
}

func TestRenderReportsEveryBadObject(t *testing.T) {
	_, err := render(t, `
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
date: {}
---
apiVersion: v1
kind: Secret
metadata: {name: b}
strngData: {}
`)
	for _, want := range []string{`ConfigMap/a: unknown field "date"`, `Secret/b: unknown field "strngData"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Render error %v, want one containing %q", err, want)
		}
	}
}

// deployment returns a Deployment named name, labelled app=name, that
// passes Check, with extra lines under spec.
func deployment(name, extraSpec string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ` + name + `}
spec:
  ` + extraSpec + `
  selector: {matchLabels: {app: ` + name + `}}
  template:
    metadata: {labels: {app: ` + name + `}}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: main
          image: example/` + name + `
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /readyz, port: http}}
          resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 32Mi}}
          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
`
}

func TestCheckFindsWhatAppliesButDoesNotWork(t *testing.T) {
	cases := []struct {
		name, objects string
		external      External
		wantErr       string
	}{
		{
			name:    "a consistent set",
			objects: deployment("web", "replicas: 1") + "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}\n",
		},
		{
			name:    "a Service that selects no pod",
			objects: deployment("web", "replicas: 1") + "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: wbe}, ports: [{port: 80}]}\n",
			wantErr: "Service/web: selector map[app:wbe] matches no pod template",
		},
		{
			name:    "a Service port that the pods lack",
			objects: deployment("web", "replicas: 1") + "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: 80, targetPort: metrics}]}\n",
			wantErr: `targetPort "metrics" is no container port of Deployment/web`,
		},
		{
			name:    "an autoscaled Deployment with replicas",
			objects: deployment("web", "replicas: 2") + "---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\nspec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}, maxReplicas: 3}\n",
			wantErr: "Deployment/web: sets replicas 2 although HorizontalPodAutoscaler/web owns the count",
		},
		{
			name:    "an autoscaler of a missing Deployment",
			objects: deployment("web", "replicas: 1") + "---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: api}\nspec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}, maxReplicas: 3}\n",
			wantErr: "HorizontalPodAutoscaler/api: scales apps/v1 Deployment/api, which is not rendered",
		},
		{
			name:    "a PodDisruptionBudget that selects nothing",
			objects: deployment("web", "replicas: 1") + "---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec: {maxUnavailable: 1, selector: {matchLabels: {app: api}}}\n",
			wantErr: "PodDisruptionBudget/web: selector",
		},
		{
			name: "a Secret that is neither rendered nor external",
			objects: strings.Replace(deployment("web", "replicas: 1"), "          ports:",
				"          envFrom: [{secretRef: {name: db}}]\n          ports:", 1),
			wantErr: "Deployment/web: uses Secret/db, which is neither rendered nor listed as external",
		},
		{
			name: "a Secret key that does not exist",
			objects: strings.Replace(deployment("web", "replicas: 1"), "          ports:",
				"          env: [{name: DB, valueFrom: {secretKeyRef: {name: db, key: URL}}}]\n          ports:", 1),
			external: External{"db": {"DATABASE_URL"}},
			wantErr:  `Deployment/web: uses key "URL" of Secret/db, which has no such key`,
		},
		{
			name:     "an external Secret nobody uses",
			objects:  deployment("web", "replicas: 1"),
			external: External{"db": {"DATABASE_URL"}},
			wantErr:  "Secret/db: listed as external but no pod uses it",
		},
		{
			name:    "a container that may escalate privileges",
			objects: strings.Replace(deployment("web", "replicas: 1"), "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", 1),
			wantErr: "allowPrivilegeEscalation is not false",
		},
		{
			name:    "a probe on an undeclared port",
			objects: strings.Replace(deployment("web", "replicas: 1"), "port: http}}", "port: admin}}", 1),
			wantErr: `readiness probe port "admin" is not a port of the container`,
		},
		{
			name:    "a container without a memory limit",
			objects: strings.Replace(deployment("web", "replicas: 1"), ", limits: {memory: 32Mi}", "", 1),
			wantErr: "set resources.requests cpu and memory and resources.limits memory",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := render(t, tc.objects)
			if err != nil {
				t.Fatal(err)
			}
			err = Check(objs, tc.external)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Check error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
