package monitor_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nodekit-dev/nodekit/cri/monitor"
)

// The shim starts a container under a monitor, then learns of its exit from the
// exit file, even across its own restarts. (Needs root, runc and a prepared
// bundle, so it has no output to check.)
func ExampleStart() {
	state := "/run/nodekit/containers/c1"
	cfg := monitor.Config{
		ID:           "c1",
		Bundle:       state + "/bundle", // config.json + mounted rootfs
		Runtime:      "/usr/bin/runc",
		RuntimeRoot:  "/run/nodekit/runc",
		LogPath:      "/var/log/pods/default_web_uid/app/0.log",
		ExitFile:     state + "/exit.json",
		PidFile:      state + "/pid",
		DeleteOnExit: true,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := monitor.Start(ctx, "/usr/libexec/nodekit/nodekit-monitor", state, cfg)
	if err != nil {
		fmt.Println(err) // e.g. runc's `exec: "nope": executable file not found in $PATH`
		return
	}
	go func() { _, _ = p.Monitor.Wait() }() // reap the monitor when it is done
	fmt.Println("running as pid", p.ContainerPid)
}

func ExampleReadExit() {
	dir, _ := os.MkdirTemp("", "monitor-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "exit.json")

	if _, err := monitor.ReadExit(path); errors.Is(err, os.ErrNotExist) {
		fmt.Println("still running")
	}
	// What a monitor writes when the container init is killed by SIGKILL.
	if err := os.WriteFile(path, []byte(`{"pid":4242,"exitCode":137,"signal":9,"finishedAt":"2024-05-01T10:00:00Z","oomKilled":true}`), 0o644); err != nil {
		panic(err)
	}
	exit, err := monitor.ReadExit(path)
	if err != nil {
		panic(err)
	}
	fmt.Println(exit.ExitCode, exit.Signal, exit.OOMKilled, exit.FinishedAt.Format(time.RFC3339))
	// Output:
	// still running
	// 137 9 true 2024-05-01T10:00:00Z
}

// The shim attaches a client to a running container's stdio through its monitor:
// what the container writes goes to os.Stdout and os.Stderr until it exits, and
// os.Stdin feeds the container's stdin (it was started with Config.Stdin). (Needs
// a running container, so it has no output to check.)
func ExampleAttach() {
	err := monitor.Attach(context.Background(), "/run/nodekit/containers/c1/attach.sock", monitor.AttachIO{
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
	})
	if errors.Is(err, monitor.ErrNotAttachable) {
		fmt.Println("the container is not running")
	}
}
