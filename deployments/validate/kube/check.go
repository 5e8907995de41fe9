package kube

import (
	"errors"
	"fmt"
	"slices"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Workload is a pod template and who owns it: a Deployment or a Job.
type Workload struct {
	Kind, Name string
	Template   corev1.PodTemplateSpec
}

// Workloads returns the pod templates of the rendered Deployments and Jobs.
func Workloads(objs []Object) []Workload {
	var out []Workload
	for _, d := range All[*appsv1.Deployment](objs) {
		out = append(out, Workload{Kind: "Deployment", Name: d.Name, Template: d.Spec.Template})
	}
	for _, j := range All[*batchv1.Job](objs) {
		out = append(out, Workload{Kind: "Job", Name: j.Name, Template: j.Spec.Template})
	}
	return out
}

// External lists the Secrets an overlay expects to exist in the cluster
// already, created by people or operators (a database password, a Strimzi
// KafkaUser's Secret), with the keys each must hold.
type External map[string][]string

// Check reports, all at once, the mistakes that make a rendered overlay
// apply cleanly and then not work:
//   - a Deployment whose selector does not match its pod template;
//   - a Service, PodDisruptionBudget or ServiceMonitor that selects nothing,
//     or names a port the selected pods or Services do not have;
//   - a HorizontalPodAutoscaler for a missing Deployment, one that fights
//     the Deployment's own replicas field, or minReplicas above maxReplicas;
//   - a ConfigMap or Secret (or one of its keys) that a pod uses but that is
//     neither rendered nor listed in external, and an external Secret that
//     nothing uses;
//   - a probe on a port the container does not declare;
//   - a pod that breaks the "restricted" Pod Security Standard or has no
//     resource requests and memory limit.
func Check(objs []Object, external External) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	workloads := Workloads(objs)
	for _, d := range All[*appsv1.Deployment](objs) {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			add("Deployment/%s: selector %v does not match its pod template's labels %v", d.Name, d.Spec.Selector, d.Spec.Template.Labels)
		}
	}

	// selectPods returns the workloads whose pods sel matches.
	selectPods := func(sel labels.Selector) []Workload {
		var out []Workload
		for _, w := range workloads {
			if sel.Matches(labels.Set(w.Template.Labels)) {
				out = append(out, w)
			}
		}
		return out
	}

	for _, s := range All[*corev1.Service](objs) {
		if len(s.Spec.Selector) == 0 {
			add("Service/%s: no selector", s.Name)
			continue
		}
		pods := selectPods(labels.SelectorFromSet(s.Spec.Selector))
		if len(pods) == 0 {
			add("Service/%s: selector %v matches no pod template", s.Name, s.Spec.Selector)
		}
		for _, p := range s.Spec.Ports {
			for _, w := range pods {
				if p.TargetPort.StrVal != "" && !hasContainerPort(w.Template.Spec, p.TargetPort.StrVal) {
					add("Service/%s: targetPort %q is no container port of %s/%s", s.Name, p.TargetPort.StrVal, w.Kind, w.Name)
				}
			}
		}
	}

	for _, p := range All[*policyv1.PodDisruptionBudget](objs) {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || sel.Empty() || len(selectPods(sel)) == 0 {
			add("PodDisruptionBudget/%s: selector %v matches no pod template", p.Name, p.Spec.Selector)
		}
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			add("PodDisruptionBudget/%s: set exactly one of minAvailable and maxUnavailable", p.Name)
		}
	}

	for _, h := range All[*autoscalingv2.HorizontalPodAutoscaler](objs) {
		ref := h.Spec.ScaleTargetRef
		d, ok := Find[*appsv1.Deployment](objs, ref.Name)
		switch {
		case ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || !ok:
			add("HorizontalPodAutoscaler/%s: scales %s %s/%s, which is not rendered", h.Name, ref.APIVersion, ref.Kind, ref.Name)
		case d.Spec.Replicas != nil:
			add("Deployment/%s: sets replicas %d although HorizontalPodAutoscaler/%s owns the count: every apply would reset it", d.Name, *d.Spec.Replicas, h.Name)
		}
		if h.Spec.MinReplicas != nil && *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			add("HorizontalPodAutoscaler/%s: minReplicas %d above maxReplicas %d", h.Name, *h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
	}

	services := All[*corev1.Service](objs)
	for _, m := range All[*monitoringv1.ServiceMonitor](objs) {
		sel, err := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
		if err != nil || sel.Empty() {
			add("ServiceMonitor/%s: empty or invalid selector", m.Name)
			continue
		}
		var matched []*corev1.Service
		for _, s := range services {
			if sel.Matches(labels.Set(s.Labels)) {
				matched = append(matched, s)
			}
		}
		if len(matched) == 0 {
			add("ServiceMonitor/%s: selector %v matches no Service", m.Name, m.Spec.Selector.MatchLabels)
		}
		for _, e := range m.Spec.Endpoints {
			for _, s := range matched {
				if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == e.Port }) {
					add("ServiceMonitor/%s: endpoint port %q is not a port name of Service/%s", m.Name, e.Port, s.Name)
				}
			}
		}
	}

	errs = append(errs, checkReferences(objs, workloads, external)...)
	for _, w := range workloads {
		errs = append(errs, checkPod(w)...)
	}
	return errors.Join(errs...)
}

func hasContainerPort(spec corev1.PodSpec, name string) bool {
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

// checkReferences checks that every ConfigMap and Secret a pod uses exists
// (rendered or external) and holds the keys used.
func checkReferences(objs []Object, workloads []Workload, external External) []error {
	var errs []error
	configMaps := map[string]map[string]bool{}
	for _, c := range All[*corev1.ConfigMap](objs) {
		configMaps[c.Name] = keySet(c.Data, c.BinaryData)
	}
	secrets := map[string]map[string]bool{}
	for _, s := range All[*corev1.Secret](objs) {
		secrets[s.Name] = keySet(s.StringData, s.Data)
	}
	usedExternal := map[string]bool{}
	for name, keys := range external {
		if _, rendered := secrets[name]; rendered {
			errs = append(errs, fmt.Errorf("external Secret/%s: listed as external but rendered by the overlay", name))
			continue
		}
		set := map[string]bool{}
		for _, k := range keys {
			set[k] = true
		}
		secrets[name] = set
	}

	for _, w := range workloads {
		at := w.Kind + "/" + w.Name
		check := func(kind, name, key string, optional *bool) {
			if optional != nil && *optional {
				return
			}
			set := configMaps
			if kind == "Secret" {
				set = secrets
				usedExternal[name] = true
			}
			keys, ok := set[name]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("%s: uses %s/%s, which is neither rendered nor listed as external", at, kind, name))
			case key != "" && !keys[key]:
				errs = append(errs, fmt.Errorf("%s: uses key %q of %s/%s, which has no such key", at, key, kind, name))
			}
		}
		spec := w.Template.Spec
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			for _, f := range c.EnvFrom {
				if f.ConfigMapRef != nil {
					check("ConfigMap", f.ConfigMapRef.Name, "", f.ConfigMapRef.Optional)
				}
				if f.SecretRef != nil {
					check("Secret", f.SecretRef.Name, "", f.SecretRef.Optional)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					check("ConfigMap", r.Name, r.Key, r.Optional)
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					check("Secret", r.Name, r.Key, r.Optional)
				}
			}
		}
		for _, v := range spec.Volumes {
			if v.ConfigMap != nil {
				for _, item := range orNone(v.ConfigMap.Items) {
					check("ConfigMap", v.ConfigMap.Name, item.Key, v.ConfigMap.Optional)
				}
			}
			if v.Secret != nil {
				for _, item := range orNone(v.Secret.Items) {
					check("Secret", v.Secret.SecretName, item.Key, v.Secret.Optional)
				}
			}
		}
	}
	for name := range external {
		if !usedExternal[name] {
			errs = append(errs, fmt.Errorf("external Secret/%s: listed as external but no pod uses it", name))
		}
	}
	return errs
}

// orNone returns items, or one empty item so that a volume without items
// is still checked for existence.
func orNone(items []corev1.KeyToPath) []corev1.KeyToPath {
	if len(items) == 0 {
		return []corev1.KeyToPath{{}}
	}
	return items
}

func keySet[A, B any](a map[string]A, b map[string]B) map[string]bool {
	set := map[string]bool{}
	for k := range a {
		set[k] = true
	}
	for k := range b {
		set[k] = true
	}
	return set
}

// checkPod applies the "restricted" Pod Security Standard's rules that a
// manifest controls, and asks for resource requests and a memory limit.
func checkPod(w Workload) []error {
	var errs []error
	at := w.Kind + "/" + w.Name
	spec := w.Template.Spec
	podNonRoot := spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot
	podSeccomp := spec.SecurityContext != nil && spec.SecurityContext.SeccompProfile != nil &&
		spec.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		at := at + " container " + c.Name
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		if !podNonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
			errs = append(errs, fmt.Errorf("%s: runAsNonRoot is not true (restricted Pod Security Standard)", at))
		}
		if !podSeccomp && (sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault) {
			errs = append(errs, fmt.Errorf("%s: seccompProfile is not RuntimeDefault (restricted Pod Security Standard)", at))
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			errs = append(errs, fmt.Errorf("%s: allowPrivilegeEscalation is not false (restricted Pod Security Standard)", at))
		}
		if sc.Privileged != nil && *sc.Privileged {
			errs = append(errs, fmt.Errorf("%s: privileged", at))
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			errs = append(errs, fmt.Errorf("%s: capabilities do not drop ALL (restricted Pod Security Standard)", at))
		}
		r := c.Resources
		if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
			errs = append(errs, fmt.Errorf("%s: set resources.requests cpu and memory and resources.limits memory", at))
		}
		if l, q := r.Limits.Memory(), r.Requests.Memory(); !l.IsZero() && l.Cmp(*q) < 0 {
			errs = append(errs, fmt.Errorf("%s: memory request %s above its limit %s", at, q, l))
		}
		for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.StrVal == "" {
				continue
			}
			if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.HTTPGet.Port.StrVal }) {
				errs = append(errs, fmt.Errorf("%s: %s probe port %q is not a port of the container", at, name, p.HTTPGet.Port.StrVal))
			}
		}
	}
	return errs
}
