package podruntime

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestTerminationMessage(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var log strings.Builder
	for i := range 100 {
		log.WriteString("2025-01-01T00:00:00.000000000Z stdout F line " + itoa3(i) + "\n")
	}
	log.WriteString("2025-01-01T00:00:00.000000000Z stderr P par\n2025-01-01T00:00:00.000000000Z stderr F tial\n")
	logPath := write("0.log", log.String())
	big := write("big", strings.Repeat("x", 5000)+"END")
	msg := write("msg", "done: 42")
	empty := write("empty", "")

	status := func(file, policy string, exit int32) *runtimeapi.ContainerStatus {
		return &runtimeapi.ContainerStatus{
			Id: file + policy + string('0'+exit), State: runtimeapi.ContainerState_CONTAINER_EXITED, ExitCode: exit, LogPath: logPath,
			Annotations: map[string]string{AnnotationTerminationMessagePath: "/dev/termination-log", AnnotationTerminationMessagePolicy: policy},
			Mounts:      []*runtimeapi.Mount{{ContainerPath: "/dev/termination-log", HostPath: file}},
		}
	}
	e := newEnv(t)
	file, fallback := string(v1.TerminationMessageReadFile), string(v1.TerminationMessageFallbackToLogsOnError)

	if got := e.m.TerminationMessage(status(msg, file, 1)); got != "done: 42" {
		t.Errorf("file message %q", got)
	}
	if got := e.m.TerminationMessage(status(big, file, 0)); len(got) != 4096 || !strings.HasSuffix(got, "END") {
		t.Errorf("big message: %d bytes, want the last 4096", len(got))
	}
	if got := e.m.TerminationMessage(status(empty, file, 1)); got != "" {
		t.Errorf("empty file, policy File: %q", got)
	}
	if got := e.m.TerminationMessage(status(empty, fallback, 0)); got != "" {
		t.Errorf("empty file, fallback, success: %q, want nothing (only failures read the log)", got)
	}
	got := e.m.TerminationMessage(status(empty, fallback, 2))
	if !strings.HasSuffix(got, "line 099\npartial\n") || strings.Contains(got, "line 020\n") || len(got) > 2048 {
		t.Errorf("fallback to logs: %d bytes ending %q", len(got), got[max(0, len(got)-40):])
	}
	if lines := strings.Count(got, "\n"); lines > 80 {
		t.Errorf("fallback to logs: %d lines, want at most 80", lines)
	}
	if got := e.m.TerminationMessage(status(msg, fallback, 2)); got != "done: 42" {
		t.Errorf("fallback with a message file: %q", got)
	}

	// Read once, then cached: a later change of the file is not seen.
	st := status(msg, file, 1)
	st.Id = "cached"
	e.m.TerminationMessage(st)
	write("msg", "changed")
	if got := e.m.TerminationMessage(st); got != "done: 42" {
		t.Errorf("cached message %q", got)
	}
	running := status(msg, file, 0)
	running.State = runtimeapi.ContainerState_CONTAINER_RUNNING
	if got := e.m.TerminationMessage(running); got != "" {
		t.Errorf("running container message %q", got)
	}
}

func itoa3(i int) string {
	return string([]byte{byte('0' + i/100), byte('0' + i/10%10), byte('0' + i%10)})
}

func TestGarbageCollect(t *testing.T) {
	e := newEnv(t)
	pod := newPod("p", "app")
	e.sync(pod)
	for range 3 {
		ids := e.rt.containerIDs("app")
		e.rt.exit(t, ids[len(ids)-1], 1, e.clock.Now())
		e.clock.Step(time.Hour) // past any back-off
		if res := e.sync(pod); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	ids := e.rt.containerIDs("app") // #0..#3, #3 running
	if len(ids) != 4 {
		t.Fatalf("instances %v", ids)
	}
	logOf := func(id string) string {
		return filepath.Join(e.logs, "default_p_uid-p", e.rt.configs[id].LogPath)
	}
	for _, id := range ids {
		if err := os.WriteFile(logOf(id), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.m.GarbageCollect(context.Background(), inspect(e.rt, pod.UID)); err != nil {
		t.Fatal(err)
	}
	left := e.rt.containerIDs("app")
	if len(left) != 2 || left[0] != ids[2] || left[1] != ids[3] {
		t.Fatalf("left %v, want the running one and the newest exited (%s)", left, ids[2])
	}
	for i, id := range ids {
		_, err := os.Stat(logOf(id))
		if kept := i >= 2; kept != (err == nil) {
			t.Errorf("log of instance %d: %v (kept %t)", i, err, kept)
		}
	}

	// An old stopped sandbox without containers goes; the newest stays.
	e.rt.Lock()
	for _, s := range e.rt.Sandboxes {
		s.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	}
	e.rt.Unlock()
	e.sync(pod) // new sandbox (attempt 1)
	// An unrelated pod: no effect.
	if err := e.m.RemovePod(context.Background(), "nothing"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.GarbageCollect(context.Background(), inspect(e.rt, pod.UID)); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.rt.Sandboxes["p_default_uid-p_0"]; !ok {
		t.Error("sandbox 0 still holds containers and must stay")
	}
}

func TestRemovePod(t *testing.T) {
	e := newEnv(t)
	pod := newPod("p", "app")
	pod.Spec.Volumes = []v1.Volume{{Name: "d", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
	other := newPod("o", "app")
	e.sync(pod)
	e.sync(other)
	e.rt.exit(t, e.rt.containerIDs("app")[0], 1, e.clock.Now())
	e.sync(pod) // a restart: back-off state exists

	ctx := context.Background()
	if err := e.m.KillPod(ctx, pod, inspect(e.rt, pod.UID), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.m.RemovePod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if rs := inspect(e.rt, pod.UID); len(rs.ContainerStatuses) != 0 || len(rs.SandboxStatuses) != 0 {
		t.Errorf("left in the runtime: %d containers, %d sandboxes", len(rs.ContainerStatuses), len(rs.SandboxStatuses))
	}
	for _, p := range []string{filepath.Join(e.root, "pods", "uid-p"), filepath.Join(e.logs, "default_p_uid-p")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists (%v)", p, err)
		}
	}
	if rs := inspect(e.rt, other.UID); len(rs.ContainerStatuses) != 1 {
		t.Error("another pod's containers were touched")
	}
	if _, err := os.Stat(filepath.Join(e.logs, "default_o_uid-o")); err != nil {
		t.Errorf("another pod's logs: %v", err)
	}
	if e.m.crashLoop.delay(backOffKey(pod, &pod.Spec.Containers[0])) != 0 {
		t.Error("back-off of the removed pod is remembered")
	}
	// Again: nothing left, no error.
	if err := e.m.RemovePod(ctx, pod.UID); err != nil {
		t.Errorf("second RemovePod: %v", err)
	}
}
