package restartpolicy

import (
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestShouldRestart(t *testing.T) {
	never, onFailure, always := v1.ContainerRestartPolicyNever, v1.ContainerRestartPolicyOnFailure, v1.ContainerRestartPolicyAlways
	rule := func(op v1.ContainerRestartRuleOnExitCodesOperator, codes ...int32) []v1.ContainerRestartRule {
		return []v1.ContainerRestartRule{{Action: v1.ContainerRestartRuleActionRestart,
			ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: op, Values: codes}}}
	}
	for _, tc := range []struct {
		name   string
		pod    v1.RestartPolicy
		policy *v1.ContainerRestartPolicy
		rules  []v1.ContainerRestartRule
		code   int32
		want   bool
	}{
		{"pod Always, exit 0", v1.RestartPolicyAlways, nil, nil, 0, true},
		{"pod unset", "", nil, nil, 0, true},
		{"pod OnFailure, exit 0", v1.RestartPolicyOnFailure, nil, nil, 0, false},
		{"pod OnFailure, exit 1", v1.RestartPolicyOnFailure, nil, nil, 1, true},
		{"pod Never, exit 1", v1.RestartPolicyNever, nil, nil, 1, false},
		{"container Never in an Always pod", v1.RestartPolicyAlways, &never, nil, 1, false},
		{"container Always in a Never pod", v1.RestartPolicyNever, &always, nil, 0, true},
		{"container OnFailure, exit 0", v1.RestartPolicyAlways, &onFailure, nil, 0, false},
		{"container OnFailure, exit 2", v1.RestartPolicyNever, &onFailure, nil, 2, true},
		{"rule In matches", v1.RestartPolicyNever, &never, rule(v1.ContainerRestartRuleOnExitCodesOpIn, 42, 43), 42, true},
		{"rule In misses", v1.RestartPolicyNever, &never, rule(v1.ContainerRestartRuleOnExitCodesOpIn, 42), 1, false},
		{"rule NotIn matches", v1.RestartPolicyNever, &never, rule(v1.ContainerRestartRuleOnExitCodesOpNotIn, 0), 7, true},
		{"rule NotIn misses", v1.RestartPolicyAlways, &never, rule(v1.ContainerRestartRuleOnExitCodesOpNotIn, 0), 0, false},
		{"rules without a container policy are ignored", v1.RestartPolicyNever, nil, rule(v1.ContainerRestartRuleOnExitCodesOpIn, 1), 1, false},
		{"RestartAllContainers falls back to the policy", v1.RestartPolicyNever, &never, []v1.ContainerRestartRule{{
			Action:    v1.ContainerRestartRuleActionRestartAllContainers,
			ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: v1.ContainerRestartRuleOnExitCodesOpIn, Values: []int32{1}}}}, 1, false},
	} {
		c := &v1.Container{RestartPolicy: tc.policy, RestartPolicyRules: tc.rules}
		if got := ShouldRestart(c, &v1.PodSpec{RestartPolicy: tc.pod}, tc.code); got != tc.want {
			t.Errorf("%s: ShouldRestart = %v, want %v", tc.name, got, tc.want)
		}
	}
	if RestartsWhenKilled(&v1.Container{RestartPolicy: &never}, &v1.PodSpec{RestartPolicy: v1.RestartPolicyAlways}) ||
		!RestartsWhenKilled(&v1.Container{}, &v1.PodSpec{RestartPolicy: v1.RestartPolicyOnFailure}) {
		t.Error("RestartsWhenKilled")
	}
	if !RunsOnce(&v1.Container{RestartPolicy: &onFailure}, &v1.PodSpec{RestartPolicy: v1.RestartPolicyAlways}) ||
		RunsOnce(&v1.Container{RestartPolicy: &always}, &v1.PodSpec{RestartPolicy: v1.RestartPolicyOnFailure}) {
		t.Error("RunsOnce")
	}
}
