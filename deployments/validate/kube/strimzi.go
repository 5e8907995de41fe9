package kube

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Strimzi publishes its custom resources as CRDs, not as a Go module, so
// the fields the overlays use are declared here, after Strimzi's
// kafka.strimzi.io/v1beta2 API reference; Decode's strict pass then
// refuses any other field (a misspelt "partition" or "acl" would
// otherwise be silently dropped by the operator's schema).
var strimziV1beta2 = schema.GroupVersion{Group: "kafka.strimzi.io", Version: "v1beta2"}

// KafkaTopic is Strimzi's topic resource.
type KafkaTopic struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              KafkaTopicSpec `json:"spec"`
}

// KafkaTopicSpec: the topic's name defaults to the resource's.
type KafkaTopicSpec struct {
	TopicName  string `json:"topicName,omitempty"`
	Partitions int32  `json:"partitions"`
	Replicas   int32  `json:"replicas"`
	// Config holds Kafka topic configs; values are numbers or strings.
	Config map[string]any `json:"config,omitempty"`
}

// Topic is the Kafka topic's name.
func (t *KafkaTopic) Topic() string {
	if t.Spec.TopicName != "" {
		return t.Spec.TopicName
	}
	return t.Name
}

// KafkaUser is Strimzi's user resource.
type KafkaUser struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              KafkaUserSpec `json:"spec"`
}

// KafkaUserSpec is a user's authentication and ACLs.
type KafkaUserSpec struct {
	Authentication struct {
		Type string `json:"type"`
	} `json:"authentication"`
	Authorization *struct {
		Type string     `json:"type"`
		ACLs []KafkaACL `json:"acls"`
	} `json:"authorization,omitempty"`
}

// KafkaACL grants operations on one resource.
type KafkaACL struct {
	Resource struct {
		Type        string `json:"type"` // topic, group, cluster, transactionalId
		Name        string `json:"name,omitempty"`
		PatternType string `json:"patternType,omitempty"` // literal (default) or prefix
	} `json:"resource"`
	Operations []string `json:"operations"`
	Host       string   `json:"host,omitempty"`
	Type       string   `json:"type,omitempty"` // allow (default) or deny
}
