package kube

import (
	"errors"
	"fmt"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Object is one rendered object, decoded into its typed Go struct (a
// pointer such as *appsv1.Deployment).
type Object struct {
	GVK       schema.GroupVersionKind
	Name      string
	Namespace string
	Typed     any
}

// String names the object as kubectl does: kind/name.
func (o Object) String() string { return o.GVK.Kind + "/" + o.Name }

// kinds lists every kind the overlays may contain and the Go type each is
// decoded into. Add a kind here before using it in a manifest.
var kinds = map[schema.GroupVersionKind]func() any{
	corev1.SchemeGroupVersion.WithKind("Namespace"):                      func() any { return new(corev1.Namespace) },
	corev1.SchemeGroupVersion.WithKind("ConfigMap"):                      func() any { return new(corev1.ConfigMap) },
	corev1.SchemeGroupVersion.WithKind("Secret"):                         func() any { return new(corev1.Secret) },
	corev1.SchemeGroupVersion.WithKind("Service"):                        func() any { return new(corev1.Service) },
	appsv1.SchemeGroupVersion.WithKind("Deployment"):                     func() any { return new(appsv1.Deployment) },
	batchv1.SchemeGroupVersion.WithKind("Job"):                           func() any { return new(batchv1.Job) },
	policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"):          func() any { return new(policyv1.PodDisruptionBudget) },
	autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"): func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	monitoringv1.SchemeGroupVersion.WithKind("ServiceMonitor"):           func() any { return new(monitoringv1.ServiceMonitor) },
	monitoringv1.SchemeGroupVersion.WithKind("PrometheusRule"):           func() any { return new(monitoringv1.PrometheusRule) },
	networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy"):            func() any { return new(networkingv1.NetworkPolicy) },
	strimziV1beta2.WithKind("KafkaTopic"):                                func() any { return new(KafkaTopic) },
	strimziV1beta2.WithKind("KafkaUser"):                                 func() any { return new(KafkaUser) },
	kedaV1alpha1.WithKind("ScaledObject"):                                func() any { return new(ScaledObject) },
	kedaV1alpha1.WithKind("TriggerAuthentication"):                       func() any { return new(TriggerAuthentication) },
}

// Decode decodes one object, given as JSON, into the Go type of its kind.
// Unknown fields, duplicate fields and fields spelled with another case are
// errors, as are kinds this package does not list.
func Decode(data []byte) (Object, error) {
	var meta struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
	}
	// Lenient on purpose: only apiVersion, kind and the name are needed
	// here; the strict pass below reads everything.
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(data, &meta); err != nil {
		return Object{}, fmt.Errorf("read apiVersion and kind: %w", err)
	}
	gvk := meta.GroupVersionKind()
	newTyped, ok := kinds[gvk]
	if !ok {
		return Object{}, fmt.Errorf("%s/%s: no Go type for apiVersion %q kind %q: add it to the kinds of package kube, or remove the object",
			gvk.Kind, meta.Name, meta.APIVersion, meta.Kind)
	}
	typed := newTyped()
	strictErrs, err := sigsjson.UnmarshalStrict(data, typed)
	if err != nil {
		return Object{}, fmt.Errorf("%s/%s: %w", gvk.Kind, meta.Name, err)
	}
	if len(strictErrs) > 0 {
		return Object{}, fmt.Errorf("%s/%s: %w", gvk.Kind, meta.Name, errors.Join(strictErrs...))
	}
	return Object{GVK: gvk, Name: meta.Name, Namespace: meta.Namespace, Typed: typed}, nil
}

// Render runs Kustomize on the kustomization in dir, with the options of
// `kubectl apply -k` (files only from below the kustomization's root), and
// decodes every resulting object with Decode. All decoding errors are
// reported together.
func Render(dir string) ([]Object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var (
		objs []Object
		errs []error
	)
	for _, r := range resources.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: encode as JSON: %w", r.CurId(), err))
			continue
		}
		obj, err := Decode(data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		objs = append(objs, obj)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, errors.Join(errs...))
	}
	return objs, nil
}

// Find returns the typed object of type T named name, if rendered.
func Find[T any](objs []Object, name string) (T, bool) {
	for _, o := range objs {
		if t, ok := o.Typed.(T); ok && o.Name == name {
			return t, true
		}
	}
	var zero T
	return zero, false
}

// All returns every rendered object of type T.
func All[T any](objs []Object) []T {
	var out []T
	for _, o := range objs {
		if t, ok := o.Typed.(T); ok {
			out = append(out, t)
		}
	}
	return out
}
