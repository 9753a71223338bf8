package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// CheckListing returns an error for every YAML file in dir that dir/kustomization.yaml does
// not list under resources (a manifest nobody applies), and for every listed resource that is
// not there.
func CheckListing(dir string) []error {
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return []error{fmt.Errorf("cannot read the kustomization: %w", err)}
	}
	var kustomization struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(data, &kustomization); err != nil {
		return []error{fmt.Errorf("%s: %w", filepath.Join(dir, "kustomization.yaml"), err)}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return []error{fmt.Errorf("cannot list %s: %w", dir, err)}
	}
	var errs []error
	var files []string
	for _, entry := range entries {
		name := entry.Name()
		if entry.IsDir() || name == "kustomization.yaml" || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		files = append(files, name)
		if !slices.Contains(kustomization.Resources, name) {
			errs = append(errs, fmt.Errorf("%s is not listed under resources in %s", filepath.Join(dir, name), filepath.Join(dir, "kustomization.yaml")))
		}
	}
	for _, resource := range kustomization.Resources {
		if !slices.Contains(files, resource) && !strings.Contains(resource, "/") {
			errs = append(errs, fmt.Errorf("%s lists resource %s, which is not in %s", filepath.Join(dir, "kustomization.yaml"), resource, dir))
		}
	}
	return errs
}
