package timeline

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
)

// Log records into one pod's timeline, optionally about one container. The
// zero Log records nothing.
type Log struct {
	r         *Recorder
	p         *ring
	container string
}

// Record adds e to the pod's timeline; an entry without a Container gets the
// Log's.
func (l Log) Record(e Entry) {
	if l.p == nil {
		return
	}
	if e.Container == "" {
		e.Container = l.container
	}
	en := l.r.entry(&e)
	l.p.push(&en)
}

// Container returns a Log whose entries are about the named container unless
// they name another.
func (l Log) Container(name string) Log {
	l.container = name
	return l
}

// UID is the pod's UID ("" for the zero Log).
func (l Log) UID() types.UID {
	if l.p == nil {
		return ""
	}
	return l.p.uid
}

// Enabled says whether l records anything.
func (l Log) Enabled() bool { return l.p != nil }

type logKey struct{}

// WithPod returns ctx carrying the Log of the pod uid, so that what is done
// with ctx (CRI calls through an instrumented runtime) is recorded into the
// pod's timeline. ctx is returned as it is when r does not know the pod or
// ctx already carries that pod's Log.
func WithPod(ctx context.Context, r *Recorder, uid types.UID) context.Context {
	if cur := FromContext(ctx); cur.p != nil && cur.p.uid == uid {
		return ctx
	}
	l := r.Pod(uid)
	if l.p == nil {
		return ctx
	}
	return context.WithValue(ctx, logKey{}, l)
}

// WithContainer returns ctx whose Log records about the named container
// (ctx as it is when it carries no Log).
func WithContainer(ctx context.Context, name string) context.Context {
	l := FromContext(ctx)
	if l.p == nil || l.container == name {
		return ctx
	}
	return context.WithValue(ctx, logKey{}, l.Container(name))
}

// FromContext returns the Log ctx carries, the zero Log if none.
func FromContext(ctx context.Context) Log {
	l, _ := ctx.Value(logKey{}).(Log)
	return l
}
