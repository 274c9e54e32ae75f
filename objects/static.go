package objects

import (
	"context"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Static is an in-memory Source for programs that embed the agent and for
// tests. Objects are stored as given (no validation), with the metadata the
// API server would set: a UID derived from kind, namespace and name, a
// resourceVersion that changes with the content, the creationTimestamp of the
// first version. It is safe for concurrent use.
type Static struct {
	s store
}

// NewStatic returns an empty Static.
func NewStatic() *Static {
	return &Static{s: newStore()}
}

// SetConfigMap adds cm or replaces the ConfigMap of the same namespace and
// name with it; an empty namespace means "default". cm is copied. Subscribers
// are notified when the content (data, binaryData, immutable, labels,
// annotations) is new or changed.
func (s *Static) SetConfigMap(cm *v1.ConfigMap) {
	if cm == nil {
		return
	}
	cm = cm.DeepCopy()
	if cm.Namespace == "" {
		cm.Namespace = metav1.NamespaceDefault
	}
	s.s.subs.notify(s.s.apply([]object{{cm: cm}}, nil))
}

// SetSecret is SetConfigMap for Secrets. As the API server does, stringData
// is merged over data (and cleared) and an empty type means Opaque.
func (s *Static) SetSecret(sec *v1.Secret) {
	if sec == nil {
		return
	}
	sec = sec.DeepCopy()
	if sec.Namespace == "" {
		sec.Namespace = metav1.NamespaceDefault
	}
	mergeStringData(sec)
	if sec.Type == "" {
		sec.Type = v1.SecretTypeOpaque
	}
	s.s.subs.notify(s.s.apply([]object{{sec: sec}}, nil))
}

// Delete removes the object ref names (an empty namespace means "default")
// and says whether there was one; subscribers are notified when there was.
func (s *Static) Delete(ref Ref) bool {
	if ref.Namespace == "" {
		ref.Namespace = metav1.NamespaceDefault
	}
	changed := s.s.apply(nil, []Ref{ref})
	s.s.subs.notify(changed)
	return len(changed) > 0
}

// ConfigMap implements Source.
func (s *Static) ConfigMap(_ context.Context, namespace, name string) (*v1.ConfigMap, error) {
	return s.s.configMap(namespace, name)
}

// Secret implements Source.
func (s *Static) Secret(_ context.Context, namespace, name string) (*v1.Secret, error) {
	return s.s.secret(namespace, name)
}

// Subscribe implements Notifier. f is called from the goroutine that made
// the change, after the change is visible to lookups and outside any lock
// (it may look the object up). After cancel returns f is not called again,
// except for a call already under way.
func (s *Static) Subscribe(f func(Ref)) (cancel func()) {
	return s.s.subs.subscribe(f)
}

// mergeStringData merges sec.StringData over sec.Data and clears it, as the
// API server does on write.
func mergeStringData(sec *v1.Secret) {
	if len(sec.StringData) == 0 {
		sec.StringData = nil
		return
	}
	if sec.Data == nil {
		sec.Data = make(map[string][]byte, len(sec.StringData))
	}
	for k, v := range sec.StringData {
		sec.Data[k] = []byte(v)
	}
	sec.StringData = nil
}
