package volumes_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodekit-dev/nodekit/objects"
	"github.com/nodekit-dev/nodekit/volumes"
)

// A pod's configMap volume set up, updated when its configMap changes, and
// torn down. (A configMap volume lives on disk: no root needed; secrets,
// downwardAPI, projected and Memory emptyDir volumes are tmpfs mounts.)
func Example() {
	root, _ := os.MkdirTemp("", "volumes-example")
	defer os.RemoveAll(root)
	ctx := context.Background()

	objs := objects.NewStatic()
	objs.SetConfigMap(&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Data: map[string]string{"index.html": "hello"}})
	m, err := volumes.New(volumes.Options{RootDir: root, Objects: objs})
	if err != nil {
		panic(err)
	}
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"},
		Spec: v1.PodSpec{
			Containers: []v1.Container{{Name: "app", VolumeMounts: []v1.VolumeMount{{Name: "content", MountPath: "/www"}}}},
			Volumes: []v1.Volume{{Name: "content", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
				LocalObjectReference: v1.LocalObjectReference{Name: "web"}}}}},
		},
	}
	vols, err := m.SetUp(ctx, pod)
	if err != nil {
		panic(err)
	}
	mounts, _ := m.ContainerMounts(pod, &pod.Spec.Containers[0], vols, nil)
	rel, _ := filepath.Rel(root, mounts[0].HostPath)
	fmt.Printf("%s -> %s (read-only: %t)\n", mounts[0].ContainerPath, rel, mounts[0].ReadOnly)
	page, _ := os.ReadFile(filepath.Join(vols["content"].Path, "index.html"))
	fmt.Println(string(page))

	// Run follows the source; a sync (SetUp again) writes what changed too.
	objs.SetConfigMap(&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Data: map[string]string{"index.html": "hello again"}})
	if _, err := m.SetUp(ctx, pod); err != nil {
		panic(err)
	}
	page, _ = os.ReadFile(filepath.Join(vols["content"].Path, "index.html"))
	fmt.Println(string(page))

	if err := m.TearDown(ctx, pod.UID); err != nil {
		panic(err)
	}
	_, err = os.Stat(vols["content"].Path)
	fmt.Println("torn down:", os.IsNotExist(err))
	// Output:
	// /www -> pods/uid-1/volumes/kubernetes.io~configmap/content (read-only: true)
	// hello
	// hello again
	// torn down: true
}

// helloPlugin serves the inline CSI volumes of a made-up driver: a directory
// holding one file. An embedder's plugin has the built-ins' shape: a name (its
// directory), which volumes it serves, and an idempotent SetUp.
type helloPlugin struct{}

func (helloPlugin) Name() string { return "example.com~hello" }

func (helloPlugin) Handles(v *v1.Volume) bool {
	return v.CSI != nil && v.CSI.Driver == "hello.example.com"
}

func (helloPlugin) SetUp(_ context.Context, r *volumes.Request) (volumes.Volume, error) {
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return volumes.Volume{}, err
	}
	msg := "hello, " + r.Pod.Name + "\n"
	if err := os.WriteFile(filepath.Join(r.Dir, "greeting"), []byte(msg), 0o644); err != nil {
		return volumes.Volume{}, err
	}
	return volumes.Volume{Path: r.Dir, ReadOnly: true}, nil
}

// An embedder adds a volume type; the manager removes what it left at
// TearDown.
func Example_plugin() {
	root, _ := os.MkdirTemp("", "volumes-example")
	defer os.RemoveAll(root)
	ctx := context.Background()
	m, err := volumes.New(volumes.Options{RootDir: root, Plugins: []volumes.Plugin{helloPlugin{}}})
	if err != nil {
		panic(err)
	}
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-2"},
		Spec: v1.PodSpec{Volumes: []v1.Volume{{Name: "greet", VolumeSource: v1.VolumeSource{
			CSI: &v1.CSIVolumeSource{Driver: "hello.example.com"}}}}},
	}
	vols, err := m.SetUp(ctx, pod)
	if err != nil {
		panic(err)
	}
	data, _ := os.ReadFile(filepath.Join(vols["greet"].Path, "greeting"))
	fmt.Print(string(data))
	fmt.Println(filepath.Base(filepath.Dir(vols["greet"].Path)))
	if err := m.TearDown(ctx, pod.UID); err != nil {
		panic(err)
	}
	// Output:
	// hello, web
	// example.com~hello
}
