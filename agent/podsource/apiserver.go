package podsource

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// APIOptions configure an API source.
type APIOptions struct {
	// Client reaches the API server with the node's credentials. Required.
	Client kubernetes.Interface
	// NodeName: the source watches the pods bound to it. Required.
	NodeName string
	Logger   *slog.Logger
}

// API is the API server as a pod source (the kubelet's apiserver config
// source): a watch on the pods with spec.nodeName=<node>, in every namespace,
// sent as a set after every change. Pods keep their API metadata; mirror pods
// (the API's copies of static pods) are not run.
type API struct {
	o        APIOptions
	log      *slog.Logger
	updates  chan Update
	informer cache.SharedIndexInformer
}

// NewAPI returns an API source.
func NewAPI(o APIOptions) (*API, error) {
	if o.Client == nil || o.NodeName == "" {
		return nil, errors.New("podsource: API: Client and NodeName are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	selector := fields.OneTermEqualSelector("spec.nodeName", o.NodeName).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector
			return o.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			return o.Client.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, opts)
		},
	}
	// The wrapper tells the reflector when the client cannot stream a watch
	// list (a fake clientset), as the informers generated for clientsets do.
	inf := cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, o.Client), &v1.Pod{}, 0, cache.Indexers{uidIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*v1.Pod); ok {
			return []string{string(p.UID)}, nil
		}
		return nil, nil
	}})
	return &API{o: o, log: o.Logger, updates: make(chan Update, 1), informer: inf}, nil
}

// Name is "api".
func (a *API) Name() string { return SourceAPI }

// Updates delivers the node's pods after every change.
func (a *API) Updates() <-chan Update { return a.updates }

// Get returns the API's version of the pod with uid, as last seen (nil when the
// source has none): what a status writer patches from.
func (a *API) Get(uid types.UID) *v1.Pod {
	objs, _ := a.informer.GetIndexer().ByIndex(uidIndex, string(uid))
	for _, obj := range objs {
		if p, ok := obj.(*v1.Pod); ok {
			return p
		}
	}
	return nil
}

// Mirrors returns the mirror pods bound to the node (the API's copies of static
// pods), as last seen; callers must not modify them.
func (a *API) Mirrors() []*v1.Pod {
	var out []*v1.Pod
	for _, obj := range a.informer.GetStore().List() {
		if p, ok := obj.(*v1.Pod); ok && p.Annotations[AnnotationMirror] != "" {
			out = append(out, p)
		}
	}
	return out
}

// Synced says whether the watch has listed the node's pods once.
func (a *API) Synced() bool { return a.informer.HasSynced() }

// uidIndex indexes the watched pods by UID.
const uidIndex = "uid"

// Run watches until ctx ends. The first set is sent once the watch has synced
// (an empty set too).
func (a *API) Run(ctx context.Context) {
	defer close(a.updates)
	changed := make(chan struct{}, 1)
	wake := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := a.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { wake() },
		UpdateFunc: func(any, any) { wake() },
		DeleteFunc: func(any) { wake() },
	}); err != nil {
		a.log.Error("api pod source: watch", "err", err)
		return
	}
	go a.informer.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), a.informer.HasSynced) {
		return
	}
	a.log.Info("api pod source synced", "node", a.o.NodeName)
	wake()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		u := Update{Op: Set, Pods: a.list()}
		select { // the consumer only needs the latest set
		case <-a.updates:
		default:
		}
		a.updates <- u
	}
}

// list is the node's pods, copied, without mirror pods, ordered by namespace
// and name, each marked as coming from the API.
func (a *API) list() []*v1.Pod {
	objs := a.informer.GetStore().List()
	out := make([]*v1.Pod, 0, len(objs))
	for _, obj := range objs {
		p, ok := obj.(*v1.Pod)
		if !ok || p.Annotations[AnnotationMirror] != "" {
			continue
		}
		p = p.DeepCopy()
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[AnnotationSource] = SourceAPI
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *v1.Pod) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return out
}
