package cri

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCheckImageVolume(t *testing.T) {
	img := &runtime.ImageSpec{Image: "data:1"}
	for _, tc := range []struct {
		name  string
		mount *runtime.Mount
		field string // "" when valid
	}{
		{"host path mount", &runtime.Mount{ContainerPath: "/d", HostPath: "/srv"}, ""},
		{"image", &runtime.Mount{ContainerPath: "/d", Image: img}, ""},
		{"sub path", &runtime.Mount{ContainerPath: "/d", Image: img, ImageSubPath: "a/./b/"}, ""},
		{"dotted name", &runtime.Mount{ContainerPath: "/d", Image: img, ImageSubPath: "..a/b.."}, ""},
		{"image and host path", &runtime.Mount{ContainerPath: "/d", HostPath: "/srv", Image: img}, "config.mounts[3].host_path"},
		{"sub path without image", &runtime.Mount{ContainerPath: "/d", HostPath: "/srv", ImageSubPath: "a"}, "config.mounts[3].image_sub_path"},
		{"absolute sub path", &runtime.Mount{ContainerPath: "/d", Image: img, ImageSubPath: "/a"}, "config.mounts[3].image_sub_path"},
		{"parent", &runtime.Mount{ContainerPath: "/d", Image: img, ImageSubPath: ".."}, "config.mounts[3].image_sub_path"},
		{"parent inside", &runtime.Mount{ContainerPath: "/d", Image: img, ImageSubPath: "a/../b"}, "config.mounts[3].image_sub_path"},
		{"parent last", &runtime.Mount{ContainerPath: "/d", Image: img, ImageSubPath: "a/.."}, "config.mounts[3].image_sub_path"},
	} {
		err := checkImageVolume(3, tc.mount)
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.field != "" && (err == nil || !strings.Contains(err.Error(), tc.field+":")):
			t.Errorf("%s: error %v, want one naming %s", tc.name, err, tc.field)
		}
	}
}

func TestResolveImageSubPath(t *testing.T) {
	root := filepath.Join(t.TempDir(), "image")
	for _, d := range []string{"data/deep", "other"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "file.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"inside":        "data",
		"data/up":       "../other",
		"escape":        "../../../../../..",
		"data/escape":   "../..",
		"absolute":      "/data",
		"dangling":      "nothing",
		"data/linkfile": "../file.txt",
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for sub, want := range map[string]string{
		"":                 root,
		".":                root,
		"data":             filepath.Join(root, "data"),
		"data/deep/":       filepath.Join(root, "data/deep"),
		"./data//deep":     filepath.Join(root, "data/deep"),
		"inside/deep":      filepath.Join(root, "data/deep"), // links inside are resolved
		"data/up":          filepath.Join(root, "other"),
		"inside/up":        filepath.Join(root, "other"),
		"escape":           "",
		"escape/etc":       "",
		"data/escape":      "",
		"absolute":         "",
		"dangling":         "",
		"missing":          "",
		"file.txt":         "",
		"data/linkfile":    "",
		"../image/data":    "",
		"/data":            "",
		"data/deep/../..":  "",
		"inside/../escape": "",
	} {
		got, err := resolveImageSubPath(root, sub)
		switch {
		case want == "" && err == nil:
			t.Errorf("resolveImageSubPath(%q) = %q, want an error", sub, got)
		case want != "" && (err != nil || got != want):
			t.Errorf("resolveImageSubPath(%q) = %q, %v; want %q", sub, got, err, want)
		}
	}
}
