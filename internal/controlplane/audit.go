package controlplane

import "path/filepath"

// auditPolicy records every request at level Metadata (who, verb, resource,
// response code and timestamps; no bodies) at the stages ResponseStarted
// (long-running requests: watches, exec, logs -f) and ResponseComplete.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
`

// auditArgs returns the apiserver's flags for an audit log at path (none when
// path is empty), after writing the policy into the control plane's directory.
func (cp *ControlPlane) auditArgs(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	policy := filepath.Join(cp.Dir, "audit-policy.yaml")
	if err := writeFiles(map[string][]byte{policy: []byte(auditPolicy)}); err != nil {
		return nil, err
	}
	return []string{
		"--audit-policy-file=" + policy,
		"--audit-log-path=" + path,
		"--audit-log-format=json",
		// Blocking: an event is in the file when its request has been answered.
		"--audit-log-mode=blocking",
		// No rotation: the reader wants one file.
		"--audit-log-maxsize=0",
	}, nil
}
