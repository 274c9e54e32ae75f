package restartpolicy

import v1 "k8s.io/api/core/v1"

// ShouldRestart reports whether container c of a pod with spec is restarted after
// exiting with exitCode: a matching restart rule with action Restart first, then
// the container's restartPolicy, then the pod's (Always when unset).
//
// The RestartAllContainers action (a later, separately gated feature) is not
// supported: such a rule falls back to the container's policy, as upstream does
// with that feature off.
func ShouldRestart(c *v1.Container, spec *v1.PodSpec, exitCode int32) bool {
	if c.RestartPolicy != nil {
		if rule, ok := matchingRule(c, exitCode); ok && rule.Action == v1.ContainerRestartRuleActionRestart {
			return true
		}
		switch *c.RestartPolicy {
		case v1.ContainerRestartPolicyAlways:
			return true
		case v1.ContainerRestartPolicyOnFailure:
			return exitCode != 0
		case v1.ContainerRestartPolicyNever:
			return false
		}
	}
	switch spec.RestartPolicy {
	case v1.RestartPolicyOnFailure:
		return exitCode != 0
	case v1.RestartPolicyNever:
		return false
	}
	return true
}

// RestartsWhenKilled reports whether a running container that the agent kills
// (a failed liveness or startup probe) is started again. Only restart policies
// count: with no exit code, rules cannot be evaluated.
func RestartsWhenKilled(c *v1.Container, spec *v1.PodSpec) bool {
	if c.RestartPolicy != nil {
		return *c.RestartPolicy != v1.ContainerRestartPolicyNever
	}
	return spec.RestartPolicy != v1.RestartPolicyNever
}

// RunsOnce reports whether a container that succeeded stays done when its pod
// gets a new sandbox (restartPolicy OnFailure, the container's or the pod's).
func RunsOnce(c *v1.Container, spec *v1.PodSpec) bool {
	if c.RestartPolicy != nil {
		return *c.RestartPolicy == v1.ContainerRestartPolicyOnFailure
	}
	return spec.RestartPolicy == v1.RestartPolicyOnFailure
}

// matchingRule is the first of c's restartPolicyRules whose exit code condition
// holds for exitCode.
func matchingRule(c *v1.Container, exitCode int32) (v1.ContainerRestartRule, bool) {
	for _, rule := range c.RestartPolicyRules {
		if rule.ExitCodes == nil {
			continue
		}
		in := false
		for _, v := range rule.ExitCodes.Values {
			if v == exitCode {
				in = true
			}
		}
		switch rule.ExitCodes.Operator {
		case v1.ContainerRestartRuleOnExitCodesOpIn:
			if in {
				return rule, true
			}
		case v1.ContainerRestartRuleOnExitCodesOpNotIn:
			if !in {
				return rule, true
			}
		}
	}
	return v1.ContainerRestartRule{}, false
}
