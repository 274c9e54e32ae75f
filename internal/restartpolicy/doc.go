// Package restartpolicy says whether a container that exited is restarted: the
// pod's restartPolicy, overridden by a container's own restartPolicy and its
// restartPolicyRules (Kubernetes' ContainerRestartRules, on by default since
// 1.35). The pod runtime, the status generator and the probes all decide with it.
package restartpolicy
