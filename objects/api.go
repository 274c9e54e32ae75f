package objects

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// DefaultSyncTimeout bounds the wait for an object's first list: a list the
// API refuses is retried by the watch with back-off, and the caller gets the
// refusal.
const DefaultSyncTimeout = 10 * time.Second

// DefaultIdle is how long an API object nobody asked for keeps its watch.
const DefaultIdle = 10 * time.Minute

// APIOptions configure an API source.
type APIOptions struct {
	// Client reaches the API server with the node's credentials. Required.
	Client kubernetes.Interface
	// Idle: a watch of an object nobody asked for this long is stopped
	// (default DefaultIdle). The volume manager asks at every resync, so the
	// objects of running pods stay watched.
	Idle time.Duration
	// SyncTimeout: how long a first request waits for the object's list
	// (default DefaultSyncTimeout); then the API's refusal is the answer.
	SyncTimeout time.Duration
	Clock       clock.Clock
	Logger      *slog.Logger
}

// API gives the ConfigMaps and Secrets of an API server, as the kubelet's
// watch-based managers do: the first request for an object starts a watch on
// that one object (a field selector on its name, which the Node authorizer
// allows once a pod bound to the node references it), later requests are
// answered from the watch's cache, changes are reported to subscribers, and a
// watch nobody used for Idle stops. It implements Source and Notifier.
type API struct {
	o   APIOptions
	log *slog.Logger

	mu      sync.Mutex
	watches map[Ref]*objectWatch
	subs    subscribers
	stopped bool
	tokens  tokens
}

// objectWatch is the watch of one object.
type objectWatch struct {
	store    cache.Store
	synced   chan struct{}
	cancel   context.CancelFunc
	lastUsed time.Time
	err      error // the list's error while not synced (e.g. Forbidden)
}

// NewAPI returns an API source; Run stops idle watches.
func NewAPI(o APIOptions) (*API, error) {
	if o.Client == nil {
		return nil, errors.New("objects: API: no client")
	}
	if o.Idle <= 0 {
		o.Idle = DefaultIdle
	}
	if o.SyncTimeout <= 0 {
		o.SyncTimeout = DefaultSyncTimeout
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &API{o: o, log: o.Logger, watches: map[Ref]*objectWatch{}}, nil
}

// ConfigMap returns the ConfigMap, from its watch.
func (a *API) ConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error) {
	obj, err := a.get(ctx, Ref{KindConfigMap, defaultNamespace(namespace), name})
	if err != nil {
		return nil, err
	}
	return obj.(*v1.ConfigMap), nil
}

// Secret returns the Secret, from its watch.
func (a *API) Secret(ctx context.Context, namespace, name string) (*v1.Secret, error) {
	obj, err := a.get(ctx, Ref{KindSecret, defaultNamespace(namespace), name})
	if err != nil {
		return nil, err
	}
	return obj.(*v1.Secret), nil
}

// Subscribe calls f after each change of a watched object.
func (a *API) Subscribe(f func(Ref)) (cancel func()) { return a.subs.subscribe(f) }

func defaultNamespace(ns string) string {
	if ns == "" {
		return metav1.NamespaceDefault
	}
	return ns
}

// get answers from the object's watch, starting it if needed and waiting for
// its first list.
func (a *API) get(ctx context.Context, r Ref) (runtime.Object, error) {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return nil, errors.New("objects: API source stopped")
	}
	w := a.watches[r]
	if w == nil {
		w = a.start(r)
		a.watches[r] = w
	}
	w.lastUsed = a.o.Clock.Now()
	a.mu.Unlock()

	wait := a.o.Clock.NewTimer(a.o.SyncTimeout)
	defer wait.Stop()
	select {
	case <-w.synced:
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", r, ctx.Err())
	case <-wait.C():
		a.mu.Lock()
		err := w.err
		a.mu.Unlock()
		if err != nil {
			// Forbidden (no pod on this node references it), unreachable...
			return nil, err
		}
		return nil, fmt.Errorf("%s: not listed within %s", r, a.o.SyncTimeout)
	}
	obj, ok, err := w.store.GetByKey(r.Namespace + "/" + r.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	if !ok {
		if r.Kind == KindConfigMap {
			return nil, apierrors.NewNotFound(v1.Resource("configmaps"), r.Name)
		}
		return nil, apierrors.NewNotFound(v1.Resource("secrets"), r.Name)
	}
	return obj.(runtime.Object), nil
}

// start begins the watch of one object (a.mu held).
func (a *API) start(r Ref) *objectWatch {
	ctx, cancel := context.WithCancel(context.Background())
	selector := fields.OneTermEqualSelector("metadata.name", r.Name).String()
	w := &objectWatch{synced: make(chan struct{}), cancel: cancel}
	listed := func(obj runtime.Object, err error) (runtime.Object, error) {
		a.mu.Lock()
		w.err = err
		a.mu.Unlock()
		return obj, err
	}
	var example runtime.Object
	var list func(context.Context, metav1.ListOptions) (runtime.Object, error)
	var watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)
	switch r.Kind {
	case KindConfigMap:
		c := a.o.Client.CoreV1().ConfigMaps(r.Namespace)
		example, watchFn = &v1.ConfigMap{}, c.Watch
		list = func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) { return c.List(ctx, opts) }
	default:
		c := a.o.Client.CoreV1().Secrets(r.Namespace)
		example, watchFn = &v1.Secret{}, c.Watch
		list = func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) { return c.List(ctx, opts) }
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector
			return listed(list(ctx, opts))
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			return watchFn(ctx, opts)
		},
	}
	notify := func(any) { a.subs.notify([]Ref{r}) }
	store, ctrl := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: cache.ToListWatcherWithWatchListSemantics(lw, a.o.Client),
		ObjectType:    example,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    notify,
			UpdateFunc: func(_, n any) { notify(n) },
			DeleteFunc: notify,
		},
	})
	w.store = store
	go ctrl.RunWithContext(ctx)
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), ctrl.HasSynced) {
			close(w.synced)
		}
	}()
	a.log.Debug("objects: watching", "object", r.String())
	return w
}

// Run stops the watches nobody used for Idle, until ctx ends; then every
// watch.
func (a *API) Run(ctx context.Context) {
	t := time.NewTicker(min(a.o.Idle/2, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			a.mu.Lock()
			a.stopped = true
			for r, w := range a.watches {
				w.cancel()
				delete(a.watches, r)
			}
			a.mu.Unlock()
			return
		case <-t.C:
		}
		now := a.o.Clock.Now()
		a.tokens.forgetBefore(now)
		a.mu.Lock()
		for r, w := range a.watches {
			if now.Sub(w.lastUsed) >= a.o.Idle {
				w.cancel()
				delete(a.watches, r)
				a.log.Debug("objects: stopped watching an idle object", "object", r.String())
			}
		}
		a.mu.Unlock()
	}
}

// First asks each source in turn and answers with the first that has the
// object (a source's error other than NotFound is the answer too). It reports
// the changes of every source that is a Notifier.
func First(sources ...Source) Source { return first(sources) }

type first []Source

func (f first) ConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error) {
	var err error = apierrors.NewNotFound(v1.Resource("configmaps"), name)
	for _, s := range f {
		var cm *v1.ConfigMap
		if cm, err = s.ConfigMap(ctx, namespace, name); !apierrors.IsNotFound(err) {
			return cm, err
		}
	}
	return nil, err
}

func (f first) Secret(ctx context.Context, namespace, name string) (*v1.Secret, error) {
	var err error = apierrors.NewNotFound(v1.Resource("secrets"), name)
	for _, s := range f {
		var sec *v1.Secret
		if sec, err = s.Secret(ctx, namespace, name); !apierrors.IsNotFound(err) {
			return sec, err
		}
	}
	return nil, err
}

func (f first) Subscribe(fn func(Ref)) (cancel func()) {
	var cancels []func()
	for _, s := range f {
		if n, ok := s.(Notifier); ok {
			cancels = append(cancels, n.Subscribe(fn))
		}
	}
	return func() {
		for _, c := range cancels {
			c()
		}
	}
}

// ServiceAccountToken asks the first source that issues tokens.
func (f first) ServiceAccountToken(ctx context.Context, pod *v1.Pod, audience string, expirationSeconds int64) (string, error) {
	for _, s := range f {
		if ts, ok := s.(TokenSource); ok {
			return ts.ServiceAccountToken(ctx, pod, audience, expirationSeconds)
		}
	}
	return "", errors.New("serviceAccountToken needs an API server (cluster mode)")
}
