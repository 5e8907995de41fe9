package kube

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// KEDA's Go API module pulls in most of a controller's dependencies; the
// fields components/keda uses are declared here, after KEDA's
// keda.sh/v1alpha1 reference, and decoded strictly like every other kind.
var kedaV1alpha1 = schema.GroupVersion{Group: "keda.sh", Version: "v1alpha1"}

// ScaledObject scales a Deployment on external metrics (here Kafka lag).
type ScaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			Name       string `json:"name"`
			Kind       string `json:"kind,omitempty"`
			APIVersion string `json:"apiVersion,omitempty"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int32         `json:"minReplicaCount,omitempty"`
		MaxReplicaCount *int32         `json:"maxReplicaCount,omitempty"`
		PollingInterval *int32         `json:"pollingInterval,omitempty"`
		CooldownPeriod  *int32         `json:"cooldownPeriod,omitempty"`
		Triggers        []ScaleTrigger `json:"triggers"`
	} `json:"spec"`
}

// ScaleTrigger is one scaler and its settings.
type ScaleTrigger struct {
	Type              string            `json:"type"`
	Metadata          map[string]string `json:"metadata"`
	AuthenticationRef *struct {
		Name string `json:"name"`
	} `json:"authenticationRef,omitempty"`
}

// TriggerAuthentication gives a scaler its credentials from Secrets.
type TriggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretTargetRef []struct {
			Parameter string `json:"parameter"`
			Name      string `json:"name"`
			Key       string `json:"key"`
		} `json:"secretTargetRef"`
	} `json:"spec"`
}
