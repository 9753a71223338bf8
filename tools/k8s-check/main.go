// Command k8s-check reads the output of `kustomize build` and fails unless every object
// decodes strictly into its Kubernetes API type (an unknown, misspelt or mistyped field is an
// error naming its path; an unknown kind is refused) and the hardening rules hold (see
// CheckPolicies).
//
// Usage: kustomize build deploy/k8s | k8s-check [-kustomization deploy/k8s] [FILE]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	listing := flag.String("kustomization", "", "directory whose kustomization.yaml must list every YAML file in it")
	flag.Parse()
	var input io.Reader = os.Stdin
	source := "standard input"
	if flag.NArg() > 1 {
		fmt.Fprintln(os.Stderr, "usage: k8s-check [-kustomization DIR] [FILE]")
		os.Exit(2)
	}
	if flag.NArg() == 1 && flag.Arg(0) != "-" {
		file, err := os.Open(flag.Arg(0))
		if err != nil {
			fmt.Fprintf(os.Stderr, "k8s-check: %v\n", err)
			os.Exit(2)
		}
		defer file.Close()
		input, source = file, flag.Arg(0)
	}
	objects, notes, errs := Check(input, *listing)
	for _, err := range errs {
		fmt.Fprintf(os.Stderr, "k8s-check: %v\n", err)
	}
	if len(errs) > 0 {
		fmt.Fprintf(os.Stderr, "k8s-check: %d problem(s) in %s\n", len(errs), source)
		os.Exit(1)
	}
	fmt.Printf("k8s-check: %d objects decoded strictly (%s); hardening rules hold\n", len(objects), countKinds(objects))
	for _, note := range notes {
		fmt.Printf("k8s-check: %s\n", note)
	}
}

// Check decodes the stream and, when every object decodes, checks the policies and the secret
// mapping; with a non-empty listing directory it also checks that its kustomization lists every
// manifest. Notes say what was checked beyond the policies.
func Check(input io.Reader, listing string) (objects []Object, notes []string, errs []error) {
	objects, errs = DecodeStream(input)
	if len(objects) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("no objects in the input"))
	}
	if len(errs) == 0 {
		errs = append(errs, CheckPolicies(objects)...)
		note, mappingErrs := CheckSecretMapping(objects)
		notes = append(notes, note)
		errs = append(errs, mappingErrs...)
	}
	if listing != "" {
		errs = append(errs, CheckListing(listing)...)
	}
	return objects, notes, errs
}

func countKinds(objects []Object) string {
	counts := map[string]int{}
	for _, object := range objects {
		counts[object.Kind]++
	}
	parts := make([]string, 0, len(counts))
	for kind, count := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", count, kind))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
