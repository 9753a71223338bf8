package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is one manifest decoded into its Kubernetes type.
type Object struct {
	// Kind is the object's kind, e.g. "Deployment".
	Kind string
	// Name is metadata.name.
	Name string
	// Namespace is metadata.namespace, empty for cluster-scoped kinds.
	Namespace string
	// Typed points to the decoded value, e.g. *appsv1.Deployment.
	Typed any
}

// String names the object the way errors refer to it.
func (o Object) String() string { return o.Kind + "/" + o.Name }

// CustomResource holds a kind whose Go types Hush does not import (the Prometheus Operator's):
// its envelope is decoded strictly, its spec only checked to be an object.
type CustomResource struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              map[string]any `json:"spec"`
}

type kind struct {
	apiVersion string
	kind       string
}

type kindSpec struct {
	new        func() any
	namespaced bool
	// check validates what strict decoding cannot (e.g. a custom resource's spec).
	check func(any) error
}

// kinds lists every kind the manifests may hold; any other is refused.
var kinds = map[kind]kindSpec{
	{"apps/v1", "Deployment"}:                      {func() any { return &appsv1.Deployment{} }, true, nil},
	{"batch/v1", "Job"}:                            {func() any { return &batchv1.Job{} }, true, nil},
	{"batch/v1", "CronJob"}:                        {func() any { return &batchv1.CronJob{} }, true, nil},
	{"v1", "Service"}:                              {func() any { return &corev1.Service{} }, true, nil},
	{"v1", "ConfigMap"}:                            {func() any { return &corev1.ConfigMap{} }, true, nil},
	{"v1", "ServiceAccount"}:                       {func() any { return &corev1.ServiceAccount{} }, true, nil},
	{"v1", "Namespace"}:                            {func() any { return &corev1.Namespace{} }, false, nil},
	{"networking.k8s.io/v1", "NetworkPolicy"}:      {func() any { return &networkingv1.NetworkPolicy{} }, true, nil},
	{"policy/v1", "PodDisruptionBudget"}:           {func() any { return &policyv1.PodDisruptionBudget{} }, true, nil},
	{"monitoring.coreos.com/v1", "PodMonitor"}:     {func() any { return &CustomResource{} }, true, monitorSelector},
	{"monitoring.coreos.com/v1", "ServiceMonitor"}: {func() any { return &CustomResource{} }, true, monitorSelector},
	{"monitoring.coreos.com/v1", "PrometheusRule"}: {func() any { return &CustomResource{} }, true, ruleGroups},
}

// DecodeStream splits a multi-document YAML stream (the output of `kustomize build`) and
// decodes every document strictly into its type. It returns every error it finds, each naming
// the document and the field's path, not only the first.
func DecodeStream(r io.Reader) ([]Object, []error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var objects []Object
	var errs []error
	for index := 1; ; index++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: cannot read YAML: %w", index, err))
			break
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		object, docErrs := decodeDocument(index, doc)
		errs = append(errs, docErrs...)
		if len(docErrs) == 0 {
			objects = append(objects, object)
		}
	}
	return objects, errs
}

// stripComments drops whole-line comments so that a document holding only comments counts as
// empty.
func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

func decodeDocument(index int, doc []byte) (Object, []error) {
	// Strict YAML: a key given twice is an error, not "last one wins".
	data, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return Object{}, []error{fmt.Errorf("document %d: invalid YAML: %w", index, err)}
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return Object{}, []error{fmt.Errorf("document %d: not a Kubernetes object: %w", index, err)}
	}
	where := fmt.Sprintf("document %d (%s/%s)", index, head.Kind, head.Metadata.Name)
	if head.APIVersion == "" || head.Kind == "" {
		return Object{}, []error{fmt.Errorf("document %d: apiVersion and kind are required", index)}
	}
	if head.APIVersion == "v1" && head.Kind == "Secret" {
		return Object{}, []error{fmt.Errorf("%s: Secrets do not belong in the manifests; create them with kubectl (see kustomization.yaml)", where)}
	}
	spec, known := kinds[kind{head.APIVersion, head.Kind}]
	if !known {
		return Object{}, []error{fmt.Errorf("%s: apiVersion %q kind %q is not a kind k8s-check knows; add its Go type to kinds in decode.go", where, head.APIVersion, head.Kind)}
	}
	typed := spec.new()
	strictErrs, err := sigsjson.UnmarshalStrict(data, typed, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", where, err))
	}
	for _, strictErr := range strictErrs {
		errs = append(errs, fmt.Errorf("%s: %w", where, strictErr))
	}
	if len(errs) > 0 {
		return Object{}, errs
	}
	if head.Metadata.Name == "" {
		errs = append(errs, fmt.Errorf("%s: metadata.name is required", where))
	}
	if spec.namespaced && head.Metadata.Namespace == "" {
		errs = append(errs, fmt.Errorf("%s: metadata.namespace is not set (kustomize sets it from the kustomization's namespace)", where))
	}
	if spec.check != nil {
		if err := spec.check(typed); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
	}
	return Object{Kind: head.Kind, Name: head.Metadata.Name, Namespace: head.Metadata.Namespace, Typed: typed}, errs
}

// monitorSelector requires a PodMonitor's or ServiceMonitor's spec.selector, decoded strictly
// as a label selector.
func monitorSelector(typed any) error {
	resource := typed.(*CustomResource)
	raw, present := resource.Spec["selector"]
	if !present {
		return errors.New("spec.selector is required")
	}
	data, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("spec.selector: %w", err)
	}
	var selector metav1.LabelSelector
	strictErrs, err := sigsjson.UnmarshalStrict(data, &selector, sigsjson.DisallowUnknownFields)
	if err != nil {
		return fmt.Errorf("spec.selector: %w", err)
	}
	if len(strictErrs) > 0 {
		return fmt.Errorf("spec.selector: %w", errors.Join(strictErrs...))
	}
	return nil
}

// ruleGroups requires a PrometheusRule's spec.groups to be a list.
func ruleGroups(typed any) error {
	resource := typed.(*CustomResource)
	if _, isList := resource.Spec["groups"].([]any); !isList {
		return errors.New("spec.groups must be a list of rule groups")
	}
	return nil
}
