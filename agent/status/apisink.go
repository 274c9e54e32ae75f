package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes"
)

// APISinkOptions configure an APISink.
type APISinkOptions struct {
	// Client reaches the API server with the node's credentials. Required.
	Client kubernetes.Interface
	// Target names the API object whose status is the pod's: the pod itself
	// for a pod from the API server, its mirror pod for a static pod. ok false
	// drops the Put (pods given in code); an error fails it, to be retried (a
	// static pod whose mirror is not created yet). Nil: every pod is the
	// API's, under its own UID.
	Target func(pod *v1.Pod) (uid types.UID, ok bool, err error)
	Logger *slog.Logger
}

// APISink writes pod statuses to the API server, as the kubelet's status
// manager does: the pod read back, its status patched (a strategic merge patch
// from what the API has, with the pod's UID as a precondition), conditions the
// agent does not set (a controller's, the scheduler's) kept, and a terminal
// phase never moved back. The Manager calls Put only for a new status and
// retries a failed one.
type APISink struct {
	o   APISinkOptions
	log *slog.Logger
}

// NewAPISink returns an APISink.
func NewAPISink(o APISinkOptions) (*APISink, error) {
	if o.Client == nil {
		return nil, errors.New("status: APISink: no client")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &APISink{o: o, log: o.Logger}, nil
}

// Put patches the pod's status in the API. A pod the API no longer has (or
// has under another UID) is not an error: its status has nowhere to go.
func (s *APISink) Put(ctx context.Context, pod *v1.Pod, status v1.PodStatus, _ uint64) error {
	uid := pod.UID
	if s.o.Target != nil {
		var ok bool
		var err error
		if uid, ok, err = s.o.Target(pod); err != nil || !ok {
			return err
		}
	}
	pods := s.o.Client.CoreV1().Pods(pod.Namespace)
	cur, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	if cur.UID != uid {
		return nil // another pod of that name now
	}
	next := mergeForAPI(&cur.Status, &status)
	if isTerminal(cur.Status.Phase) && !isTerminal(next.Phase) {
		s.log.Warn("pod status not written: it would move a terminal phase back", "pod", pod.Namespace+"/"+pod.Name,
			"api", cur.Status.Phase, "agent", next.Phase)
		return nil
	}
	patch, unchanged, err := podStatusPatch(cur, next)
	if err != nil || unchanged {
		return err
	}
	if _, err := pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // gone, or replaced: the UID precondition held
		}
		return fmt.Errorf("patch the status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// mergeForAPI is the agent's status with the conditions it does not set kept
// from the API's (the kubelet's mergePodStatus).
func mergeForAPI(api, agent *v1.PodStatus) *v1.PodStatus {
	out := agent.DeepCopy()
	set := map[v1.PodConditionType]bool{}
	for _, c := range out.Conditions {
		set[c.Type] = true
	}
	for _, c := range api.Conditions {
		if !set[c.Type] {
			out.Conditions = append(out.Conditions, c)
		}
	}
	return out
}

// podStatusPatch is the strategic merge patch of the pod's status from what the
// API has to next, with the UID as a precondition; unchanged when there is
// nothing to write.
func podStatusPatch(cur *v1.Pod, next *v1.PodStatus) ([]byte, bool, error) {
	oldData, err := json.Marshal(v1.Pod{Status: cur.Status})
	if err != nil {
		return nil, false, fmt.Errorf("marshal pod status: %w", err)
	}
	newData, err := json.Marshal(v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: cur.UID}, Status: *next})
	if err != nil {
		return nil, false, fmt.Errorf("marshal pod status: %w", err)
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldData, newData, v1.Pod{})
	if err != nil {
		return nil, false, fmt.Errorf("pod status patch: %w", err)
	}
	var p map[string]any
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, false, fmt.Errorf("pod status patch: %w", err)
	}
	if _, ok := p["status"]; !ok {
		return nil, true, nil
	}
	return patch, false, nil
}
