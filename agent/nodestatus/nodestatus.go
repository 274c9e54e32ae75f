package nodestatus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-helpers/apimachinery/lease"
	"k8s.io/utils/clock"
)

// The kubelet's defaults.
const (
	DefaultUpdateFrequency = 10 * time.Second
	DefaultReportFrequency = 5 * time.Minute
	DefaultLeaseDuration   = 40 * time.Second
	// LeaseNamespace holds the nodes' leases.
	LeaseNamespace = "kube-node-lease"
)

// Options configure a Manager. Client, NodeName and Node are required.
type Options struct {
	Client   kubernetes.Interface
	NodeName string
	// Node returns the node as the agent sees it now: labels, addresses,
	// capacity, allocatable, conditions, nodeInfo, images, daemonEndpoints.
	// Its condition times are replaced: transitions are kept from the API's
	// node when the status did not change, heartbeats are now.
	Node func(ctx context.Context) (*v1.Node, error)
	// Labels (--node-labels) and Taints (--register-with-taints) are added at
	// registration.
	Labels map[string]string
	Taints []v1.Taint
	// UpdateFrequency: how often the status is computed
	// (nodeStatusUpdateFrequency, default 10 s); it is patched when it
	// changed, and at least every ReportFrequency (nodeStatusReportFrequency,
	// default 5 min).
	UpdateFrequency, ReportFrequency time.Duration
	// LeaseDuration defaults to 40 s, renewed every quarter of it (10 s).
	LeaseDuration time.Duration
	// Recorder receives the kubelet's node events when a condition changes
	// (NodeReady, NodeNotReady, NodeHasSufficientMemory, …); optional.
	// client-go's record.EventRecorder satisfies it.
	Recorder EventRecorder
	Clock    clock.WithTicker
	Logger   *slog.Logger
}

// EventRecorder receives events about the node (a *v1.ObjectReference of
// kind Node).
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// conditionEvents are the kubelet's event reasons for a condition's status:
// [False, True].
var conditionEvents = map[v1.NodeConditionType][2]string{
	v1.NodeReady:          {"NodeNotReady", "NodeReady"},
	v1.NodeMemoryPressure: {"NodeHasSufficientMemory", "NodeHasInsufficientMemory"},
	v1.NodeDiskPressure:   {"NodeHasNoDiskPressure", "NodeHasDiskPressure"},
	v1.NodePIDPressure:    {"NodeHasSufficientPID", "NodeHasInsufficientPID"},
}

// Manager registers the node and keeps its status and lease current.
type Manager struct {
	o   Options
	log *slog.Logger

	// lastReport is when the status was last patched, reported the
	// condition statuses last reported as events (Run's goroutine).
	lastReport time.Time
	reported   map[v1.NodeConditionType]v1.ConditionStatus
	// watched is the Node as a watch of it shows it (Run's informer), read
	// instead of a GET at every update, as the kubelet's node lister; nil
	// outside Run.
	watched cache.SharedInformer
}

// New returns a Manager.
func New(o Options) (*Manager, error) {
	if o.Client == nil || o.NodeName == "" || o.Node == nil {
		return nil, errors.New("nodestatus: Client, NodeName and Node are required")
	}
	if o.UpdateFrequency <= 0 {
		o.UpdateFrequency = DefaultUpdateFrequency
	}
	if o.ReportFrequency <= 0 {
		o.ReportFrequency = DefaultReportFrequency
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Manager{o: o, log: o.Logger}, nil
}

// Run registers the node (retrying with back-off until it succeeds or ctx
// ends), then renews its lease and updates its status until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	node, err := m.registerUntilDone(ctx)
	if err != nil {
		return // ctx ended
	}
	setOwner := func(l *coordinationv1.Lease) error {
		l.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
		}}
		return nil
	}
	renew := m.o.LeaseDuration / 4
	lc := lease.NewController(m.o.Clock, m.o.Client, m.o.NodeName, int32(m.o.LeaseDuration/time.Second),
		func() { m.log.Warn("node lease: repeated renewal failures") }, renew, m.o.NodeName, LeaseNamespace, setOwner)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lc.Run(ctx)
	}()
	defer func() { <-done }()

	// The Node, watched: the status loop reads it from there (a GET every
	// 10 s was half of an idle node's requests).
	m.watched = m.nodeInformer()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		m.watched.RunWithContext(ctx)
	}()
	defer func() { <-watchDone }()

	t := m.o.Clock.NewTicker(m.o.UpdateFrequency)
	defer t.Stop()
	for {
		if err := m.UpdateStatus(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("node status update failed", "node", m.o.NodeName, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// registerUntilDone registers the node, retrying with the kubelet's back-off
// (100 ms doubling to 7 s).
func (m *Manager) registerUntilDone(ctx context.Context) (*v1.Node, error) {
	delay := 100 * time.Millisecond
	for {
		node, err := m.Register(ctx)
		if err == nil {
			return node, nil
		}
		m.log.Warn("node registration failed; retrying", "node", m.o.NodeName, "in", delay, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-m.o.Clock.After(delay):
		}
		delay = min(2*delay, 7*time.Second)
	}
}

// Register creates the Node, or reconciles the existing one (labels the
// agent owns, taints to register with on a fresh node only, as the kubelet),
// and returns it as the API server has it.
func (m *Manager) Register(ctx context.Context) (*v1.Node, error) {
	want, err := m.desired(ctx)
	if err != nil {
		return nil, err
	}
	nodes := m.o.Client.CoreV1().Nodes()
	created, err := nodes.Create(ctx, want, metav1.CreateOptions{})
	if err == nil {
		m.log.Info("node registered", "node", m.o.NodeName)
		return created, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("register node %s: %w", m.o.NodeName, err)
	}
	existing, err := nodes.Get(ctx, m.o.NodeName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("register node %s: get the existing node: %w", m.o.NodeName, err)
	}
	// As the kubelet's updateDefaultLabels: the labels the agent sets win.
	updated := existing.DeepCopy()
	if updated.Labels == nil {
		updated.Labels = map[string]string{}
	}
	maps.Copy(updated.Labels, want.Labels)
	if !maps.Equal(updated.Labels, existing.Labels) {
		patch, err := twoWayPatch(existing, updated)
		if err != nil {
			return nil, err
		}
		if existing, err = nodes.Patch(ctx, m.o.NodeName, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return nil, fmt.Errorf("register node %s: update its labels: %w", m.o.NodeName, err)
		}
	}
	m.log.Info("node already registered; reconciled", "node", m.o.NodeName)
	return existing, nil
}

// desired is the node to register: the agent's view plus the configured
// labels and taints.
func (m *Manager) desired(ctx context.Context) (*v1.Node, error) {
	n, err := m.o.Node(ctx)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", m.o.NodeName, err)
	}
	n = n.DeepCopy()
	n.Name = m.o.NodeName
	n.ResourceVersion, n.UID, n.CreationTimestamp = "", "", metav1.Time{}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	maps.Copy(n.Labels, m.o.Labels)
	n.Spec.Taints = append(n.Spec.Taints, m.o.Taints...)
	now := metav1.NewTime(m.o.Clock.Now())
	for i := range n.Status.Conditions {
		n.Status.Conditions[i].LastHeartbeatTime = now
		n.Status.Conditions[i].LastTransitionTime = now
	}
	return n, nil
}

// UpdateStatus computes the node's status and patches it when it changed
// (conditions compared without their times) or when the last report is
// ReportFrequency old.
func (m *Manager) UpdateStatus(ctx context.Context) error {
	nodes := m.o.Client.CoreV1().Nodes()
	old := m.watchedNode()
	if old == nil {
		// Not watched yet: resourceVersion 0, the API server's cache is
		// enough, as the kubelet.
		var err error
		if old, err = nodes.Get(ctx, m.o.NodeName, metav1.GetOptions{ResourceVersion: "0"}); err != nil {
			return fmt.Errorf("get node %s: %w", m.o.NodeName, err)
		}
	}
	view, err := m.o.Node(ctx)
	if err != nil {
		return fmt.Errorf("node %s: %w", m.o.NodeName, err)
	}
	now := m.o.Clock.Now()
	updated := old.DeepCopy()
	updated.Status = *view.Status.DeepCopy()
	updated.Status.Conditions = mergeConditions(old.Status.Conditions, view.Status.Conditions, metav1.NewTime(now))
	if now.Before(m.lastReport.Add(m.o.ReportFrequency)) && !statusChanged(&old.Status, &updated.Status) {
		return nil
	}
	patch, err := twoWayPatch(old, updated)
	if err != nil {
		return err
	}
	if _, err := nodes.Patch(ctx, m.o.NodeName, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("patch the status of node %s: %w", m.o.NodeName, err)
	}
	m.lastReport = now
	m.recordConditions(updated.Status.Conditions)
	return nil
}

// recordConditions reports each condition whose status changed since the
// last report (every one the first time) as the kubelet's node event.
func (m *Manager) recordConditions(conds []v1.NodeCondition) {
	if m.o.Recorder == nil {
		return
	}
	if m.reported == nil {
		m.reported = map[v1.NodeConditionType]v1.ConditionStatus{}
	}
	ref := &v1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: m.o.NodeName, UID: types.UID(m.o.NodeName)}
	for _, c := range conds {
		reasons, ok := conditionEvents[c.Type]
		if !ok || m.reported[c.Type] == c.Status || c.Status == v1.ConditionUnknown {
			continue
		}
		m.reported[c.Type] = c.Status
		reason := reasons[0]
		if c.Status == v1.ConditionTrue {
			reason = reasons[1]
		}
		m.o.Recorder.Eventf(ref, v1.EventTypeNormal, reason, "Node %s status is now: %s", m.o.NodeName, reason)
	}
}

// nodeInformer watches the node's own Node (the Node authorizer lets a node
// read and watch itself).
func (m *Manager) nodeInformer() cache.SharedInformer {
	selector := fields.OneTermEqualSelector("metadata.name", m.o.NodeName).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector
			return m.o.Client.CoreV1().Nodes().List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			return m.o.Client.CoreV1().Nodes().Watch(ctx, opts)
		},
	}
	return cache.NewSharedInformer(cache.ToListWatcherWithWatchListSemantics(lw, m.o.Client), &v1.Node{}, 0)
}

// watchedNode is the Node as last watched, or nil.
func (m *Manager) watchedNode() *v1.Node {
	if m.watched == nil || !m.watched.HasSynced() {
		return nil
	}
	obj, ok, err := m.watched.GetStore().GetByKey(m.o.NodeName)
	if err != nil || !ok {
		return nil
	}
	n, _ := obj.(*v1.Node)
	return n
}

// mergeConditions gives the conditions of want their times: a heartbeat now,
// and the transition time of the same condition in have when its status did
// not change (now otherwise).
func mergeConditions(have, want []v1.NodeCondition, now metav1.Time) []v1.NodeCondition {
	out := make([]v1.NodeCondition, len(want))
	for i, c := range want {
		c.LastHeartbeatTime = now
		c.LastTransitionTime = now
		for _, h := range have {
			if h.Type == c.Type && h.Status == c.Status {
				c.LastTransitionTime = h.LastTransitionTime
			}
		}
		out[i] = c
	}
	return out
}

// statusChanged compares two node statuses, conditions without their
// heartbeat times (the kubelet's nodeStatusHasChanged).
func statusChanged(a, b *v1.NodeStatus) bool {
	if len(a.Conditions) != len(b.Conditions) {
		return true
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		x.LastHeartbeatTime, y.LastHeartbeatTime = metav1.Time{}, metav1.Time{}
		if !apiequality.Semantic.DeepEqual(x, y) {
			return true
		}
	}
	ac, bc := a.DeepCopy(), b.DeepCopy()
	ac.Conditions, bc.Conditions = nil, nil
	return !apiequality.Semantic.DeepEqual(ac, bc)
}

// twoWayPatch is the strategic merge patch from old to new, with the old
// UID as a precondition (the kubelet's PatchNodeStatus).
func twoWayPatch(old, updated *v1.Node) ([]byte, error) {
	oldData, err := json.Marshal(old)
	if err != nil {
		return nil, fmt.Errorf("marshal node: %w", err)
	}
	newData, err := json.Marshal(updated)
	if err != nil {
		return nil, fmt.Errorf("marshal node: %w", err)
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldData, newData, v1.Node{})
	if err != nil {
		return nil, fmt.Errorf("node patch: %w", err)
	}
	var withUID map[string]any
	if err := json.Unmarshal(patch, &withUID); err != nil {
		return nil, fmt.Errorf("node patch: %w", err)
	}
	meta, _ := withUID["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	meta["uid"] = string(old.UID)
	withUID["metadata"] = meta
	return json.Marshal(withUID)
}
