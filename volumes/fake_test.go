package volumes

import (
	"context"
	"sync"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/nodekit-dev/nodekit/objects"
)

// fakeObjects is a map-backed objects.Source and objects.Notifier.
type fakeObjects struct {
	mu         sync.Mutex
	configMaps map[string]*v1.ConfigMap
	secrets    map[string]*v1.Secret
	subs       []func(objects.Ref)
}

func newFakeObjects() *fakeObjects {
	return &fakeObjects{configMaps: map[string]*v1.ConfigMap{}, secrets: map[string]*v1.Secret{}}
}

func (f *fakeObjects) ConfigMap(_ context.Context, ns, name string) (*v1.ConfigMap, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cm, ok := f.configMaps[ns+"/"+name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(v1.Resource("configmaps"), name)
}

func (f *fakeObjects) Secret(_ context.Context, ns, name string) (*v1.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.secrets[ns+"/"+name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(v1.Resource("secrets"), name)
}

func (f *fakeObjects) Subscribe(fn func(objects.Ref)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = append(f.subs, fn)
	return func() {}
}

func (f *fakeObjects) setConfigMap(ns, name string, data map[string]string) {
	f.mu.Lock()
	cm := &v1.ConfigMap{Data: data}
	cm.Namespace, cm.Name = ns, name
	f.configMaps[ns+"/"+name] = cm
	subs := append([]func(objects.Ref){}, f.subs...)
	f.mu.Unlock()
	for _, s := range subs {
		s(objects.Ref{Kind: objects.KindConfigMap, Namespace: ns, Name: name})
	}
}

func (f *fakeObjects) setSecret(ns, name string, data map[string][]byte) {
	f.mu.Lock()
	s := &v1.Secret{Data: data}
	s.Namespace, s.Name = ns, name
	f.secrets[ns+"/"+name] = s
	subs := append([]func(objects.Ref){}, f.subs...)
	f.mu.Unlock()
	for _, sub := range subs {
		sub(objects.Ref{Kind: objects.KindSecret, Namespace: ns, Name: name})
	}
}
