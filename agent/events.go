package agent

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// newEvents makes the agent's event recorder, as the kubelet's: source
// component "kubelet" and the node's name as host, similar events
// aggregated and each object's events rate limited by client-go's correlator
// (a burst of 25, then one per 5 minutes). Run delivers them from its start
// to its end (pods stopped on exit included): to the API server in cluster
// mode, and to the log (debug) always.
func (a *Agent) newEvents() {
	a.events = record.NewBroadcaster()
	a.recorder = a.events.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: a.cfg.NodeName})
}

// startEvents starts delivering the recorded events (before anything of the
// agent runs, so none is lost: the broadcaster drops what it gets without a
// watcher) and returns the function that stops it.
func (a *Agent) startEvents(client kubernetes.Interface) (stop func()) {
	log := a.log.With("component", "events")
	w := a.events.StartEventWatcher(func(e *v1.Event) {
		log.Debug("event", "object", e.InvolvedObject.Kind+" "+e.InvolvedObject.Namespace+"/"+e.InvolvedObject.Name,
			"fieldPath", e.InvolvedObject.FieldPath, "type", e.Type, "reason", e.Reason, "message", e.Message)
	})
	if client != nil {
		a.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	}
	a.recorder.Eventf(a.nodeRef(), v1.EventTypeNormal, "Starting", "Starting kubelet.")
	return func() {
		w.Stop()
		a.events.Shutdown()
	}
}

// nodeRef is the object of the node's events (the kubelet's nodeRef: the
// node's name as its UID).
func (a *Agent) nodeRef() *v1.ObjectReference {
	return &v1.ObjectReference{Kind: "Node", Name: a.cfg.NodeName, UID: types.UID(a.cfg.NodeName)}
}
