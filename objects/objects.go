package objects

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Source gives the ConfigMaps and Secrets pods on this node may reference.
// Returned objects are shared: callers must not modify them.
type Source interface {
	// ConfigMap returns the named ConfigMap, or an error for which
	// k8s.io/apimachinery/pkg/api/errors.IsNotFound is true when there is none.
	ConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error)
	// Secret likewise (stringData already merged into data, as the API server does).
	Secret(ctx context.Context, namespace, name string) (*v1.Secret, error)
}

// Kind of an object.
type Kind string

// The kinds of objects a Source gives.
const (
	KindConfigMap Kind = "ConfigMap"
	KindSecret    Kind = "Secret"
)

// Ref names one object.
type Ref struct {
	Kind            Kind
	Namespace, Name string
}

// String reads like "ConfigMap default/web".
func (r Ref) String() string {
	return string(r.Kind) + " " + r.Namespace + "/" + r.Name
}

// Notifier is implemented by sources that report changes (the directory and
// the in-memory source both do).
type Notifier interface {
	// Subscribe calls f (which must not block) after each object that was
	// added, changed or deleted, until cancel is called.
	Subscribe(f func(Ref)) (cancel func())
}

var (
	_ Source   = (*Static)(nil)
	_ Notifier = (*Static)(nil)
	_ Source   = (*Dir)(nil)
	_ Notifier = (*Dir)(nil)
	_ Source   = (*API)(nil)
	_ Notifier = (*API)(nil)
)

// resourceVersions numbers the versions of all objects of all sources of the
// process, so that two different contents never share a resourceVersion.
var resourceVersions atomic.Uint64

func nextResourceVersion() string {
	return strconv.FormatUint(resourceVersions.Add(1), 10)
}

// uidOf derives a UID from (kind, namespace, name): stable across changes and
// restarts. It is formatted as an RFC 9562 version 8 (custom) UUID.
func uidOf(r Ref) types.UID {
	sum := sha256.Sum256([]byte(string(r.Kind) + "\x00" + r.Namespace + "\x00" + r.Name))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8
	b[8] = b[8]&0x3f | 0x80 // variant 10
	h := hex.EncodeToString(b)
	return types.UID(h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32])
}

// object is one ConfigMap or one Secret (exactly one of the two is set).
type object struct {
	cm  *v1.ConfigMap
	sec *v1.Secret
}

func (o object) ref() Ref {
	if o.cm != nil {
		return Ref{KindConfigMap, o.cm.Namespace, o.cm.Name}
	}
	return Ref{KindSecret, o.sec.Namespace, o.sec.Name}
}

// key is a map key within one kind.
type key struct{ namespace, name string }

// store holds the served objects of a source and its subscribers. Lookups
// are map reads under a read lock.
type store struct {
	mu   sync.RWMutex
	cms  map[key]*v1.ConfigMap
	secs map[key]*v1.Secret

	subs subscribers
}

func newStore() store {
	return store{cms: map[key]*v1.ConfigMap{}, secs: map[key]*v1.Secret{}}
}

func (s *store) configMap(namespace, name string) (*v1.ConfigMap, error) {
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	s.mu.RLock()
	cm := s.cms[key{namespace, name}]
	s.mu.RUnlock()
	if cm == nil {
		return nil, apierrors.NewNotFound(v1.Resource("configmaps"), name)
	}
	return cm, nil
}

func (s *store) secret(namespace, name string) (*v1.Secret, error) {
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	s.mu.RLock()
	sec := s.secs[key{namespace, name}]
	s.mu.RUnlock()
	if sec == nil {
		return nil, apierrors.NewNotFound(v1.Resource("secrets"), name)
	}
	return sec, nil
}

// counts returns the number of ConfigMaps and Secrets served.
func (s *store) counts() (configMaps, secrets int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.cms), len(s.secs)
}

// apply stores puts (the objects become the store's: they must not be
// modified afterwards) and removes dels, under one lock, and returns the refs
// whose content changed, sorted. A put whose content equals the served
// object's changes nothing (same resourceVersion). The served copy gets the
// TypeMeta, a UID derived from its ref, a new resourceVersion and the
// creationTimestamp of its first version.
func (s *store) apply(puts []object, dels []Ref) []Ref {
	var changed []Ref
	now := metav1.Now()
	s.mu.Lock()
	for _, o := range puts {
		r := o.ref()
		k := key{r.Namespace, r.Name}
		created := now
		switch {
		case o.cm != nil:
			old := s.cms[k]
			if old != nil && sameConfigMap(old, o.cm) {
				continue
			}
			c := *o.cm
			c.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: string(KindConfigMap)}
			if old != nil {
				created = old.CreationTimestamp
			}
			c.ObjectMeta = serverMeta(c.ObjectMeta, r, created)
			s.cms[k] = &c
		default:
			old := s.secs[k]
			if old != nil && sameSecret(old, o.sec) {
				continue
			}
			c := *o.sec
			c.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: string(KindSecret)}
			if old != nil {
				created = old.CreationTimestamp
			}
			c.ObjectMeta = serverMeta(c.ObjectMeta, r, created)
			s.secs[k] = &c
		}
		changed = append(changed, r)
	}
	for _, r := range dels {
		k := key{r.Namespace, r.Name}
		switch r.Kind {
		case KindConfigMap:
			if _, ok := s.cms[k]; ok {
				delete(s.cms, k)
				changed = append(changed, r)
			}
		case KindSecret:
			if _, ok := s.secs[k]; ok {
				delete(s.secs, k)
				changed = append(changed, r)
			}
		}
	}
	s.mu.Unlock()
	slices.SortFunc(changed, compareRefs)
	return changed
}

// serverMeta is m with the fields the API server sets: UID,
// resourceVersion, creationTimestamp.
func serverMeta(m metav1.ObjectMeta, r Ref, created metav1.Time) metav1.ObjectMeta {
	m.UID = uidOf(r)
	m.ResourceVersion = nextResourceVersion()
	m.CreationTimestamp = created
	return m
}

func compareRefs(a, b Ref) int {
	return strings.Compare(a.String(), b.String())
}

// sameConfigMap says whether a and b have the same content: what a consumer
// sees (data, binaryData, immutable, labels, annotations).
func sameConfigMap(a, b *v1.ConfigMap) bool {
	return maps.Equal(a.Data, b.Data) &&
		maps.EqualFunc(a.BinaryData, b.BinaryData, bytes.Equal) &&
		isTrue(a.Immutable) == isTrue(b.Immutable) &&
		maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Annotations, b.Annotations)
}

// sameSecret is sameConfigMap for Secrets (data, type, immutable, labels,
// annotations).
func sameSecret(a, b *v1.Secret) bool {
	return maps.EqualFunc(a.Data, b.Data, bytes.Equal) && a.Type == b.Type &&
		isTrue(a.Immutable) == isTrue(b.Immutable) &&
		maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Annotations, b.Annotations)
}

func isTrue(b *bool) bool { return b != nil && *b }

// subscribers are the functions Subscribe registered.
type subscribers struct {
	mu   sync.Mutex
	next int
	m    map[int]*subscription
}

type subscription struct {
	f         func(Ref)
	cancelled atomic.Bool
}

func (s *subscribers) subscribe(f func(Ref)) (cancel func()) {
	if f == nil {
		return func() {}
	}
	sub := &subscription{f: f}
	s.mu.Lock()
	if s.m == nil {
		s.m = map[int]*subscription{}
	}
	id := s.next
	s.next++
	s.m[id] = sub
	s.mu.Unlock()
	return func() {
		sub.cancelled.Store(true)
		s.mu.Lock()
		delete(s.m, id)
		s.mu.Unlock()
	}
}

// notify calls every subscriber with every ref. The caller must hold no
// lock: a subscriber may call back into the source.
func (s *subscribers) notify(refs []Ref) {
	if len(refs) == 0 {
		return
	}
	s.mu.Lock()
	subs := make([]*subscription, 0, len(s.m))
	ids := slices.Sorted(maps.Keys(s.m)) // in the order of subscription
	for _, id := range ids {
		subs = append(subs, s.m[id])
	}
	s.mu.Unlock()
	for _, r := range refs {
		for _, sub := range subs {
			if !sub.cancelled.Load() {
				sub.f(r)
			}
		}
	}
}
