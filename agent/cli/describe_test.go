package cli

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestDescribePod: kubectl's layout for a pod with an init container,
// probes, environment, mounts and volumes of each kind the agent serves.
func TestDescribePod(t *testing.T) {
	p := goldenPod()
	var b strings.Builder
	if err := describePod(&b, &p, nil, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	want := `Name:         web-node-a
Namespace:    default
Node:         node-a/192.0.2.2
Start Time:   Mon, 07 Dec 2026 21:00:00 +0000
Labels:       app=web
Annotations:  kubernetes.io/config.source: file
Status:       Running
IP:           10.88.0.5
IPs:
  IP:  10.88.0.5
Init Containers:
  log-shipper:
    Container ID:   nodekit://aaa
    Image:          busybox
    Image ID:       sha256:bbb
    Port:           <none>
    Host Port:      <none>
    State:          Running
      Started:      Mon, 07 Dec 2026 21:00:00 +0000
    Ready:          True
    Restart Count:  1
    Environment:    <none>
    Mounts:         <none>
Containers:
  httpd:
    Container ID:  nodekit://ccc
    Image:         busybox
    Image ID:      sha256:ddd
    Port:          8080/TCP (http)
    Host Port:     0/TCP (http)
    Args:
      httpd
      -f
    State:          Running
      Started:      Mon, 07 Dec 2026 21:00:00 +0000
    Ready:          True
    Restart Count:  0
    Limits:
      memory:  64Mi
    Requests:
      cpu:      100m
      memory:   64Mi
    Liveness:   http-get http://:8080/healthz delay=0s timeout=1s period=10s successThreshold=1 failureThreshold=3
    Readiness:  exec [cat /tmp/ready] delay=2s timeout=1s period=5s successThreshold=1 failureThreshold=3
    Environment Variables from:
      web-env  ConfigMap  Optional: true
    Environment:
      GREETING:  hello
      POD_IP:    10.88.0.5 (v1:status.podIP)
      PASSWORD:  <set to the key 'password' in secret 'web-auth'>  Optional: false
    Mounts:
      /tmp from scratch (rw)
      /www from content (ro)
Conditions:
  Type          Status
  Initialized   True 
  Ready         True 
Volumes:
  content:
    Type:      ConfigMap (a volume populated by a ConfigMap)
    Name:      web-content
    Optional:  false
  scratch:
    Type:        EmptyDir (a temporary directory that shares a pod's lifetime)
    Medium:      Memory
    SizeLimit:   <unset>
QoS Class:       Burstable
Node-Selectors:  <none>
Tolerations:     op=Exists
Events:          <none>
Timeline:        <none>
`
	if b.String() != want {
		t.Errorf("describe pod =\n%s\nwant\n%s", b.String(), want)
	}
}

// goldenPod is web-node-a with a sidecar, probes, environment, mounts and
// volumes.
func goldenPod() v1.Pod {
	always := v1.ContainerRestartPolicyAlways
	optional := true
	p := webPod()
	p.Annotations = map[string]string{"kubernetes.io/config.source": "file", v1.LastAppliedConfigAnnotation: "{}"}
	p.Status.StartTime = &metav1.Time{Time: t0}
	p.Spec.InitContainers = []v1.Container{{Name: "log-shipper", Image: "busybox", RestartPolicy: &always}}
	p.Status.InitContainerStatuses = []v1.ContainerStatus{{Name: "log-shipper", Ready: true, RestartCount: 1, ContainerID: "nodekit://aaa", ImageID: "sha256:bbb",
		State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}}}}
	c := &p.Spec.Containers[0]
	c.Args = []string{"httpd", "-f"}
	c.Ports = []v1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: v1.ProtocolTCP}}
	c.Resources.Limits = v1.ResourceList{v1.ResourceMemory: mustQuantity("64Mi")}
	c.Resources.Requests = v1.ResourceList{v1.ResourceCPU: mustQuantity("100m"), v1.ResourceMemory: mustQuantity("64Mi")}
	c.LivenessProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080), Scheme: v1.URISchemeHTTP}},
		TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}
	c.ReadinessProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"cat", "/tmp/ready"}}},
		InitialDelaySeconds: 2, TimeoutSeconds: 1, PeriodSeconds: 5, SuccessThreshold: 1, FailureThreshold: 3}
	c.Env = []v1.EnvVar{
		{Name: "GREETING", Value: "hello"},
		{Name: "POD_IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"}}},
		{Name: "PASSWORD", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "web-auth"}, Key: "password"}}},
	}
	c.EnvFrom = []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "web-env"}, Optional: &optional}}}
	c.VolumeMounts = []v1.VolumeMount{{Name: "content", MountPath: "/www", ReadOnly: true}, {Name: "scratch", MountPath: "/tmp"}}
	p.Spec.Volumes = []v1.Volume{
		{Name: "content", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "web-content"}}}},
		{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}},
	}
	p.Spec.Tolerations = []v1.Toleration{{Operator: v1.TolerationOpExists}}
	p.Status.Conditions = []v1.PodCondition{{Type: v1.PodInitialized, Status: v1.ConditionTrue}, {Type: v1.PodReady, Status: v1.ConditionTrue}}
	p.Status.ContainerStatuses[0].ContainerID = "nodekit://ccc"
	p.Status.ContainerStatuses[0].ImageID = "sha256:ddd"

	return p
}

// TestDescribeCrashLoop: a crash-looping pod described through the agent:
// its last state with the exit code, the events taken from the timeline
// (identical ones counted, as the kubelet's recorder does) and the timeline
// with its back-off delays, every line within 120 columns.
func TestDescribeCrashLoop(t *testing.T) {
	f := newFakeAgent(t)
	f.setPods(webPod(), crashPod())
	f.timelines["default/crashloop-node-a"] = sampleTimeline()
	out, errOut, code := f.run(t, "describe", "pod", "crashloop-node-a")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		`(?m)^    State:          Waiting\n      Reason:       CrashLoopBackOff$`,
		`(?m)^    Last State:     Terminated\n      Reason:       Error\n      Exit Code:    1$`,
		`(?m)^    Restart Count:  2$`,
		`(?m)^Events:\n  Type     Reason   Age\s+From     Message\n  ----     ------   ----\s+----     -------\n`,
		`(?m)^  Normal   Created  \S+ \(x2 over \S+\)\s+kubelet  spec\.containers\{app\}: Container created$`,
		`(?m)^  Warning  BackOff  \S+ \(x2 over \S+\)\s+kubelet  spec\.containers\{app\}: Back-off restarting failed container app in pod crashloop-node-a_default\(uid-crash\)$`,
		`(?m)^Timeline:  \(times from 2026-12-07T21:00:00\.000Z\)\n  TIME      KIND     CONTAINER  WHAT: WHY \[TOOK\] — MESSAGE$`,
		`(?m)^  \+0\.232s   PLEG     app        ContainerDied — exit code 1$`,
		`(?m)^  \+0\.240s   BackOff  app        back-off: BackOff \[10s\]\n {34}Back-off restarting failed container app in pod crashloop-node-a_default\(uid-crash\)$`,
		`(?m)^  \+10\.310s  BackOff  app        back-off: BackOff \[20s\]$`,
		`(?m)^  \+30\.350s  CRI      app        StartContainer \[1\.2s\]\n {34}error: rpc error: code = Unknown desc = runc create failed`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("describe lacks %s:\n%s", want, out)
		}
	}
	// The events come in the order they last happened.
	if i, j := strings.Index(out, "  Normal   Pulled"), strings.Index(out, "  Warning  BackOff"); i < 0 || j < i {
		t.Errorf("events out of order:\n%s", out)
	}
	i := strings.Index(out, "Timeline:")
	if i < 0 {
		t.Fatalf("describe lacks the timeline:\n%s", out)
	}
	timeline := out[i:]
	for _, l := range strings.Split(timeline, "\n") {
		if n := utf8.RuneCountInString(l); n > 120 {
			t.Errorf("timeline line of %d columns: %q", n, l)
		}
	}
	if strings.Count(timeline, "\n  +") != len(sampleTimeline().Entries) {
		t.Errorf("timeline does not show every entry:\n%s", timeline)
	}

	// No timeline served (404): none, and no events.
	out, _, code = f.run(t, "describe", "pod", "web-node-a")
	if code != 0 || !regexp.MustCompile(`(?m)^Events:\s+<none>\nTimeline:\s+<none>\n$`).MatchString(out) {
		t.Errorf("describe without a timeline: exit %d\n%s", code, out)
	}
}

// TestTimelineLayout: offsets, the notes of the header, the message on its
// entry's line when it fits, else below it; long text wrapped within the
// width, under its column.
func TestTimelineLayout(t *testing.T) {
	gone := t0.Add(2*time.Hour + 3*time.Minute + 4*time.Second)
	long := strings.Repeat("the message of an entry goes on and on ", 4)
	tl := &podTimeline{Dropped: 7, Gone: &gone, Entries: []timelineEntry{
		{Time: t0, Kind: "Probe", Container: "app", What: "liveness probe failed", Reason: "Unhealthy", Event: "Warning",
			Message: "Liveness probe failed: HTTP probe failed with statuscode: 500", Duration: "2.103442ms"},
		{Time: t0.Add(75*time.Second + 5*time.Millisecond), Kind: "Sync", Container: "app", What: "kill container", Reason: "liveness probe failed"},
		{Time: t0.Add(75*time.Second + 9*time.Millisecond), Kind: "PLEG", Container: "app", What: "ContainerDied", Reason: "Error", Message: "exit code 137"},
		{Time: t0.Add(76 * time.Second), Kind: "Hook", Container: "app", What: "preStop", Message: long, Error: "exit code 1"},
		{Time: t0.Add(77 * time.Second), Kind: "Status", Container: "a-container-with-a-long-name", What: strings.Repeat("state Waiting -> Running ", 4)},
	}}
	var b strings.Builder
	if err := writeTimeline(&b, tl, 120); err != nil {
		t.Fatal(err)
	}
	want := `Timeline:  (times from 2026-12-07T21:00:00.000Z; 7 older entries dropped; pod gone at +2h03m04s)
  TIME        KIND    CONTAINER             WHAT: WHY [TOOK] — MESSAGE
  +0.000s     Probe   app                   liveness probe failed: Unhealthy [2.1ms]
                                              Liveness probe failed: HTTP probe failed with statuscode: 500
  +1m15.005s  Sync    app                   kill container: liveness probe failed
  +1m15.009s  PLEG    app                   ContainerDied: Error — exit code 137
  +1m16.000s  Hook    app                   preStop
                                              the message of an entry goes on and on the message of an entry goes on and
                                              on the message of an entry goes on and on the message of an entry goes on
                                              and on; error: exit code 1
  +1m17.000s  Status  a-container-with-a-long-name
                                            state Waiting -> Running state Waiting -> Running state Waiting -> Running
                                            state Waiting -> Running
`
	if b.String() != want {
		t.Errorf("timeline =\n%s\nwant\n%s", b.String(), want)
	}
	for _, l := range strings.Split(b.String(), "\n") {
		if n := utf8.RuneCountInString(l); n > 120 {
			t.Errorf("line of %d columns: %q", n, l)
		}
	}
	for in, want := range map[string]string{
		"142.714158ms": "142.7ms", "3.092241ms": "3.1ms", "512.345µs": "512µs", "1.23456s": "1.23s", "10s": "10s",
		"2m3.4s": "2m3s", "soon": "soon",
	} {
		if got := shortDuration(in); got != want {
			t.Errorf("shortDuration(%q) = %q, want %q", in, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		0: "+0.000s", 1234 * time.Millisecond: "+1.234s", 61*time.Second + 500*time.Millisecond: "+1m01.500s",
		3*time.Hour + 5*time.Second: "+3h00m05s", -2 * time.Millisecond: "-0.002s",
	} {
		if got := offset(d); got != want {
			t.Errorf("offset(%v) = %q, want %q", d, got, want)
		}
	}
}
