package cli

import "time"

// sampleTimeline is crashloop-node-a's timeline: started, died, backed off,
// restarted, died again.
func sampleTimeline() *podTimeline {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	return &podTimeline{Namespace: "default", Name: "crashloop-node-a", UID: "uid-crash", Entries: []timelineEntry{
		{Time: at(0), Kind: "Source", What: "pod added", Reason: "file", Message: "/etc/kubernetes/manifests/crashloop.yaml"},
		{Time: at(3), Kind: "Sync", What: "create sandbox", Reason: "SandboxMissing"},
		{Time: at(151), Kind: "CRI", What: "RunPodSandbox", Duration: "147.2ms"},
		{Time: at(160), Kind: "Image", Container: "app", What: "image present", Reason: "Pulled", Event: "Normal",
			Message: `Container image "busybox" already present on machine and can be accessed by the pod`},
		{Time: at(171), Kind: "Sync", Container: "app", What: "start container", Reason: "Created", Event: "Normal", Message: "Container created"},
		{Time: at(190), Kind: "CRI", Container: "app", What: "StartContainer", Duration: "18.9ms", Reason: "Started", Event: "Normal", Message: "Container started"},
		{Time: at(232), Kind: "PLEG", Container: "app", What: "ContainerDied", Message: "exit code 1"},
		{Time: at(240), Kind: "BackOff", Container: "app", What: "back-off", Reason: "BackOff", Duration: "10s", Event: "Warning",
			Message: "Back-off restarting failed container app in pod crashloop-node-a_default(uid-crash)"},
		{Time: at(10260), Kind: "Sync", Container: "app", What: "start container", Reason: "Created", Event: "Normal", Message: "Container created"},
		{Time: at(10301), Kind: "PLEG", Container: "app", What: "ContainerDied", Message: "exit code 1"},
		{Time: at(10310), Kind: "BackOff", Container: "app", What: "back-off", Reason: "BackOff", Duration: "20s", Event: "Warning",
			Message: "Back-off restarting failed container app in pod crashloop-node-a_default(uid-crash)"},
		{Time: at(30350), Kind: "CRI", Container: "app", What: "StartContainer", Duration: "1.2s",
			Error: "rpc error: code = Unknown desc = runc create failed: unable to start container process: exec: \"sh\": executable file not found in $PATH: unknown"},
		{Time: at(30400), Kind: "Status", What: "phase Pending -> Running"},
	}}
}
