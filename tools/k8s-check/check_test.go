package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture returns testdata/valid.yaml with each old→new replacement applied exactly once, so
// a test fails loudly if the fixture stops containing what it means to break.
func fixture(t *testing.T, replacements ...string) string {
	t.Helper()
	data, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for i := 0; i+1 < len(replacements); i += 2 {
		old, replacement := replacements[i], replacements[i+1]
		if count := strings.Count(text, old); count != 1 {
			t.Fatalf("fixture holds %q %d times, want exactly once", old, count)
		}
		text = strings.Replace(text, old, replacement, 1)
	}
	return text
}

// mustFail checks the stream and requires one error containing every fragment.
func mustFail(t *testing.T, stream string, fragments ...string) {
	t.Helper()
	_, _, errs := Check(strings.NewReader(stream), "")
	for _, err := range errs {
		matched := true
		for _, fragment := range fragments {
			if !strings.Contains(err.Error(), fragment) {
				matched = false
			}
		}
		if matched {
			return
		}
	}
	t.Fatalf("no error contains %q; got %v", fragments, errs)
}

func TestValidFixturePassesWithEveryObjectDecoded(t *testing.T) {
	objects, _, errs := Check(strings.NewReader(fixture(t)), "")
	if len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if got := countKinds(objects); got != "1 ConfigMap, 1 CronJob, 1 Deployment, 1 Namespace, 1 NetworkPolicy, 1 PodDisruptionBudget, 1 PodMonitor, 1 Service, 1 ServiceAccount" {
		t.Fatalf("decoded %s", got)
	}
}

func TestMisspeltFieldIsRefusedWithItsPath(t *testing.T) {
	stream := fixture(t, "      securityContext:\n        runAsNonRoot: true\n        runAsUser: 65532\n        runAsGroup: 65532\n        seccompProfile: {type: RuntimeDefault}\n      containers:\n        - name: web",
		"      securityContext:\n        runAsNonRot: true\n        runAsUser: 65532\n        runAsGroup: 65532\n        seccompProfile: {type: RuntimeDefault}\n      containers:\n        - name: web")
	mustFail(t, stream, "Deployment/web", `unknown field "spec.template.spec.securityContext.runAsNonRot"`)
}

func TestFieldWithWrongCaseIsRefused(t *testing.T) {
	stream := fixture(t, "  minAvailable: 1", "  MinAvailable: 1")
	mustFail(t, stream, "PodDisruptionBudget/app", `unknown field "spec.MinAvailable"`)
}

func TestMistypedValueIsRefusedWithItsPath(t *testing.T) {
	stream := fixture(t, "  replicas: 2", `  replicas: "two"`)
	mustFail(t, stream, "Deployment/web", "spec.replicas", "int32")
}

func TestDuplicateKeyIsRefused(t *testing.T) {
	stream := fixture(t, "  schedule: \"0 3 * * *\"\n", "  schedule: \"0 3 * * *\"\n  schedule: \"0 4 * * *\"\n")
	mustFail(t, stream, "document", "schedule")
}

func TestUnknownKindIsRefused(t *testing.T) {
	stream := fixture(t) + "---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: demo}\n"
	mustFail(t, stream, "Widget/w", `kind "Widget" is not a kind k8s-check knows`)
}

func TestSecretIsRefused(t *testing.T) {
	stream := fixture(t) + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: demo}\nstringData: {TOKEN: x}\n"
	mustFail(t, stream, "Secret/s", "Secrets do not belong in the manifests")
}

func TestCustomResourceEnvelopeIsStrict(t *testing.T) {
	stream := fixture(t, "kind: PodMonitor\nmetadata:\n  name: web\n", "kind: PodMonitor\nmetadata:\n  name: web\n  lables: {app: web}\n")
	mustFail(t, stream, "PodMonitor/web", `unknown field "metadata.lables"`)
}

func TestMonitorSelectorIsStrict(t *testing.T) {
	stream := fixture(t, "  selector:\n    matchLabels: {app: web}\n  podMetricsEndpoints", "  selector:\n    matchLabel: {app: web}\n  podMetricsEndpoints")
	mustFail(t, stream, "PodMonitor/web", "spec.selector", `unknown field "matchLabel"`)
}

func TestMissingNamespaceIsRefused(t *testing.T) {
	stream := fixture(t, "  name: web\n  namespace: demo\nspec:\n  selector: {app: web}", "  name: web\nspec:\n  selector: {app: web}")
	mustFail(t, stream, "Service/web", "metadata.namespace is not set")
}

func TestWritableRootFilesystemIsRefused(t *testing.T) {
	stream := fixture(t, "            readOnlyRootFilesystem: true\n            capabilities: {drop: [ALL]}\n          startupProbe", "            capabilities: {drop: [ALL]}\n          startupProbe")
	mustFail(t, stream, "Deployment/web", "containers[web].securityContext.readOnlyRootFilesystem", "must be true")
}

func TestRootUserIsRefused(t *testing.T) {
	stream := fixture(t, "          securityContext:\n            runAsNonRoot: true\n            runAsUser: 65532", "          securityContext:\n            runAsNonRoot: true\n            runAsUser: 0")
	mustFail(t, stream, "CronJob/nightly", "spec.jobTemplate.spec.template.spec.containers[nightly].securityContext.runAsUser", "not 0")
}

func TestKeptCapabilitiesAreRefused(t *testing.T) {
	stream := fixture(t, "                capabilities: {drop: [ALL]}", "                capabilities: {drop: [NET_RAW]}")
	mustFail(t, stream, "CronJob/nightly", "capabilities.drop", "must contain ALL")
}

func TestMissingSeccompProfileIsRefused(t *testing.T) {
	stream := fixture(t, "            runAsGroup: 65532\n            seccompProfile: {type: RuntimeDefault}\n", "            runAsGroup: 65532\n")
	mustFail(t, stream, "CronJob/nightly", "seccompProfile.type", "RuntimeDefault")
}

func TestPrivilegeEscalationIsRefused(t *testing.T) {
	stream := fixture(t, "                allowPrivilegeEscalation: false", "                allowPrivilegeEscalation: true")
	mustFail(t, stream, "CronJob/nightly", "allowPrivilegeEscalation", "must be false")
}

func TestMissingStartupProbeIsRefused(t *testing.T) {
	stream := fixture(t, "          startupProbe:\n            httpGet: {path: /healthz, port: http}\n", "")
	mustFail(t, stream, "Deployment/web", "containers[web].startupProbe")
}

func TestMissingMemoryLimitIsRefused(t *testing.T) {
	stream := fixture(t, "            limits: {memory: 512Mi}\n", "")
	mustFail(t, stream, "Deployment/web", "resources.limits.memory")
}

func TestWholeSecretInEnvironmentIsRefused(t *testing.T) {
	stream := fixture(t, "          env:\n            - name: TOKEN", "          envFrom:\n            - secretRef: {name: everything}\n          env:\n            - name: TOKEN")
	mustFail(t, stream, "Deployment/web", "envFrom[0].secretRef", `"everything"`)
}

func TestReplicatedDeploymentWithoutDisruptionBudgetIsRefused(t *testing.T) {
	stream := fixture(t, "    matchLabels: {app: web}\n---\napiVersion: apps/v1", "    matchLabels: {app: other}\n---\napiVersion: apps/v1")
	mustFail(t, stream, "Deployment/web", "spec.replicas is 2 but no PodDisruptionBudget selects its pods")
}

func TestNamespaceWithoutDefaultDenyIsRefused(t *testing.T) {
	stream := fixture(t, "  policyTypes: [Ingress, Egress]", "  policyTypes: [Ingress]")
	mustFail(t, stream, `namespace "demo" runs pods but has no default-deny NetworkPolicy`)
}

func TestUnlistedManifestIsReported(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("kustomization.yaml", "resources:\n  - a.yaml\n  - gone.yaml\n")
	write("a.yaml", "")
	write("b.yaml", "")
	errs := CheckListing(dir)
	if len(errs) != 2 ||
		!strings.Contains(errs[0].Error(), "b.yaml is not listed under resources") ||
		!strings.Contains(errs[1].Error(), "lists resource gone.yaml, which is not in") {
		t.Fatalf("got %v", errs)
	}
}
