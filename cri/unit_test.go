package cri

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestContainerFilters(t *testing.T) {
	rec := &containerRecord{
		ID:        "abcdef0123",
		SandboxID: "5a5a5a",
		State:     runtime.ContainerState_CONTAINER_RUNNING,
		Config:    &runtime.ContainerConfig{Labels: map[string]string{"app": "web", "tier": "front"}},
	}
	state := func(s runtime.ContainerState) *runtime.ContainerStateValue {
		return &runtime.ContainerStateValue{State: s}
	}
	for _, c := range []struct {
		name string
		f    *runtime.ContainerFilter
		want bool
	}{
		{"nil filter", nil, true},
		{"empty filter", &runtime.ContainerFilter{}, true},
		{"exact id", &runtime.ContainerFilter{Id: "abcdef0123"}, true},
		{"id prefix", &runtime.ContainerFilter{Id: "abc"}, true},
		{"other id", &runtime.ContainerFilter{Id: "abd"}, false},
		{"sandbox prefix", &runtime.ContainerFilter{PodSandboxId: "5a5"}, true},
		{"other sandbox", &runtime.ContainerFilter{PodSandboxId: "6"}, false},
		{"state running", &runtime.ContainerFilter{State: state(runtime.ContainerState_CONTAINER_RUNNING)}, true},
		{"state created", &runtime.ContainerFilter{State: state(runtime.ContainerState_CONTAINER_CREATED)}, false},
		{"one label", &runtime.ContainerFilter{LabelSelector: map[string]string{"app": "web"}}, true},
		{"all labels", &runtime.ContainerFilter{LabelSelector: map[string]string{"app": "web", "tier": "front"}}, true},
		{"label value differs", &runtime.ContainerFilter{LabelSelector: map[string]string{"app": "db"}}, false},
		{"label missing", &runtime.ContainerFilter{LabelSelector: map[string]string{"zone": "a"}}, false},
		{"all match but state", &runtime.ContainerFilter{Id: "abc", LabelSelector: map[string]string{"app": "web"}, State: state(runtime.ContainerState_CONTAINER_EXITED)}, false},
	} {
		if got := containerMatches(c.f, rec); got != c.want {
			t.Errorf("%s: match = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestResolveIDPrefix(t *testing.T) {
	m := map[string]int{"abc123": 1, "abd456": 2, "ffff00": 3}
	for _, c := range []struct {
		id, want string
		code     codes.Code
	}{
		{"abc123", "abc123", codes.OK},
		{"abc", "abc123", codes.OK},
		{"f", "ffff00", codes.OK},
		{"ab", "", codes.InvalidArgument},
		{"zz", "", codes.OK},
	} {
		got, err := resolve(m, c.id)
		if status.Code(err) != c.code || got != c.want {
			t.Errorf("resolve(%q) = %q, %v; want %q, %v", c.id, got, err, c.want, c.code)
		}
	}
}

func TestNameReservation(t *testing.T) {
	o := newObjects()
	md := &runtime.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "u1", Attempt: 0}
	key := sandboxNameKey(md)
	if err := o.reserve(key, "id1", "pod sandbox"); err != nil {
		t.Fatal(err)
	}
	err := o.reserve(key, "id2", "pod sandbox")
	if status.Code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), "id1") {
		t.Fatalf("second reservation: %v", err)
	}
	// Another attempt is another name.
	md2 := &runtime.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "u1", Attempt: 1}
	if err := o.reserve(sandboxNameKey(md2), "id2", "pod sandbox"); err != nil {
		t.Fatal(err)
	}
	o.release(key, "id1")
	if err := o.reserve(key, "id3", "pod sandbox"); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	sb := &sandboxRecord{
		ID: "sb1", State: runtime.PodSandboxState_SANDBOX_READY, CreatedAt: 42,
		Config:    &runtime.PodSandboxConfig{Metadata: &runtime.PodSandboxMetadata{Name: "p", Namespace: "n", Uid: "u"}, Labels: map[string]string{"a": "b"}},
		Namespace: map[string]string{"net": "/run/x/net"}, Cgroup: "/nodekit/podsb1", OwnCgroup: true,
	}
	p := filepath.Join(dir, "sandbox.json")
	if err := writeSandboxRecord(p, sb); err != nil {
		t.Fatal(err)
	}
	got, err := readSandboxRecord(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "sb1" || got.Config.GetMetadata().GetName() != "p" || got.Config.GetLabels()["a"] != "b" || got.Namespace["net"] != "/run/x/net" || !got.OwnCgroup {
		t.Fatalf("sandbox record round trip: %+v", got)
	}
	c := &containerRecord{
		ID: "c1", SandboxID: "sb1", State: runtime.ContainerState_CONTAINER_EXITED, ExitCode: 137, Reason: "OOMKilled",
		Config: &runtime.ContainerConfig{Metadata: &runtime.ContainerMetadata{Name: "app"}, Image: &runtime.ImageSpec{Image: "busybox"}},
		User:   &runtime.ContainerUser{Linux: &runtime.LinuxContainerUser{Uid: 33, Gid: 33, SupplementalGroups: []int64{1, 2}}},
	}
	p = filepath.Join(dir, "container.json")
	if err := writeContainerRecord(p, c); err != nil {
		t.Fatal(err)
	}
	gc, err := readContainerRecord(p)
	if err != nil {
		t.Fatal(err)
	}
	if gc.ExitCode != 137 || gc.Reason != "OOMKilled" || gc.Config.GetImage().GetImage() != "busybox" || gc.User.GetLinux().GetUid() != 33 || len(gc.User.GetLinux().GetSupplementalGroups()) != 2 {
		t.Fatalf("container record round trip: %+v", gc)
	}
}

func TestCgroupDrivers(t *testing.T) {
	fs := newCgroupDriver(CgroupfsDriver, "")
	parent, own, err := fs.podParent("abc", "")
	if err != nil || parent != "/nodekit/podabc" || !own {
		t.Fatalf("cgroupfs default parent: %q %v %v", parent, own, err)
	}
	parent, own, err = fs.podParent("abc", "/kubepods/burstable/pod123")
	if err != nil || parent != "/kubepods/burstable/pod123" || own {
		t.Fatalf("cgroupfs given parent: %q %v %v", parent, own, err)
	}
	if _, _, err := fs.podParent("abc", "kubepods-pod1.slice"); err == nil {
		t.Fatal("cgroupfs accepted a slice name")
	}
	if p := fs.containerPath("/kubepods/pod1", "c1"); p != "/kubepods/pod1/c1" {
		t.Fatalf("cgroupfs container path %q", p)
	}
	if fs.kind() != runtime.CgroupDriver_CGROUPFS {
		t.Fatal("cgroupfs kind")
	}

	sd := newCgroupDriver(SystemdDriver, "")
	parent, own, err = sd.podParent("0123456789abcdef", "")
	if err != nil || parent != "nodekit-pod0123456789ab.slice" || !own {
		t.Fatalf("systemd default parent: %q %v %v", parent, own, err)
	}
	parent, _, err = sd.podParent("x", "kubepods-besteffort-pod1.slice")
	if err != nil || parent != "kubepods-besteffort-pod1.slice" {
		t.Fatalf("systemd given parent: %q %v", parent, err)
	}
	if _, _, err := sd.podParent("x", "/kubepods/pod1"); err == nil {
		t.Fatal("systemd accepted a cgroupfs path")
	}
	if p := sd.containerPath("kubepods-pod1.slice", "c1"); p != "kubepods-pod1.slice:nodekit:c1" {
		t.Fatalf("systemd container path %q", p)
	}
	if sd.kind() != runtime.CgroupDriver_SYSTEMD {
		t.Fatal("systemd kind")
	}
}

// Removing an owned pod cgroup removes it from every hierarchy, on a fake tree.
func TestCgroupfsRemovePodOnFakeTree(t *testing.T) {
	root := t.TempDir()
	mounts := []string{filepath.Join(root, "memory"), filepath.Join(root, "cpu"), filepath.Join(root, "unified")}
	d := fsCgroups{parent: "/nodekit", mounts: func() ([]string, error) { return mounts, nil }}
	parent, _, _ := d.podParent("p1", "")
	for _, m := range mounts[:2] {
		if err := mkdirAll(filepath.Join(m, parent)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.removePod(parent); err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if exists(filepath.Join(m, parent)) {
			t.Errorf("%s still exists", filepath.Join(m, parent))
		}
	}
	if !exists(filepath.Join(mounts[0], "nodekit")) {
		t.Error("the shared default parent was removed")
	}
}

func TestResolvConf(t *testing.T) {
	got, err := resolvConf(&runtime.DNSConfig{Servers: []string{"10.0.0.10", "1.1.1.1"}, Searches: []string{"ns.svc.cluster.local", "svc.cluster.local"}, Options: []string{"ndots:5"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "search ns.svc.cluster.local svc.cluster.local\nnameserver 10.0.0.10\nnameserver 1.1.1.1\noptions ndots:5\n"
	if string(got) != want {
		t.Fatalf("resolv.conf:\n%s\nwant:\n%s", got, want)
	}
}

func TestImageUser(t *testing.T) {
	for _, c := range []struct {
		user string
		uid  int64
		name string
	}{
		{"", -1, ""}, {"0", 0, ""}, {"1000:1000", 1000, ""}, {"www-data", -1, "www-data"}, {"nobody:nogroup", -1, "nobody"},
	} {
		uid, name := imageUser(c.user)
		gotUID := int64(-1)
		if uid != nil {
			gotUID = *uid
		}
		if gotUID != c.uid || name != c.name {
			t.Errorf("imageUser(%q) = %d %q, want %d %q", c.user, gotUID, name, c.uid, c.name)
		}
	}
}

func TestStopSignal(t *testing.T) {
	for in, want := range map[string]unix.Signal{
		"": unix.SIGTERM, "SIGQUIT": unix.SIGQUIT, "QUIT": unix.SIGQUIT, "9": unix.SIGKILL, "SIGRTMIN+3": unix.Signal(37), "RTMAX-2": unix.Signal(62), "SIGRTMAX+1": unix.SIGTERM, "65": unix.SIGTERM, "bogus": unix.SIGTERM, "SIGINT": unix.SIGINT,
	} {
		if got := stopSignal(in); got != want {
			t.Errorf("stopSignal(%q) = %v, want %v", in, got, want)
		}
	}
}

// The container's config (the pod's lifecycle.stopSignal) names the stop signal
// before the image does, and every CRI signal maps to its number and back.
func TestContainerStopSignal(t *testing.T) {
	quit := &runtime.ContainerConfig{StopSignal: runtime.Signal_SIGNAL_SIGQUIT}
	if got := containerStopSignal(quit, "SIGUSR1"); got != "SIGQUIT" {
		t.Errorf("config SIGQUIT, image SIGUSR1: %q, want SIGQUIT", got)
	}
	if got := containerStopSignal(&runtime.ContainerConfig{}, "SIGUSR1"); got != "SIGUSR1" {
		t.Errorf("no config signal, image SIGUSR1: %q", got)
	}
	rt := &runtime.ContainerConfig{StopSignal: runtime.Signal_SIGNAL_SIGRTMINPLUS3}
	if got := containerStopSignal(rt, ""); got != "SIGRTMIN+3" || stopSignal(got) != unix.Signal(37) {
		t.Errorf("SIGRTMINPLUS3: %q (%d)", got, stopSignal(got))
	}
	for v := range runtime.Signal_name {
		sig := runtime.Signal(v)
		if sig == runtime.Signal_SIGNAL_RUNTIME_DEFAULT {
			continue
		}
		name := criSignalName(sig)
		num, ok := parseSignal(name)
		if !ok {
			t.Errorf("%v: name %q does not parse", sig, name)
			continue
		}
		if back := criSignal(num); back != sig && stopSignal(criSignalName(back)) != num {
			t.Errorf("%v (%q, %d) maps back to %v", sig, name, num, back)
		}
	}
	// The status reports the CRI value, not the signal's number as a CRI value.
	if got := criSignal(unix.SIGQUIT); got != runtime.Signal_SIGNAL_SIGQUIT {
		t.Errorf("criSignal(SIGQUIT) = %v", got)
	}
	if got := criSignal(unix.SIGCHLD); got != runtime.Signal_SIGNAL_SIGCHLD {
		t.Errorf("criSignal(SIGCHLD) = %v, want SIGCHLD (not its alias SIGCLD)", got)
	}
}

func TestCappedBuffer(t *testing.T) {
	b := &cappedBuffer{max: 5}
	for _, s := range []string{"ab", "cdef", "gh"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if b.String() != "abcde" {
		t.Fatalf("capped buffer holds %q", b.String())
	}
}

// TestBinariesMadeAbsolute: the monitors run the OCI runtime and the monitor
// from other directories, so a relative --runtime or --monitor is resolved
// against the working directory at start, a bare name in PATH.
func TestBinariesMadeAbsolute(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"myrunc", "mymonitor"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	t.Setenv("PATH", dir)
	o := Options{Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state"), Runtime: "./myrunc", Monitor: "mymonitor"}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	if o.Runtime != filepath.Join(dir, "myrunc") || o.Monitor != filepath.Join(dir, "mymonitor") {
		t.Errorf("runtime %q, monitor %q; want both absolute in %s", o.Runtime, o.Monitor, dir)
	}
	o = Options{Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state"), Runtime: "missing/runc", Monitor: "mymonitor"}
	if err := o.defaults(); err == nil || !strings.Contains(err.Error(), "missing/runc") {
		t.Errorf("a missing runtime: got %v, want an error naming it", err)
	}
}
