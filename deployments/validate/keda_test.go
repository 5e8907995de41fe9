package validate

import (
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/reeferdlq/reefer-dlq/deployments/validate/kube"
	"github.com/reeferdlq/reefer-dlq/deployments/validate/services"
)

// checkScaledObject: the consumer d is scaled by one KEDA ScaledObject on
// its own group's lag on the topic it consumes, at the brokers it uses,
// capped at that topic's partitions, with credentials that exist.
func checkScaledObject(t *testing.T, objs []kube.Object, d *appsv1.Deployment, env map[string]string, facts services.Facts, partitions int) {
	var found []*kube.ScaledObject
	for _, so := range kube.All[*kube.ScaledObject](objs) {
		if so.Spec.ScaleTargetRef.Name == d.Name {
			found = append(found, so)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d ScaledObjects scale %s, want 1", len(found), d.Name)
	}
	so := found[0]
	if mx := so.Spec.MaxReplicaCount; mx == nil || *mx > int32(partitions) {
		t.Errorf("ScaledObject/%s maxReplicaCount %s: %s has %d partitions, so at most %d replicas get work", so.Name, deref(mx), facts.Consumes, partitions, partitions)
	}
	if mn := so.Spec.MinReplicaCount; mn == nil || *mn < 1 {
		t.Errorf("ScaledObject/%s minReplicaCount %s: want at least 1 (a consumer at zero never sees its lag fall)", so.Name, deref(mn))
	}
	if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "kafka" {
		t.Fatalf("ScaledObject/%s: want one kafka trigger, got %+v", so.Name, so.Spec.Triggers)
	}
	tr := so.Spec.Triggers[0]
	m := tr.Metadata
	for key, want := range map[string]string{
		"bootstrapServers": env["KAFKA_BROKERS"], "consumerGroup": facts.Group, "topic": facts.Consumes, "allowIdleConsumers": "false",
	} {
		if m[key] != want {
			t.Errorf("ScaledObject/%s: %s=%q, want %q (from %s's configuration)", so.Name, key, m[key], want, d.Name)
		}
	}
	if n, err := strconv.Atoi(m["lagThreshold"]); err != nil || n < 1 {
		t.Errorf("ScaledObject/%s: lagThreshold %q: want a whole number of records >= 1", so.Name, m["lagThreshold"])
	}
	if tr.AuthenticationRef == nil {
		t.Fatalf("ScaledObject/%s: no authenticationRef: the brokers need TLS and SASL", so.Name)
	}
	ta, ok := kube.Find[*kube.TriggerAuthentication](objs, tr.AuthenticationRef.Name)
	if !ok {
		t.Fatalf("ScaledObject/%s: TriggerAuthentication %s is not rendered", so.Name, tr.AuthenticationRef.Name)
	}
	params := map[string]string{}
	for _, ref := range ta.Spec.SecretTargetRef {
		params[ref.Parameter] = ref.Name + "/" + ref.Key
		if s, ok := kube.Find[*corev1.Secret](objs, ref.Name); ok {
			_, inData := s.Data[ref.Key]
			_, inString := s.StringData[ref.Key]
			if !inData && !inString {
				t.Errorf("TriggerAuthentication/%s: Secret %s has no key %s", ta.Name, ref.Name, ref.Key)
			}
			continue
		}
		if _, user := kube.Find[*kube.KafkaUser](objs, ref.Name); user && ref.Key == "password" {
			continue // Strimzi's user operator creates it
		}
		if ref.Name == "my-cluster-cluster-ca-cert" && ref.Key == "ca.crt" {
			continue // the cluster CA the services mount too
		}
		t.Errorf("TriggerAuthentication/%s: Secret %s (key %s) is neither rendered nor made by Strimzi", ta.Name, ref.Name, ref.Key)
	}
	for _, p := range []string{"sasl", "username", "password", "tls", "ca"} {
		if params[p] == "" {
			t.Errorf("TriggerAuthentication/%s: no %s parameter", ta.Name, p)
		}
	}
}

// kedaUsers returns, per KafkaUser KEDA logs in as, the topics and groups
// whose lag it reads: it needs Describe on exactly those.
func kedaUsers(t *testing.T, objs []kube.Object) map[string][]acl {
	out := map[string][]acl{}
	for _, so := range kube.All[*kube.ScaledObject](objs) {
		for _, tr := range so.Spec.Triggers {
			if tr.AuthenticationRef == nil {
				continue
			}
			ta, ok := kube.Find[*kube.TriggerAuthentication](objs, tr.AuthenticationRef.Name)
			if !ok {
				continue // reported by checkScaledObject
			}
			for _, ref := range ta.Spec.SecretTargetRef {
				if ref.Parameter != "username" {
					continue
				}
				s, ok := kube.Find[*corev1.Secret](objs, ref.Name)
				if !ok {
					t.Errorf("TriggerAuthentication/%s: the username Secret %s is not rendered", ta.Name, ref.Name)
					continue
				}
				user := s.StringData[ref.Key]
				if user == "" {
					user = string(s.Data[ref.Key])
				}
				out[user] = append(out[user], acl{"topic", tr.Metadata["topic"], "Describe"}, acl{"group", tr.Metadata["consumerGroup"], "Describe"})
			}
		}
	}
	return out
}

func deref(p *int32) string {
	if p == nil {
		return "unset"
	}
	return strconv.Itoa(int(*p))
}
