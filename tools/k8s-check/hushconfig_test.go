package main

import (
	"os"
	"strings"
	"testing"
)

// mappingErrors decodes testdata/secret-mapping.yaml with each old→new replacement applied
// exactly once and returns the secret-mapping errors.
func mappingErrors(t *testing.T, replacements ...string) []error {
	t.Helper()
	data, err := os.ReadFile("testdata/secret-mapping.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for i := 0; i+1 < len(replacements); i += 2 {
		if count := strings.Count(text, replacements[i]); count != 1 {
			t.Fatalf("fixture holds %q %d times, want exactly once", replacements[i], count)
		}
		text = strings.Replace(text, replacements[i], replacements[i+1], 1)
	}
	objects, errs := DecodeStream(strings.NewReader(text))
	if len(errs) > 0 {
		t.Fatalf("fixture does not decode: %v", errs)
	}
	_, errs = CheckSecretMapping(objects)
	return errs
}

func requireOne(t *testing.T, errs []error, fragments ...string) {
	t.Helper()
	if len(errs) != 1 {
		t.Fatalf("want one error containing %q, got %v", fragments, errs)
	}
	for _, fragment := range fragments {
		if !strings.Contains(errs[0].Error(), fragment) {
			t.Fatalf("error %q lacks %q", errs[0], fragment)
		}
	}
}

func TestEveryVariableHushTomlNamesIsMapped(t *testing.T) {
	if errs := mappingErrors(t); len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
}

func TestSuppressorWithoutItsRecipientsCredentialIsRefused(t *testing.T) {
	errs := mappingErrors(t, "            - {name: CRM_TOKEN, valueFrom: {secretKeyRef: {name: crm, key: CRM_TOKEN}}}\n", "")
	requireOne(t, errs, "Deployment/suppressor-crm", "containers[suppressor].env lacks CRM_TOKEN")
}

func TestAuditorWithoutAWebhookSigningSecretIsRefused(t *testing.T) {
	errs := mappingErrors(t, "            - {name: PARTNER_SECRET, valueFrom: {secretKeyRef: {name: partner, key: PARTNER_SECRET}}}\n", "")
	requireOne(t, errs, "Deployment/auditor", "lacks PARTNER_SECRET")
}

func TestIntakeWithoutTheEncryptionKeyIsRefused(t *testing.T) {
	errs := mappingErrors(t, "            - {name: HUSH_ENCRYPTION_KEY, valueFrom: {secretKeyRef: {name: enc, key: HUSH_ENCRYPTION_KEY}}}\n", "")
	requireOne(t, errs, "Deployment/intake", "lacks HUSH_ENCRYPTION_KEY")
}

func TestRegistryPasswordMissingFromTheJobIsRefused(t *testing.T) {
	platform := "            - {name: KAFKA_SASL_PASSWORD, valueFrom: {secretKeyRef: {name: platform, key: KAFKA_SASL_PASSWORD}}}\n"
	registry := "            - {name: REGISTRY_PASSWORD, valueFrom: {secretKeyRef: {name: platform, key: REGISTRY_PASSWORD}}}\n"
	job := `command: ["hush", "topics", "create"]` + "\n          env:\n"
	errs := mappingErrors(t, job+platform+registry, job+platform)
	requireOne(t, errs, "Job/topics", "lacks REGISTRY_PASSWORD")
}

func TestSuppressorForAnUnknownRecipientIsRefused(t *testing.T) {
	errs := mappingErrors(t, `"--connector", "crm"`, `"--connector", "crn"`)
	requireOne(t, errs, "Deployment/suppressor-crm", `--connector "crn", which is not a recipient id`)
}
