package podsource

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/clock"
)

// Source is where the agent's pods come from: the manifest directory
// (ManifestDir), pods given in code (Pods) and, in cluster mode, the API
// server. Each sends its full desired set of pods on Updates (SET semantics);
// the agent runs the union of all sources' sets, and treats a pod as orphaned
// only once every source has sent its first set.
type Source interface {
	// Name says what the source is, for logs ("file", "code", "api").
	Name() string
	// Updates delivers the source's desired set whenever it changes; only the
	// latest set matters.
	Updates() <-chan Update
	// Run feeds Updates until ctx ends; it is called once.
	Run(ctx context.Context)
}

// Name is "file": static pods from manifests.
func (d *ManifestDir) Name() string { return SourceFile }

// SourceAPI is the AnnotationSource value of pods that are not static: from the
// API server or, here, given in code. Such pods keep their names and UIDs and are
// not critical by being static: the eviction manager may evict them.
const SourceAPI = "api"

// PodsOptions configure a Pods source.
type PodsOptions struct {
	// NodeName is the node the pods run on (spec.nodeName). Required.
	NodeName string
	// Clock stamps creation times (default: the real clock).
	Clock clock.Clock
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// Pods is a pod source a program feeds from code: the way to embed the agent
// with pods of one's own, for example a controller of one's own making.
// Pods keep their name, namespace and UID (a UID is made up when empty) and get
// the API server's defaults and validation, as pods created through the API do;
// they are not static pods (AnnotationSource "api").
type Pods struct {
	node    string
	clock   clock.Clock
	log     *slog.Logger
	updates chan Update

	mu   sync.Mutex
	pods map[types.UID]*v1.Pod
	send chan struct{} // wakes Run
}

// NewPods returns an empty Pods source.
func NewPods(o PodsOptions) (*Pods, error) {
	if o.NodeName == "" {
		return nil, fmt.Errorf("podsource: Pods: no node name")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Pods{node: o.NodeName, clock: o.Clock, log: o.Logger, updates: make(chan Update, 1),
		pods: map[types.UID]*v1.Pod{}, send: make(chan struct{}, 1)}, nil
}

// Name is "code".
func (p *Pods) Name() string { return "code" }

// Updates delivers the pods after every change.
func (p *Pods) Updates() <-chan Update { return p.updates }

// Run sends the current set at once (an empty set too: the source has synced),
// then after every change, until ctx ends.
func (p *Pods) Run(ctx context.Context) {
	defer close(p.updates)
	p.wake()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.send:
		}
		u := Update{Op: Set, Pods: p.List()}
		select { // the consumer only needs the latest set
		case <-p.updates:
		default:
		}
		p.updates <- u
	}
}

func (p *Pods) wake() {
	select {
	case p.send <- struct{}{}:
	default:
	}
}

// Add adds a pod, or replaces the pod of the same UID (or, when the UID is
// empty, of the same namespace and name). It returns the pod as the agent will
// run it, or an error naming the pod and each invalid field.
func (p *Pods) Add(pod *v1.Pod) (*v1.Pod, error) {
	pod = pod.DeepCopy()
	if pod.Namespace == "" {
		pod.Namespace = metav1.NamespaceDefault
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if pod.UID == "" {
		for uid, old := range p.pods {
			if old.Namespace == pod.Namespace && old.Name == pod.Name {
				pod.UID = uid
			}
		}
	}
	if pod.UID == "" {
		pod.UID = types.UID(newUUID())
	}
	applyDefaults(pod)
	if errs := validatePod(pod, pod.Name); len(errs) > 0 {
		return nil, &ManifestError{File: "pod " + pod.Namespace + "/" + pod.Name, Fields: errs}
	}
	for uid, old := range p.pods {
		if uid != pod.UID && old.Namespace == pod.Namespace && old.Name == pod.Name {
			return nil, &ManifestError{File: "pod " + pod.Namespace + "/" + pod.Name,
				Fields: field.ErrorList{field.Duplicate(field.NewPath("metadata", "name"), pod.Name)}}
		}
	}
	pod.Spec.NodeName = p.node
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[AnnotationSource] = SourceAPI
	delete(pod.Annotations, AnnotationMirror)
	if old, ok := p.pods[pod.UID]; ok {
		pod.CreationTimestamp = old.CreationTimestamp
	} else if pod.CreationTimestamp.IsZero() {
		pod.CreationTimestamp = metav1.NewTime(p.clock.Now())
	}
	pod.Status = v1.PodStatus{Phase: v1.PodPending}
	p.pods[pod.UID] = pod
	p.wake()
	return pod.DeepCopy(), nil
}

// Remove removes the pod with uid; the agent stops it gracefully.
func (p *Pods) Remove(uid types.UID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.pods[uid]; !ok {
		return false
	}
	delete(p.pods, uid)
	p.wake()
	return true
}

// List returns copies of the source's pods, ordered by namespace and name.
func (p *Pods) List() []*v1.Pod {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*v1.Pod, 0, len(p.pods))
	for _, pod := range p.pods {
		out = append(out, pod.DeepCopy())
	}
	slices.SortFunc(out, func(a, b *v1.Pod) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return out
}

// newUUID returns a random (version 4) UUID, the form of API server UIDs.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
