package volumes

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func ptr[T any](v T) *T { return &v }

func testPod(uid string, vols ...v1.Volume) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: types.UID(uid),
			Labels: map[string]string{"app": "web", "tier": "front"}, Annotations: map[string]string{"note": "a \"quoted\" value"}},
		Spec: v1.PodSpec{
			Containers: []v1.Container{{Name: "app", Resources: v1.ResourceRequirements{
				Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m")},
			}}},
			Volumes: vols,
		},
	}
}

func newManager(t *testing.T, objs *fakeObjects) (*Manager, string) {
	t.Helper()
	root := t.TempDir()
	o := Options{RootDir: root, Node: NodeInfo{Name: "node1", Allocatable: v1.ResourceList{
		v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("1Gi")}}}
	if objs != nil {
		o.Objects = objs
	}
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return m, root
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCheckHostPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ty := func(x v1.HostPathType) *v1.HostPathType { return &x }
	tests := []struct {
		path string
		typ  *v1.HostPathType
		msg  string // "" means accepted
	}{
		{filepath.Join(dir, "missing"), nil, ""},
		{dir, ty(v1.HostPathDirectory), ""},
		{file, ty(v1.HostPathDirectory), "hostPath type check failed: " + file + " is not a directory"},
		{filepath.Join(dir, "missing"), ty(v1.HostPathDirectory), "is not a directory"},
		{filepath.Join(dir, "new/dir"), ty(v1.HostPathDirectoryOrCreate), ""},
		{file, ty(v1.HostPathDirectoryOrCreate), "is not a directory"},
		{file, ty(v1.HostPathFile), ""},
		{dir, ty(v1.HostPathFile), "hostPath type check failed: " + dir + " is not a file"},
		{filepath.Join(dir, "newfile"), ty(v1.HostPathFileOrCreate), ""},
		{filepath.Join(dir, "nodir", "newfile"), ty(v1.HostPathFileOrCreate), "create file"},
		{file, ty(v1.HostPathSocket), "is not a socket file"},
		{"/dev/null", ty(v1.HostPathCharDev), ""},
		{file, ty(v1.HostPathCharDev), "is not a character device"},
		{file, ty(v1.HostPathBlockDev), "is not a block device"},
		{"relative", nil, "not an absolute path"},
	}
	for _, tt := range tests {
		err := checkHostPath(tt.path, tt.typ)
		switch {
		case tt.msg == "" && err != nil:
			t.Errorf("checkHostPath(%s, %v) = %v, want ok", tt.path, tt.typ, err)
		case tt.msg != "" && (err == nil || !strings.Contains(err.Error(), tt.msg)):
			t.Errorf("checkHostPath(%s, %v) = %v, want %q", tt.path, tt.typ, err, tt.msg)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "new/dir")); err != nil || !fi.IsDir() {
		t.Error("DirectoryOrCreate did not create the directory")
	}
	if fi, err := os.Stat(filepath.Join(dir, "newfile")); err != nil || !fi.Mode().IsRegular() {
		t.Error("FileOrCreate did not create the file")
	}
}

// TestConfigMapVolume: every key, items with paths and modes, updates and
// removed keys, optional sources and the kubelet's messages (no root: a
// configMap volume lives on disk).
func TestConfigMapVolume(t *testing.T) {
	objs := newFakeObjects()
	objs.setConfigMap("default", "web", map[string]string{"index.html": "v1", "nginx.conf": "listen 80;"})
	m, root := newManager(t, objs)
	ctx := context.Background()
	pod := testPod("u1",
		v1.Volume{Name: "all", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "web"}, DefaultMode: ptr(int32(0o640))}}},
		v1.Volume{Name: "some", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "web"},
			Items:                []v1.KeyToPath{{Key: "nginx.conf", Path: "conf/server.conf", Mode: ptr(int32(0o600))}}}}},
		v1.Volume{Name: "opt", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "absent"}, Optional: ptr(true)}}},
	)
	vols, err := m.SetUp(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	all := filepath.Join(root, "pods", "u1", "volumes", ConfigMapPlugin, "all")
	if vols["all"].Path != all || !vols["all"].ReadOnly {
		t.Errorf("volume all = %+v, want %s read-only", vols["all"], all)
	}
	if got := readFile(t, filepath.Join(all, "index.html")); got != "v1" {
		t.Errorf("index.html = %q", got)
	}
	if fi, err := os.Stat(filepath.Join(all, "nginx.conf")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("nginx.conf mode %v (%v), want 0640", fi.Mode(), err)
	}
	some := vols["some"].Path
	if got := readFile(t, filepath.Join(some, "conf/server.conf")); got != "listen 80;" {
		t.Errorf("conf/server.conf = %q", got)
	}
	if fi, _ := os.Stat(filepath.Join(some, "conf/server.conf")); fi.Mode().Perm() != 0o600 {
		t.Errorf("item mode %v, want 0600", fi.Mode())
	}
	if _, err := os.Stat(filepath.Join(some, "index.html")); !os.IsNotExist(err) {
		t.Error("a key not in items was written")
	}
	if entries, _ := os.ReadDir(vols["opt"].Path); len(entries) != 0 && !onlyLayout(entries) {
		t.Errorf("optional missing configMap: %v, want an empty volume", entries)
	}

	// An update: new content, a removed key disappears.
	objs.setConfigMap("default", "web", map[string]string{"index.html": "v2"})
	if _, err := m.SetUp(ctx, pod); err == nil || !strings.Contains(err.Error(), "configmap default/web references non-existent config key: nginx.conf") {
		t.Errorf("missing item key: %v", err)
	}
	if got := readFile(t, filepath.Join(all, "index.html")); got != "v2" {
		t.Errorf("after the update index.html = %q, want v2", got)
	}
	if _, err := os.Lstat(filepath.Join(all, "nginx.conf")); !os.IsNotExist(err) {
		t.Error("a removed key is still visible")
	}

	// A missing non-optional configMap: the kubelet's message, naming the volume.
	bad := testPod("u2", v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: "nope"}}}})
	_, err = m.SetUp(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), `MountVolume.SetUp failed for volume "cfg"`) || !strings.Contains(err.Error(), `configmaps "nope" not found`) {
		t.Errorf("missing configMap: %v", err)
	}
	// Modes out of range and bad item paths are refused, naming the field.
	for name, src := range map[string]*v1.ConfigMapVolumeSource{
		"items[0].mode": {LocalObjectReference: v1.LocalObjectReference{Name: "web"}, Items: []v1.KeyToPath{{Key: "index.html", Path: "i", Mode: ptr(int32(0o1777))}}},
		"defaultMode":   {LocalObjectReference: v1.LocalObjectReference{Name: "web"}, DefaultMode: ptr(int32(-1))},
		"items[0].path": {LocalObjectReference: v1.LocalObjectReference{Name: "web"}, Items: []v1.KeyToPath{{Key: "index.html", Path: "../escape"}}},
	} {
		p := testPod("u3", v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: src}})
		if _, err := m.SetUp(ctx, p); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// onlyLayout says entries are only the atomic writer's own (..data and a
// version directory).
func onlyLayout(entries []os.DirEntry) bool {
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") {
			return false
		}
	}
	return true
}

func TestDownwardAPIPayload(t *testing.T) {
	pod := testPod("u1")
	pod.Spec.Containers[0].Resources.Limits[v1.ResourceCPU] = resource.MustParse("500m")
	r := &Request{Pod: pod, Node: NodeInfo{Allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("2")}}}
	items := []v1.DownwardAPIVolumeFile{
		{Path: "labels", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
		{Path: "annotations", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.annotations"}},
		{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}},
		{Path: "ns", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
		{Path: "uid", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.uid"}, Mode: ptr(int32(0o400))},
		{Path: "tier", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['tier']"}},
		{Path: "res/cpu_limit_m", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.cpu", Divisor: resource.MustParse("1m")}},
		{Path: "res/mem_limit", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
		{Path: "res/cpu_request", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "app", Resource: "requests.cpu"}},
	}
	got, err := downwardPayload(r, items, ptr(int32(0o644)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"labels":          "app=\"web\"\ntier=\"front\"",
		"annotations":     `note="a \"quoted\" value"`,
		"name":            "p",
		"ns":              "default",
		"uid":             "u1",
		"tier":            "front",
		"res/cpu_limit_m": "500",
		"res/mem_limit":   "64",
		"res/cpu_request": "1",
	}
	for k, v := range want {
		if string(got[k].Data) != v {
			t.Errorf("%s = %q, want %q", k, got[k].Data, v)
		}
	}
	if got["uid"].Mode != 0o400 || got["name"].Mode != 0o644 {
		t.Errorf("modes: uid %v name %v", got["uid"].Mode, got["name"].Mode)
	}
	if _, err := downwardPayload(r, []v1.DownwardAPIVolumeFile{{Path: "x", ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.cpu"}}}, nil); err == nil || !strings.Contains(err.Error(), "containerName is required") {
		t.Errorf("resourceFieldRef without containerName: %v", err)
	}
	if _, err := downwardPayload(r, []v1.DownwardAPIVolumeFile{{Path: "x", FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.nope"}}}, nil); err == nil || !strings.Contains(err.Error(), "items[0]") {
		t.Errorf("bad fieldPath: %v", err)
	}
}

func TestMemorySize(t *testing.T) {
	alloc := v1.ResourceList{v1.ResourceMemory: resource.MustParse("1Gi")}
	pod := testPod("u") // 64Mi limit on its only container
	if got := memorySize(pod, nil, alloc); got != 64<<20 {
		t.Errorf("pod limit: %d, want 64Mi", got)
	}
	if got := memorySize(pod, ptr(resource.MustParse("8Mi")), alloc); got != 8<<20 {
		t.Errorf("sizeLimit: %d, want 8Mi", got)
	}
	if got := memorySize(pod, ptr(resource.MustParse("2Gi")), alloc); got != 64<<20 {
		t.Errorf("sizeLimit above the pod limit: %d, want 64Mi", got)
	}
	pod.Spec.Containers = append(pod.Spec.Containers, v1.Container{Name: "nolimit"})
	if got := memorySize(pod, nil, alloc); got != 1<<30 {
		t.Errorf("a container without a limit: %d, want allocatable", got)
	}
}

func TestValidSubPath(t *testing.T) {
	for _, ok := range []string{"a", "a/b", "a/./b", "..a", "a..b"} {
		if err := validSubPath(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"/etc", "../x", "a/../../x", "a/.."} {
		if err := validSubPath(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestRunFollowsChanges: a changed configMap reaches the volume at once while
// Run runs (no sync of the pod in between).
func TestRunFollowsChanges(t *testing.T) {
	objs := newFakeObjects()
	objs.setConfigMap("default", "web", map[string]string{"k": "v1"})
	m, _ := newManager(t, objs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() { defer close(done); m.Run(ctx) }()
	pod := testPod("u1", v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: "web"}}}})
	vols, err := m.SetUp(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	// Run subscribes as it starts.
	poll(t, "Run subscribed", func() bool { objs.mu.Lock(); defer objs.mu.Unlock(); return len(objs.subs) > 0 })
	objs.setConfigMap("default", "web", map[string]string{"k": "v2"})
	file := filepath.Join(vols["cfg"].Path, "k")
	poll(t, "the change in the volume", func() bool { b, _ := os.ReadFile(file); return string(b) == "v2" })
	// TearDown forgets the pod: later changes write nothing.
	if err := m.TearDown(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(vols["cfg"].Path)); !os.IsNotExist(err) {
		t.Errorf("volume directory left after TearDown: %v", err)
	}
}

// poll waits for cond, failing t after a generous deadline.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
