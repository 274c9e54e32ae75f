package main

// Exit-to-event latency (-mode critest): how long after a container's init process
// dies does the runtime tell its client? The kubelet learns about exits through
// GetContainerEvents (evented PLEG) or by relisting every second (generic PLEG).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

type exitOptions struct {
	method string        // "events" or "status"
	n      int           // containers killed
	pods   int           // pods they are spread over
	gap    time.Duration // pause before each kill
	poll   time.Duration // ContainerStatus interval (status)
}

// exitResult is one runtime's exit latency by one method.
type exitResult struct {
	Runtime   string  `json:"runtime"`
	Method    string  `json:"method"`
	Supported bool    `json:"supported"`
	Note      string  `json:"note,omitempty"`
	Latency   summary `json:"kill_to_client"` // SIGKILL sent → the client has the event / sees EXITED
	// Events only: SIGKILL sent → the event's created_at (the runtime's clock,
	// the same host clock).
	Server  summary   `json:"kill_to_event_created"`
	Missed  int       `json:"missed"`
	Samples []float64 `json:"samples_ms,omitempty"`

	lat, server []time.Duration
}

func (e *exitResult) summarize() {
	e.Latency, e.Server = summarize(e.lat), summarize(e.server)
	e.Samples = e.Samples[:0]
	for _, d := range e.lat {
		e.Samples = append(e.Samples, float64(d.Microseconds())/1000)
	}
}

// timedEvent is an event and when the client received it.
type timedEvent struct {
	ev *runtime.ContainerEventResponse
	at time.Time
}

// subscribe opens GetContainerEvents and returns the events as they arrive. An
// error means the runtime does not serve it.
func (r *criRuntime) subscribe(ctx context.Context) (<-chan timedEvent, error) {
	stream, err := r.rt.GetContainerEvents(ctx, &runtime.GetEventsRequest{})
	if err != nil {
		return nil, err
	}
	// Header returns nil when the call ended at once (not implemented): Recv says why.
	if md, _ := stream.Header(); md == nil {
		if _, err := stream.Recv(); err != nil {
			return nil, err
		}
		return nil, errors.New("GetContainerEvents: stream ended without headers")
	}
	events := make(chan timedEvent, 8192)
	go func() {
		defer close(events)
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			events <- timedEvent{ev: ev, at: time.Now()}
		}
	}()
	return events, nil
}

// measureExits starts o.n `sleep 1000` containers in o.pods pods, then, one at a
// time, kills a container's init process with SIGKILL (through a pidfd, from
// here, not through the runtime) and times until the runtime reports it: a
// CONTAINER_STOPPED event (events) or ContainerStatus EXITED (status).
func measureExits(ctx context.Context, r *criRuntime, o exitOptions) (*exitResult, error) {
	res := &exitResult{Runtime: r.name, Method: o.method}
	defer res.summarize()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var events <-chan timedEvent
	if o.method == "events" {
		var err error
		if events, err = r.subscribe(sctx); err != nil {
			res.Note = "GetContainerEvents not served: " + status.Convert(err).Message()
			return res, nil
		}
	}
	res.Supported = true

	type ctr struct{ id, sandbox string }
	var pods []pod
	var ctrs []ctr
	defer func() {
		for _, p := range pods {
			_ = r.removePod(context.WithoutCancel(ctx), p)
		}
	}()
	perPod := (o.n + o.pods - 1) / o.pods
	for i := 0; len(ctrs) < o.n; i++ {
		label := fmt.Sprintf("exit-%s-%02d", o.method, i)
		cfg := r.podConfig(label)
		rs, err := r.rt.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: cfg})
		if err != nil {
			return res, fmt.Errorf("RunPodSandbox %s: %w", label, err)
		}
		p := pod{sandbox: rs.GetPodSandboxId(), cgroup: cfg.Linux.CgroupParent}
		pods = append(pods, p)
		if r.onPod != nil {
			r.onPod(p.sandbox)
		}
		for j := 0; j < perPod && len(ctrs) < o.n; j++ {
			cc := sleepContainer(fmt.Sprintf("sleep-%d", j))
			cr, err := r.rt.CreateContainer(ctx, &runtime.CreateContainerRequest{PodSandboxId: p.sandbox, Config: cc, SandboxConfig: cfg})
			if err != nil {
				return res, fmt.Errorf("CreateContainer in %s: %w", label, err)
			}
			if _, err := r.rt.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: cr.GetContainerId()}); err != nil {
				return res, fmt.Errorf("StartContainer in %s: %w", label, err)
			}
			ctrs = append(ctrs, ctr{id: cr.GetContainerId(), sandbox: p.sandbox})
		}
	}

	for i, c := range ctrs {
		pid, err := r.initPid(ctx, c.id)
		if err != nil {
			return res, err
		}
		pidfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			return res, fmt.Errorf("pidfd_open %d (container %.12s): %w", pid, c.id, err)
		}
		select {
		case <-time.After(o.gap):
		case <-ctx.Done():
			unix.Close(pidfd)
			return res, ctx.Err()
		}
		t0 := time.Now()
		err = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		unix.Close(pidfd)
		if err != nil {
			return res, fmt.Errorf("kill container %.12s (pid %d): %w", c.id, pid, err)
		}
		switch o.method {
		case "events":
			ev, err := waitEvent(ctx, events, c.id, runtime.ContainerEventType_CONTAINER_STOPPED_EVENT, 10*time.Second)
			if err != nil {
				res.Missed++
				if ctx.Err() != nil || res.Missed > 5 {
					return res, fmt.Errorf("exit %d (container %.12s): %w", i, c.id, err)
				}
				continue
			}
			res.lat = append(res.lat, ev.at.Sub(t0))
			res.server = append(res.server, time.Unix(0, ev.ev.GetCreatedAt()).Sub(t0))
		case "status":
			at, err := r.waitExited(ctx, c.id, o.poll, 10*time.Second)
			if err != nil {
				res.Missed++
				if ctx.Err() != nil || res.Missed > 5 {
					return res, fmt.Errorf("exit %d (container %.12s): %w", i, c.id, err)
				}
				continue
			}
			res.lat = append(res.lat, at.Sub(t0))
		}
	}
	return res, nil
}

// sleepContainer is a `sleep 1000` container with a PID namespace of its own.
func sleepContainer(name string) *runtime.ContainerConfig {
	return &runtime.ContainerConfig{
		Metadata: &runtime.ContainerMetadata{Name: name},
		Image:    &runtime.ImageSpec{Image: benchImage},
		Command:  []string{"sleep", "1000"},
		LogPath:  name + ".log",
		Linux: &runtime.LinuxContainerConfig{
			SecurityContext: &runtime.LinuxContainerSecurityContext{
				NamespaceOptions: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_CONTAINER},
			},
		},
	}
}

// initPid returns the host pid of a running container's init process, from
// ContainerStatus' verbose info ({"info": "{... \"pid\": N ...}"}: nodekit and
// containerd alike).
func (r *criRuntime) initPid(ctx context.Context, id string) (int, error) {
	st, err := r.rt.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		return 0, fmt.Errorf("ContainerStatus %.12s: %w", id, err)
	}
	if s := st.GetStatus().GetState(); s != runtime.ContainerState_CONTAINER_RUNNING {
		return 0, fmt.Errorf("container %.12s is %s, want running", id, s)
	}
	return infoPid(st.GetInfo())
}

func infoPid(info map[string]string) (int, error) {
	var v struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(info["info"]), &v); err != nil {
		return 0, fmt.Errorf("verbose ContainerStatus info: %w", err)
	}
	if v.Pid <= 0 {
		return 0, fmt.Errorf("verbose ContainerStatus info has no pid: %.200s", info["info"])
	}
	return v.Pid, nil
}

// waitEvent returns the first event of type typ for container id.
func waitEvent(ctx context.Context, events <-chan timedEvent, id string, typ runtime.ContainerEventType, limit time.Duration) (timedEvent, error) {
	timeout := time.After(limit)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return timedEvent{}, errors.New("event stream ended")
			}
			if ev.ev.GetContainerId() == id && ev.ev.GetContainerEventType() == typ {
				return ev, nil
			}
		case <-timeout:
			return timedEvent{}, fmt.Errorf("no %s within %s", typ, limit)
		case <-ctx.Done():
			return timedEvent{}, ctx.Err()
		}
	}
}

// waitExited polls ContainerStatus every interval until the container is EXITED
// and returns when the answer arrived.
func (r *criRuntime) waitExited(ctx context.Context, id string, interval, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		st, err := r.rt.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: id})
		at := time.Now()
		if err != nil {
			return at, fmt.Errorf("ContainerStatus: %w", err)
		}
		if st.GetStatus().GetState() == runtime.ContainerState_CONTAINER_EXITED {
			return at, nil
		}
		if at.After(deadline) {
			return at, fmt.Errorf("still %s %s after SIGKILL", st.GetStatus().GetState(), limit)
		}
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return at, ctx.Err()
		}
	}
}
