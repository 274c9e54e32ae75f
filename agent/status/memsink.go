package status

import (
	"context"
	"sort"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// MemorySink is a Sink keeping the newest status of each pod in memory. A Put of
// a version not newer than the one held is ignored. The zero value is ready to
// use.
type MemorySink struct {
	mu   sync.Mutex
	pods map[types.UID]SinkEntry
}

// SinkEntry is what a MemorySink holds for one pod.
type SinkEntry struct {
	Pod     *v1.Pod
	Status  v1.PodStatus
	Version uint64
}

// Put stores status as the pod's status unless a newer version is held.
func (s *MemorySink) Put(_ context.Context, pod *v1.Pod, status v1.PodStatus, version uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pods == nil {
		s.pods = map[types.UID]SinkEntry{}
	}
	if cur, ok := s.pods[pod.UID]; ok && cur.Version >= version {
		return nil
	}
	s.pods[pod.UID] = SinkEntry{Pod: pod, Status: *status.DeepCopy(), Version: version}
	return nil
}

// Delete forgets the pod.
func (s *MemorySink) Delete(_ context.Context, uid types.UID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pods, uid)
	return nil
}

// Get returns what the sink holds for the pod.
func (s *MemorySink) Get(uid types.UID) (SinkEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.pods[uid]
	if ok {
		e.Status = *e.Status.DeepCopy()
	}
	return e, ok
}

// List returns every pod the sink holds, ordered by namespace and name.
func (s *MemorySink) List() []SinkEntry {
	s.mu.Lock()
	out := make([]SinkEntry, 0, len(s.pods))
	for _, e := range s.pods {
		e.Status = *e.Status.DeepCopy()
		out = append(out, e)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Pod, out[j].Pod
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out
}
