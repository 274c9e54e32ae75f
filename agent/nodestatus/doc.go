// Package nodestatus registers a node with the API server and keeps it
// current, as the kubelet does: the Node object created (or reconciled with
// the one that exists) with its labels and taints, its status patched when it
// changes and at least every report period (conditions keep their transition
// times, heartbeats move), and its Lease in kube-node-lease renewed every
// 10 s with a 40 s duration, owned by the Node so it goes with it.
//
// The status itself comes from the caller (Options.Node): in nodekit the
// agent's own view of the node (capacity, allocatable, conditions with the
// kubelet's reasons, nodeInfo, images), the same `nodekit-kubelet get node`
// shows. Everything here works with node credentials only (the Node
// authorizer and NodeRestriction): a node creates and patches its own Node and
// its own Lease, nothing else.
package nodestatus
