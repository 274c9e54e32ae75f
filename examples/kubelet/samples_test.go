package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nodekit-dev/nodekit/agent/podsource"
	"github.com/nodekit-dev/nodekit/objects"
)

// TestSamples: the sample pods (examples/pods) and objects (examples/objects)
// that `make run` serves are valid, and every configMap and secret a sample pod
// references exists.
func TestSamples(t *testing.T) {
	dir, err := objects.NewDir(objects.DirOptions{Path: "../objects"})
	if err != nil {
		t.Fatal(err)
	}
	if errs := dir.Errors(); len(errs) > 0 {
		t.Fatalf("examples/objects: %v", errs)
	}
	files, err := filepath.Glob("../pods/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample pods: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pod, err := podsource.Parse(f, data, "node")
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for _, v := range pod.Spec.Volumes {
			switch {
			case v.ConfigMap != nil:
				if _, err := dir.ConfigMap(t.Context(), pod.Namespace, v.ConfigMap.Name); err != nil {
					t.Errorf("%s: volume %s: %v", f, v.Name, err)
				}
			case v.Secret != nil:
				if _, err := dir.Secret(t.Context(), pod.Namespace, v.Secret.SecretName); err != nil {
					t.Errorf("%s: volume %s: %v", f, v.Name, err)
				}
			}
		}
	}
}
