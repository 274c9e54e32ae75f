package cri

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sandbox is a pod sandbox in memory. op serializes lifecycle operations on it;
// mu guards rec, which only Server.updateSandbox replaces (state on disk before
// it is published). What never changes is also kept outside rec, readable
// without the lock.
type sandbox struct {
	op  sync.Mutex
	mu  sync.Mutex
	rec *sandboxRecord

	id       string
	metadata *runtime.PodSandboxMetadata
}

func newSandbox(rec *sandboxRecord) *sandbox {
	return &sandbox{rec: rec, id: rec.ID, metadata: rec.Config.GetMetadata()}
}

func (sb *sandbox) snapshot() sandboxRecord {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return *sb.rec
}

// container is a container in memory. op serializes lifecycle operations; mu
// guards rec, which only Server.updateContainer replaces (state on disk before it
// is published), and exited, which closes when a record saying the container
// exited is published, while an operation such as StopContainer waits for it.
// What never changes is also kept outside rec, readable without the lock.
type container struct {
	op     sync.Mutex
	mu     sync.Mutex
	rec    *containerRecord
	exited chan struct{} // closed once the exit is recorded

	id, sandboxID string
	layers        []string      // rootfs layers
	imageVolumes  []imageVolume // immutable after create

	// released is closed once what an exited container held on the node is
	// given back: its monitor has exited, the runtime's state is deleted and
	// the rootfs and image volumes are unmounted (see Server.release).
	released    chan struct{}
	releaseOnce sync.Once
}

func newContainer(rec *containerRecord) *container {
	c := &container{
		rec: rec, exited: make(chan struct{}), released: make(chan struct{}),
		id: rec.ID, sandboxID: rec.SandboxID, layers: rec.Layers, imageVolumes: rec.ImageVolumes,
	}
	if rec.State == runtime.ContainerState_CONTAINER_EXITED || rec.State == runtime.ContainerState_CONTAINER_UNKNOWN {
		close(c.exited)
	}
	return c
}

func (c *container) snapshot() containerRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return *c.rec
}

// objects indexes sandboxes and containers by id and reserves their names.
type objects struct {
	mu         sync.RWMutex
	sandboxes  map[string]*sandbox
	containers map[string]*container
	names      map[string]string // name key → id, for sandboxes and containers alike
}

func newObjects() *objects {
	return &objects{
		sandboxes:  map[string]*sandbox{},
		containers: map[string]*container{},
		names:      map[string]string{},
	}
}

func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

func sandboxNameKey(m *runtime.PodSandboxMetadata) string {
	return fmt.Sprintf("sandbox/%s_%s_%s_%d", m.GetName(), m.GetNamespace(), m.GetUid(), m.GetAttempt())
}

func containerNameKey(m *runtime.ContainerMetadata, sm *runtime.PodSandboxMetadata) string {
	return fmt.Sprintf("container/%s_%s_%s_%s_%d", m.GetName(), sm.GetName(), sm.GetNamespace(), sm.GetUid(), m.GetAttempt())
}

// reserve claims name for id, failing with AlreadyExists when another object holds it.
func (o *objects) reserve(name, id, what string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if other, ok := o.names[name]; ok && other != id {
		return status.Errorf(codes.AlreadyExists, "%s name %q is already used by %s", what, strings.SplitN(name, "/", 2)[1], other)
	}
	o.names[name] = id
	return nil
}

func (o *objects) release(name, id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.names[name] == id {
		delete(o.names, name)
	}
}

// resolve finds the full id that id names, exactly or as a unique prefix.
func resolve[T any](m map[string]T, id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("empty id")
	}
	if _, ok := m[id]; ok {
		return id, nil
	}
	var found string
	for full := range m {
		if strings.HasPrefix(full, id) {
			if found != "" {
				return "", status.Errorf(codes.InvalidArgument, "id prefix %q is ambiguous", id)
			}
			found = full
		}
	}
	if found == "" {
		return "", nil
	}
	return found, nil
}

// sandbox returns the sandbox named by id (exact or unique prefix); NotFound otherwise.
func (o *objects) sandbox(id string) (*sandbox, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	full, err := resolve(o.sandboxes, id)
	if err != nil {
		return nil, err
	}
	if full == "" {
		return nil, status.Errorf(codes.NotFound, "pod sandbox %q not found", id)
	}
	return o.sandboxes[full], nil
}

// container returns the container named by id (exact or unique prefix); NotFound otherwise.
func (o *objects) container(id string) (*container, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	full, err := resolve(o.containers, id)
	if err != nil {
		return nil, err
	}
	if full == "" {
		return nil, status.Errorf(codes.NotFound, "container %q not found", id)
	}
	return o.containers[full], nil
}

func (o *objects) addSandbox(sb *sandbox) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sandboxes[sb.id] = sb
}

func (o *objects) addContainer(c *container) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.containers[c.id] = c
}

func (o *objects) removeSandbox(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.sandboxes, id)
}

func (o *objects) removeContainer(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.containers, id)
}

func (o *objects) listSandboxes() []*sandbox {
	o.mu.RLock()
	defer o.mu.RUnlock()
	out := make([]*sandbox, 0, len(o.sandboxes))
	for _, sb := range o.sandboxes {
		out = append(out, sb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (o *objects) listContainers() []*container {
	o.mu.RLock()
	defer o.mu.RUnlock()
	out := make([]*container, 0, len(o.containers))
	for _, c := range o.containers {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// containersOf returns the containers of sandbox id.
func (o *objects) containersOf(sandboxID string) []*container {
	var out []*container
	for _, c := range o.listContainers() {
		if c.sandboxID == sandboxID {
			out = append(out, c)
		}
	}
	return out
}

// matchLabels reports whether labels hold every pair of selector.
func matchLabels(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// markExited closes c.exited once; the caller holds c.mu.
func (c *container) markExited() {
	select {
	case <-c.exited:
	default:
		close(c.exited)
	}
}

// releaseID drops every name reserved for id.
func (o *objects) releaseID(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, v := range o.names {
		if v == id {
			delete(o.names, k)
		}
	}
}
