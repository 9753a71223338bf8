package main

import (
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// CheckPolicies returns every way the decoded objects break Hush's hardening rules: each pod
// runs non-root with a non-zero user and group, seccomp RuntimeDefault and no service account
// token; each container has a read-only root filesystem, no privilege escalation, every
// capability dropped, resource requests and a memory limit, and takes secrets key by key
// (no envFrom of a Secret); each Deployment's containers have startup, readiness and liveness
// probes; a Deployment with more than one replica is covered by a PodDisruptionBudget; and each
// namespace that runs pods has a default-deny NetworkPolicy.
func CheckPolicies(objects []Object) []error {
	var errs []error
	podNamespaces := map[string]bool{}
	for _, object := range objects {
		switch typed := object.Typed.(type) {
		case *appsv1.Deployment:
			podNamespaces[object.Namespace] = true
			errs = append(errs, checkPod(object, "spec.template.spec", &typed.Spec.Template.Spec)...)
			errs = append(errs, checkProbes(object, &typed.Spec.Template.Spec)...)
			errs = append(errs, checkDisruptionBudget(object, typed, objects)...)
		case *batchv1.Job:
			podNamespaces[object.Namespace] = true
			errs = append(errs, checkPod(object, "spec.template.spec", &typed.Spec.Template.Spec)...)
		case *batchv1.CronJob:
			podNamespaces[object.Namespace] = true
			errs = append(errs, checkPod(object, "spec.jobTemplate.spec.template.spec", &typed.Spec.JobTemplate.Spec.Template.Spec)...)
		}
	}
	for _, namespace := range sortedKeys(podNamespaces) {
		if !hasDefaultDeny(objects, namespace) {
			errs = append(errs, fmt.Errorf("namespace %q runs pods but has no default-deny NetworkPolicy (podSelector {}, policyTypes [Ingress, Egress], no rules)", namespace))
		}
	}
	return errs
}

func checkPod(object Object, path string, pod *corev1.PodSpec) []error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s.%s: %s", object, path, field, fmt.Sprintf(format, args...)))
	}
	podContext := pod.SecurityContext
	if podContext == nil {
		podContext = &corev1.PodSecurityContext{}
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		fail("automountServiceAccountToken", "must be false (Hush never calls the Kubernetes API)")
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		fail("hostNetwork/hostPID/hostIPC", "must not share the host's namespaces")
	}
	all := make([]corev1.Container, 0, len(pod.InitContainers)+len(pod.Containers))
	all = append(all, pod.InitContainers...)
	all = append(all, pod.Containers...)
	for _, container := range all {
		field := func(name string) string { return fmt.Sprintf("containers[%s].%s", container.Name, name) }
		context := container.SecurityContext
		if context == nil {
			context = &corev1.SecurityContext{}
		}
		if !isTrue(firstBool(context.RunAsNonRoot, podContext.RunAsNonRoot)) {
			fail(field("securityContext.runAsNonRoot"), "must be true (here or in the pod's securityContext)")
		}
		if id := firstInt(context.RunAsUser, podContext.RunAsUser); id == nil || *id == 0 {
			fail(field("securityContext.runAsUser"), "must be set and not 0 (here or in the pod's securityContext)")
		}
		if id := firstInt(context.RunAsGroup, podContext.RunAsGroup); id == nil || *id == 0 {
			fail(field("securityContext.runAsGroup"), "must be set and not 0 (here or in the pod's securityContext)")
		}
		seccomp := context.SeccompProfile
		if seccomp == nil {
			seccomp = podContext.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			fail(field("securityContext.seccompProfile.type"), "must be RuntimeDefault (here or in the pod's securityContext)")
		}
		if context.AllowPrivilegeEscalation == nil || *context.AllowPrivilegeEscalation {
			fail(field("securityContext.allowPrivilegeEscalation"), "must be false")
		}
		if !isTrue(context.ReadOnlyRootFilesystem) {
			fail(field("securityContext.readOnlyRootFilesystem"), "must be true (mount an emptyDir where the process writes)")
		}
		if isTrue(context.Privileged) {
			fail(field("securityContext.privileged"), "must not be true")
		}
		if context.Capabilities == nil || !slices.Contains(context.Capabilities.Drop, "ALL") {
			fail(field("securityContext.capabilities.drop"), "must contain ALL")
		}
		if context.Capabilities != nil && len(context.Capabilities.Add) > 0 {
			fail(field("securityContext.capabilities.add"), "must be empty, has %v", context.Capabilities.Add)
		}
		for _, resource := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, set := container.Resources.Requests[resource]; !set {
				fail(field("resources.requests."+string(resource)), "must be set")
			}
		}
		if _, set := container.Resources.Limits[corev1.ResourceMemory]; !set {
			fail(field("resources.limits.memory"), "must be set")
		}
		for i, source := range container.EnvFrom {
			if source.SecretRef != nil {
				fail(field(fmt.Sprintf("envFrom[%d].secretRef", i)), "takes every key of Secret %q; map only the keys this container needs with env[].valueFrom.secretKeyRef", source.SecretRef.Name)
			}
		}
	}
	return errs
}

func checkProbes(object Object, pod *corev1.PodSpec) []error {
	var errs []error
	for _, container := range pod.Containers {
		probes := map[string]*corev1.Probe{
			"startupProbe":   container.StartupProbe,
			"readinessProbe": container.ReadinessProbe,
			"livenessProbe":  container.LivenessProbe,
		}
		for _, name := range sortedKeys(probes) {
			if probes[name] == nil {
				errs = append(errs, fmt.Errorf("%s: spec.template.spec.containers[%s].%s: a Deployment's containers need startup, readiness and liveness probes", object, container.Name, name))
			}
		}
	}
	return errs
}

func checkDisruptionBudget(object Object, deployment *appsv1.Deployment, objects []Object) []error {
	if deployment.Spec.Replicas == nil || *deployment.Spec.Replicas <= 1 {
		return nil
	}
	podLabels := labels.Set(deployment.Spec.Template.Labels)
	for _, other := range objects {
		budget, isBudget := other.Typed.(*policyv1.PodDisruptionBudget)
		if !isBudget || other.Namespace != object.Namespace || budget.Spec.Selector == nil {
			continue
		}
		selector, err := metav1.LabelSelectorAsSelector(budget.Spec.Selector)
		if err != nil || selector.Empty() || !selector.Matches(podLabels) {
			continue
		}
		if budget.Spec.MinAvailable == nil && budget.Spec.MaxUnavailable == nil {
			return []error{fmt.Errorf("%s: PodDisruptionBudget/%s sets neither minAvailable nor maxUnavailable", object, other.Name)}
		}
		return nil
	}
	return []error{fmt.Errorf("%s: spec.replicas is %d but no PodDisruptionBudget selects its pods", object, *deployment.Spec.Replicas)}
}

func hasDefaultDeny(objects []Object, namespace string) bool {
	for _, object := range objects {
		policy, isPolicy := object.Typed.(*networkingv1.NetworkPolicy)
		if !isPolicy || object.Namespace != namespace {
			continue
		}
		spec := policy.Spec
		selectsAll := len(spec.PodSelector.MatchLabels) == 0 && len(spec.PodSelector.MatchExpressions) == 0
		both := slices.Contains(spec.PolicyTypes, networkingv1.PolicyTypeIngress) &&
			slices.Contains(spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		if selectsAll && both && len(spec.Ingress) == 0 && len(spec.Egress) == 0 {
			return true
		}
	}
	return false
}

func firstBool(values ...*bool) *bool {
	for _, value := range values {
		if value != nil {
			return value
		}
	}
	return nil
}

func firstInt(values ...*int64) *int64 {
	for _, value := range values {
		if value != nil {
			return value
		}
	}
	return nil
}

func isTrue(value *bool) bool { return value != nil && *value }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}
