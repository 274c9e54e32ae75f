package podsource

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

const testNode = "node1"

const webYAML = `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  containers:
  - name: web
    image: busybox:1.36
    command: ["httpd", "-f"]
    ports:
    - containerPort: 80
      name: http
`

const webJSON = `{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {"name": "web", "labels": {"app": "web"}},
  "spec": {
    "containers": [{
      "name": "web",
      "image": "busybox:1.36",
      "command": ["httpd", "-f"],
      "ports": [{"containerPort": 80, "name": "http"}]
    }]
  }
}`

// basePod is the manifest the tables modify.
func basePod() *v1.Pod {
	return &v1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: v1.PodSpec{Containers: []v1.Container{{
			Name: "web", Image: "busybox:1.36",
		}}},
	}
}

func manifest(t *testing.T, mutate func(*v1.Pod)) []byte {
	t.Helper()
	p := basePod()
	if mutate != nil {
		mutate(p)
	}
	data, err := yaml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseYAMLAndJSON(t *testing.T) {
	for name, data := range map[string]string{"web.yaml": webYAML, "web.json": webJSON} {
		t.Run(name, func(t *testing.T) {
			pod, err := Parse("/etc/manifests/"+name, []byte(data), "Node1")
			if err != nil {
				t.Fatal(err)
			}
			checks := []struct{ what, got, want string }{
				{"name", pod.Name, "web-node1"}, // node name lowercased
				{"namespace", pod.Namespace, "default"},
				{"nodeName", pod.Spec.NodeName, "Node1"},
				{"label", pod.Labels["app"], "web"},
				{"source annotation", pod.Annotations[AnnotationSource], "file"},
				{"hash annotation", pod.Annotations[AnnotationHash], string(pod.UID)},
				{"phase", string(pod.Status.Phase), "Pending"},
				{"image", pod.Spec.Containers[0].Image, "busybox:1.36"},
				{"command", strings.Join(pod.Spec.Containers[0].Command, " "), "httpd -f"},
				{"port name", pod.Spec.Containers[0].Ports[0].Name, "http"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
				}
			}
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(string(pod.UID)) {
				t.Errorf("uid %q is not 32 hex digits", pod.UID)
			}
			if _, ok := pod.Annotations[AnnotationSeen]; ok {
				t.Error("Parse set the seen annotation; ManifestDir sets it")
			}
		})
	}
	y, err := Parse("m", []byte(webYAML), testNode)
	if err != nil {
		t.Fatal(err)
	}
	j, err := Parse("m", []byte(webJSON), testNode)
	if err != nil {
		t.Fatal(err)
	}
	if y.UID != j.UID {
		t.Errorf("the same pod in YAML and JSON from one path got UIDs %s and %s", y.UID, j.UID)
	}
}

func TestImageTag(t *testing.T) {
	for image, want := range map[string]string{
		"busybox":                          "latest",
		"busybox:latest":                   "latest",
		"busybox:1.36":                     "1.36",
		"docker.io/library/busybox":        "latest",
		"localhost:5000/busybox":           "latest",
		"localhost:5000/busybox:1.0":       "1.0",
		"busybox@sha256:0123abcd":          "",
		"busybox:latest@sha256:0123abcd":   "latest",
		"localhost:5000/a/b@sha256:0123ab": "",
	} {
		if got := imageTag(image); got != want {
			t.Errorf("imageTag(%q) = %q, want %q", image, got, want)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	i64 := func(p *int64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	hostPathUnset := v1.HostPathUnset
	tests := []struct {
		name   string
		mutate func(*v1.Pod)
		get    func(*v1.Pod) any
		want   any
	}{
		{"restartPolicy", nil, func(p *v1.Pod) any { return p.Spec.RestartPolicy }, v1.RestartPolicyAlways},
		{"restartPolicy kept", func(p *v1.Pod) { p.Spec.RestartPolicy = v1.RestartPolicyNever },
			func(p *v1.Pod) any { return p.Spec.RestartPolicy }, v1.RestartPolicyNever},
		{"dnsPolicy", nil, func(p *v1.Pod) any { return p.Spec.DNSPolicy }, v1.DNSClusterFirst},
		{"terminationGracePeriodSeconds", nil, func(p *v1.Pod) any { return i64(p.Spec.TerminationGracePeriodSeconds) }, int64(30)},
		{"terminationGracePeriodSeconds 0 kept", func(p *v1.Pod) { p.Spec.TerminationGracePeriodSeconds = new(int64) },
			func(p *v1.Pod) any { return i64(p.Spec.TerminationGracePeriodSeconds) }, int64(0)},
		{"schedulerName", nil, func(p *v1.Pod) any { return p.Spec.SchedulerName }, "default-scheduler"},
		{"enableServiceLinks", nil, func(p *v1.Pod) any { return *p.Spec.EnableServiceLinks }, true},
		{"securityContext", nil, func(p *v1.Pod) any { return p.Spec.SecurityContext != nil }, true},
		{"namespace kept", func(p *v1.Pod) { p.Namespace = "kube-system" }, func(p *v1.Pod) any { return p.Namespace }, "kube-system"},
		{"static toleration", nil, func(p *v1.Pod) any { return p.Spec.Tolerations },
			[]v1.Toleration{{Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute}}},
		{"imagePullPolicy tag", nil, func(p *v1.Pod) any { return p.Spec.Containers[0].ImagePullPolicy }, v1.PullIfNotPresent},
		{"imagePullPolicy no tag", func(p *v1.Pod) { p.Spec.Containers[0].Image = "busybox" },
			func(p *v1.Pod) any { return p.Spec.Containers[0].ImagePullPolicy }, v1.PullAlways},
		{"imagePullPolicy latest", func(p *v1.Pod) { p.Spec.Containers[0].Image = "busybox:latest" },
			func(p *v1.Pod) any { return p.Spec.Containers[0].ImagePullPolicy }, v1.PullAlways},
		{"imagePullPolicy digest", func(p *v1.Pod) { p.Spec.Containers[0].Image = "busybox@sha256:0123" },
			func(p *v1.Pod) any { return p.Spec.Containers[0].ImagePullPolicy }, v1.PullIfNotPresent},
		{"imagePullPolicy kept", func(p *v1.Pod) { p.Spec.Containers[0].ImagePullPolicy = v1.PullNever },
			func(p *v1.Pod) any { return p.Spec.Containers[0].ImagePullPolicy }, v1.PullNever},
		{"imagePullPolicy init container", func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Name: "init", Image: "busybox"}}
		}, func(p *v1.Pod) any { return p.Spec.InitContainers[0].ImagePullPolicy }, v1.PullAlways},
		{"terminationMessagePath", nil, func(p *v1.Pod) any { return p.Spec.Containers[0].TerminationMessagePath }, "/dev/termination-log"},
		{"terminationMessagePolicy", nil, func(p *v1.Pod) any { return p.Spec.Containers[0].TerminationMessagePolicy }, v1.TerminationMessageReadFile},
		{"port protocol", func(p *v1.Pod) { p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80}} },
			func(p *v1.Pod) any { return p.Spec.Containers[0].Ports[0].Protocol }, v1.ProtocolTCP},
		{"hostPort on host network", func(p *v1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 8080}}
		}, func(p *v1.Pod) any { return p.Spec.Containers[0].Ports[0].HostPort }, int32(8080)},
		{"no hostPort off host network", func(p *v1.Pod) { p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 8080}} },
			func(p *v1.Pod) any { return p.Spec.Containers[0].Ports[0].HostPort }, int32(0)},
		{"probe defaults", func(p *v1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Port: intstr.FromInt32(80)}}}
		}, func(p *v1.Pod) any {
			pr := p.Spec.Containers[0].LivenessProbe
			return []any{pr.TimeoutSeconds, pr.PeriodSeconds, pr.SuccessThreshold, pr.FailureThreshold, pr.HTTPGet.Path, pr.HTTPGet.Scheme}
		}, []any{int32(1), int32(10), int32(1), int32(3), "/", v1.URISchemeHTTP}},
		{"probe values kept", func(p *v1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt32(80)}},
				TimeoutSeconds: 5, PeriodSeconds: 2, SuccessThreshold: 2, FailureThreshold: 7}
		}, func(p *v1.Pod) any {
			pr := p.Spec.Containers[0].ReadinessProbe
			return []int32{pr.TimeoutSeconds, pr.PeriodSeconds, pr.SuccessThreshold, pr.FailureThreshold}
		}, []int32{5, 2, 2, 7}},
		{"lifecycle httpGet defaults", func(p *v1.Pod) {
			p.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{Port: intstr.FromInt32(80)}}}
		}, func(p *v1.Pod) any {
			h := p.Spec.Containers[0].Lifecycle.PreStop.HTTPGet
			return []any{h.Path, h.Scheme}
		}, []any{"/", v1.URISchemeHTTP}},
		{"requests default to limits", func(p *v1.Pod) {
			p.Spec.Containers[0].Resources = v1.ResourceRequirements{
				Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("64Mi")},
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m")},
			}
		}, func(p *v1.Pod) any {
			r := p.Spec.Containers[0].Resources.Requests
			return []string{r.Cpu().String(), r.Memory().String()}
		}, []string{"100m", "64Mi"}},
		{"volume without source is emptyDir", func(p *v1.Pod) { p.Spec.Volumes = []v1.Volume{{Name: "data"}} },
			func(p *v1.Pod) any { return p.Spec.Volumes[0].EmptyDir != nil }, true},
		{"configMap defaultMode", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
				LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}}}
		}, func(p *v1.Pod) any { return *p.Spec.Volumes[0].ConfigMap.DefaultMode }, int32(0o644)},
		{"hostPath type", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "h", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/tmp"}}}}
		}, func(p *v1.Pod) any { return p.Spec.Volumes[0].HostPath.Type }, &hostPathUnset},
		{"env fieldRef apiVersion", func(p *v1.Pod) {
			p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "POD_IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}}}}
		}, func(p *v1.Pod) any { return p.Spec.Containers[0].Env[0].ValueFrom.FieldRef.APIVersion }, "v1"},
		{"mirror and seen annotations dropped", func(p *v1.Pod) {
			p.Annotations = map[string]string{AnnotationMirror: "x", AnnotationSeen: "y", "keep": "z", AnnotationSource: "api"}
		}, func(p *v1.Pod) any { return p.Annotations }, map[string]string{"keep": "z", AnnotationSource: "file", AnnotationHash: "UID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod, err := Parse("web.yaml", manifest(t, tt.mutate), testNode)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if m, ok := want.(map[string]string); ok && m[AnnotationHash] == "UID" {
				m[AnnotationHash] = string(pod.UID)
			}
			if got := tt.get(pod); !jsonEqual(got, want) {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestParseValidation(t *testing.T) {
	probe := func(h v1.ProbeHandler) *v1.Probe { return &v1.Probe{ProbeHandler: h} }
	httpGet := v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Port: intstr.FromInt32(80)}}
	tcp := v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromString("http")}}
	always := v1.ContainerRestartPolicyAlways
	onFailure := v1.ContainerRestartPolicyOnFailure
	c0 := func(f func(c *v1.Container)) func(*v1.Pod) { return func(p *v1.Pod) { f(&p.Spec.Containers[0]) } }
	tests := []struct {
		name   string
		mutate func(*v1.Pod)
		want   []string // each a field error, in order ("" prefix match)
	}{
		// Valid manifests.
		{"minimal", nil, nil},
		{"full", func(p *v1.Pod) {
			p.Namespace = "kube-system"
			p.Spec.Volumes = []v1.Volume{{Name: "data"}, {Name: "cfg", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/etc/cfg"}}}}
			p.Spec.InitContainers = []v1.Container{
				{Name: "setup", Image: "busybox", Command: []string{"true"}},
				{Name: "proxy", Image: "busybox", RestartPolicy: &always, ReadinessProbe: probe(httpGet)},
			}
			c := &p.Spec.Containers[0]
			c.Ports = []v1.ContainerPort{{Name: "http", ContainerPort: 80, HostPort: 8080}, {ContainerPort: 53, Protocol: v1.ProtocolUDP}}
			c.VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "cfg", MountPath: "/cfg", SubPath: "sub/dir"}}
			c.LivenessProbe = probe(v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}})
			c.ReadinessProbe = probe(tcp)
			c.StartupProbe = probe(v1.ProbeHandler{GRPC: &v1.GRPCAction{Port: 9090}})
			c.Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Sleep: &v1.SleepAction{Seconds: 1}}}
			c.Env = []v1.EnvVar{{Name: "A", Value: "1"}, {Name: "NODE", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}}
			c.Resources.Limits = v1.ResourceList{"cpu": resource.MustParse("1"), "example.com/gpu": resource.MustParse("1"), "hugepages-2Mi": resource.MustParse("2Mi")}
		}, nil},

		// metadata
		{"name missing", func(p *v1.Pod) { p.Name = "" }, []string{"metadata.name: Required value"}},
		{"name invalid", func(p *v1.Pod) { p.Name = "Web_1" }, []string{`metadata.name: Invalid value: "Web_1": a lowercase RFC 1123 subdomain`}},
		{"name too long with node suffix", func(p *v1.Pod) { p.Name = strings.Repeat("a", 250) },
			[]string{`metadata.name: Invalid value: "` + strings.Repeat("a", 250) + `-node1": with the node name suffix: must be no more than 253 characters`}},
		{"namespace invalid", func(p *v1.Pod) { p.Namespace = "Kube_System" }, []string{`metadata.namespace: Invalid value: "Kube_System"`}},
		{"label invalid", func(p *v1.Pod) { p.Labels = map[string]string{"a b": "c"} }, []string{`metadata.labels: Invalid value: "a b"`}},

		// containers
		{"no containers", func(p *v1.Pod) { p.Spec.Containers = nil }, []string{"spec.containers: Required value"}},
		{"container name missing", c0(func(c *v1.Container) { c.Name = "" }), []string{"spec.containers[0].name: Required value"}},
		{"container name not a DNS label", c0(func(c *v1.Container) { c.Name = "Web" }), []string{`spec.containers[0].name: Invalid value: "Web"`}},
		{"duplicate container names", func(p *v1.Pod) { p.Spec.Containers = append(p.Spec.Containers, p.Spec.Containers[0]) },
			[]string{`spec.containers[1].name: Duplicate value: "web"`}},
		{"init and app container share a name", func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Name: "web", Image: "busybox"}}
		}, []string{`spec.containers[0].name: Duplicate value: "web"`}},
		{"image missing", c0(func(c *v1.Container) { c.Image = "" }), []string{"spec.containers[0].image: Required value"}},
		{"image with spaces", c0(func(c *v1.Container) { c.Image = " busybox" }), []string{`spec.containers[0].image: Invalid value: " busybox": must not have leading or trailing whitespace`}},
		{"init image missing", func(p *v1.Pod) { p.Spec.InitContainers = []v1.Container{{Name: "init"}} },
			[]string{"spec.initContainers[0].image: Required value"}},
		{"imagePullPolicy", c0(func(c *v1.Container) { c.ImagePullPolicy = "Sometimes" }),
			[]string{`spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"`}},
		{"terminationMessagePolicy", c0(func(c *v1.Container) { c.TerminationMessagePolicy = "Stdout" }),
			[]string{`spec.containers[0].terminationMessagePolicy: Unsupported value: "Stdout"`}},
		// Per-container restartPolicy and restartPolicyRules (ContainerRestartRules).
		{"container restartPolicy value", c0(func(c *v1.Container) { p := v1.ContainerRestartPolicy("Sometimes"); c.RestartPolicy = &p }),
			[]string{`spec.containers[0].restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`}},
		{"restart rules without restartPolicy", c0(func(c *v1.Container) {
			c.RestartPolicyRules = []v1.ContainerRestartRule{{Action: v1.ContainerRestartRuleActionRestart,
				ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: v1.ContainerRestartRuleOnExitCodesOpIn, Values: []int32{1}}}}
		}), []string{"spec.containers[0].restartPolicy: Required value: must specify restartPolicy when restart rules are used"}},
		{"restart rule action and exit codes", c0(func(c *v1.Container) {
			c.RestartPolicy = &onFailure
			c.RestartPolicyRules = []v1.ContainerRestartRule{{Action: "Retry"},
				{Action: v1.ContainerRestartRuleActionRestart, ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: "Is"}}}
		}), []string{`spec.containers[0].restartPolicyRules[0].action: Unsupported value: "Retry": supported values: "Restart"`,
			"spec.containers[0].restartPolicyRules[0].exitCodes: Required value: must be specified",
			`spec.containers[0].restartPolicyRules[1].exitCodes.operator: Unsupported value: "Is": supported values: "In", "NotIn"`}},
		{"init container probe", func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Name: "init", Image: "busybox", ReadinessProbe: probe(httpGet)}}
		}, []string{"spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"}},

		// ports
		{"containerPort missing", c0(func(c *v1.Container) { c.Ports = []v1.ContainerPort{{Name: "http"}} }),
			[]string{"spec.containers[0].ports[0].containerPort: Required value"}},
		{"containerPort out of range", c0(func(c *v1.Container) { c.Ports = []v1.ContainerPort{{ContainerPort: 70000}} }),
			[]string{"spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"}},
		{"hostPort out of range", c0(func(c *v1.Container) { c.Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: -1}} }),
			[]string{"spec.containers[0].ports[0].hostPort: Invalid value: -1"}},
		{"protocol", c0(func(c *v1.Container) { c.Ports = []v1.ContainerPort{{ContainerPort: 80, Protocol: "ICMP"}} }),
			[]string{`spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"`}},
		{"port name", c0(func(c *v1.Container) { c.Ports = []v1.ContainerPort{{ContainerPort: 80, Name: "HTTP_1"}} }),
			[]string{`spec.containers[0].ports[0].name: Invalid value: "HTTP_1"`}},
		{"duplicate port names", c0(func(c *v1.Container) {
			c.Ports = []v1.ContainerPort{{ContainerPort: 80, Name: "http"}, {ContainerPort: 81, Name: "http"}}
		}), []string{`spec.containers[0].ports[1].name: Duplicate value: "http"`}},
		{"duplicate hostPort", func(p *v1.Pod) {
			p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}
			p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "b", Image: "busybox", Ports: []v1.ContainerPort{{ContainerPort: 81, HostPort: 8080}}})
		}, []string{`spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//8080"`}},
		{"hostNetwork hostPort differs", func(p *v1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}
		}, []string{"spec.containers[0].ports[0].containerPort: Invalid value: 80: must match `hostPort` when `hostNetwork` is true"}},

		// pod spec
		{"restartPolicy", func(p *v1.Pod) { p.Spec.RestartPolicy = "Sometimes" },
			[]string{`spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`}},
		{"dnsPolicy", func(p *v1.Pod) { p.Spec.DNSPolicy = "Google" }, []string{`spec.dnsPolicy: Unsupported value: "Google"`}},
		{"dnsPolicy None without nameservers", func(p *v1.Pod) { p.Spec.DNSPolicy = v1.DNSNone },
			[]string{"spec.dnsConfig.nameservers: Required value"}},
		{"negative grace period", func(p *v1.Pod) { g := int64(-1); p.Spec.TerminationGracePeriodSeconds = &g },
			[]string{"spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0"}},
		{"activeDeadlineSeconds", func(p *v1.Pod) { d := int64(0); p.Spec.ActiveDeadlineSeconds = &d },
			[]string{"spec.activeDeadlineSeconds: Invalid value: 0"}},
		{"ephemeral containers", func(p *v1.Pod) {
			p.Spec.EphemeralContainers = []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "dbg", Image: "busybox"}}}
		}, []string{"spec.ephemeralContainers: Forbidden: cannot be set on create"}},

		// probes and hooks
		{"probe without handler", c0(func(c *v1.Container) { c.LivenessProbe = &v1.Probe{} }),
			[]string{"spec.containers[0].livenessProbe: Required value: must specify a handler type"}},
		{"probe with two handlers", c0(func(c *v1.Container) {
			c.ReadinessProbe = probe(v1.ProbeHandler{HTTPGet: httpGet.HTTPGet, TCPSocket: tcp.TCPSocket})
		}), []string{"spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"}},
		{"exec probe without command", c0(func(c *v1.Container) { c.StartupProbe = probe(v1.ProbeHandler{Exec: &v1.ExecAction{}}) }),
			[]string{"spec.containers[0].startupProbe.exec.command: Required value"}},
		{"liveness successThreshold", c0(func(c *v1.Container) { c.LivenessProbe = probe(httpGet); c.LivenessProbe.SuccessThreshold = 2 }),
			[]string{"spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"}},
		{"negative periodSeconds", c0(func(c *v1.Container) { c.ReadinessProbe = probe(httpGet); c.ReadinessProbe.PeriodSeconds = -5 }),
			[]string{"spec.containers[0].readinessProbe.periodSeconds: Invalid value: -5: must be greater than or equal to 0"}},
		{"readiness probe grace period", c0(func(c *v1.Container) {
			g := int64(5)
			c.ReadinessProbe = probe(httpGet)
			c.ReadinessProbe.TerminationGracePeriodSeconds = &g
		}), []string{"spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 5: must not be set for readinessProbes"}},
		{"httpGet port 0", c0(func(c *v1.Container) {
			c.LivenessProbe = probe(v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Port: intstr.FromInt32(0)}})
		}), []string{"spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0"}},
		{"httpGet scheme", c0(func(c *v1.Container) {
			c.LivenessProbe = probe(v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Port: intstr.FromInt32(80), Scheme: "FTP"}})
		}), []string{`spec.containers[0].livenessProbe.httpGet.scheme: Unsupported value: "FTP"`}},
		{"grpc port", c0(func(c *v1.Container) { c.LivenessProbe = probe(v1.ProbeHandler{GRPC: &v1.GRPCAction{}}) }),
			[]string{"spec.containers[0].livenessProbe.grpc.port: Invalid value: 0"}},
		{"preStop without handler", c0(func(c *v1.Container) { c.Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{}} }),
			[]string{"spec.containers[0].lifecycle.preStop: Required value: must specify a handler type"}},
		{"postStart with two handlers", c0(func(c *v1.Container) {
			c.Lifecycle = &v1.Lifecycle{PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"true"}}, HTTPGet: httpGet.HTTPGet}}
		}), []string{"spec.containers[0].lifecycle.postStart.httpGet: Forbidden: may not specify more than 1 handler type"}},

		// resources
		{"requests above limits", c0(func(c *v1.Container) {
			c.Resources.Limits = v1.ResourceList{"cpu": resource.MustParse("100m")}
			c.Resources.Requests = v1.ResourceList{"cpu": resource.MustParse("200m")}
		}), []string{`spec.containers[0].resources.requests[cpu]: Invalid value: "200m": must be less than or equal to cpu limit of 100m`}},
		{"negative quantity", c0(func(c *v1.Container) { c.Resources.Requests = v1.ResourceList{"memory": resource.MustParse("-1Mi")} }),
			[]string{`spec.containers[0].resources.requests[memory]: Invalid value: "-1Mi": must be greater than or equal to 0`}},
		{"unknown resource name", c0(func(c *v1.Container) { c.Resources.Limits = v1.ResourceList{"gpu": resource.MustParse("1")} }),
			[]string{`spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard resource type or fully qualified`}},

		// volumes and mounts
		{"mount of a missing volume", c0(func(c *v1.Container) { c.VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}} }),
			[]string{`spec.containers[0].volumeMounts[0].name: Not found: "data"`}},
		{"mount without path", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "data"}}
			p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data"}}
		}, []string{"spec.containers[0].volumeMounts[0].mountPath: Required value"}},
		{"subPath escapes", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "data"}}
			p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/d", SubPath: "../etc"}}
		}, []string{`spec.containers[0].volumeMounts[0].subPath: Invalid value: "../etc": must not contain '..'`}},
		{"volume name", func(p *v1.Pod) { p.Spec.Volumes = []v1.Volume{{Name: "Data"}} }, []string{`spec.volumes[0].name: Invalid value: "Data"`}},
		{"duplicate volume", func(p *v1.Pod) { p.Spec.Volumes = []v1.Volume{{Name: "data"}, {Name: "data"}} },
			[]string{`spec.volumes[1].name: Duplicate value: "data"`}},
		{"two volume sources", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{
				HostPath: &v1.HostPathVolumeSource{Path: "/x"}, EmptyDir: &v1.EmptyDirVolumeSource{}}}}
		}, []string{"spec.volumes[0].emptyDir: Forbidden: may not specify more than 1 volume type"}},
		{"hostPath without path", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "h", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{}}}}
		}, []string{"spec.volumes[0].hostPath.path: Required value"}},

		{"configMap mode out of range", func(p *v1.Pod) {
			m := int32(0o1000)
			p.Spec.Volumes = []v1.Volume{{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
				LocalObjectReference: v1.LocalObjectReference{Name: "web"}, DefaultMode: &m}}}}
		}, []string{"spec.volumes[0].configMap.defaultMode: Invalid value: 512: must be a number between 0 and 0777"}},
		{"secret item: bad key, absolute path, mode", func(p *v1.Pod) {
			m := int32(-1)
			p.Spec.Volumes = []v1.Volume{{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{
				SecretName: "creds", Items: []v1.KeyToPath{{Key: "a/b", Path: "/etc/x", Mode: &m}}}}}}
		}, []string{`spec.volumes[0].secret.items[0].key: Invalid value: "a/b"`, `spec.volumes[0].secret.items[0].path: Invalid value: "/etc/x": must be a relative path`,
			"spec.volumes[0].secret.items[0].mode: Invalid value: -1"}},
		{"item path with ..", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
				LocalObjectReference: v1.LocalObjectReference{Name: "web"}, Items: []v1.KeyToPath{{Key: "k", Path: "a/../../b"}}}}}}
		}, []string{`spec.volumes[0].configMap.items[0].path: Invalid value: "a/../../b": must not contain '..'`}},
		{"downwardAPI field not for volumes", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "d", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
				{Path: "ip", FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}},
				{Path: "cpu", ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.cpu"}}}}}}}
		}, []string{`spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath: Unsupported value: "status.podIP"`,
			"spec.volumes[0].downwardAPI.items[1].resourceFieldRef.containerName: Required value"}},
		{"projected source with two projections", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "p", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{{
				ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "a"}},
				Secret:    &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "b"}}}}}}}}
		}, []string{"spec.volumes[0].projected.sources[0]: Forbidden: must specify exactly one volume projection"}},
		{"image volume without reference", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "i", VolumeSource: v1.VolumeSource{Image: &v1.ImageVolumeSource{}}}}
		}, []string{"spec.volumes[0].image.reference: Required value"}},
		{"subPath and subPathExpr", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "data"}}
			p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/d", SubPath: "a", SubPathExpr: "$(X)"}}
		}, []string{`spec.containers[0].volumeMounts[0].subPathExpr: Invalid value: "$(X)": subPathExpr and subPath are mutually exclusive`}},
		// env
		{"env valueFrom without source", c0(func(c *v1.Container) { c.Env = []v1.EnvVar{{Name: "A", ValueFrom: &v1.EnvVarSource{}}} }),
			[]string{"spec.containers[0].env[0].valueFrom: Invalid value"}},
		{"env name missing", c0(func(c *v1.Container) { c.Env = []v1.EnvVar{{Value: "x"}} }),
			[]string{"spec.containers[0].env[0].name: Required value"}},

		// several at once, in field order
		{"several", func(p *v1.Pod) {
			p.Spec.RestartPolicy = "Sometimes"
			p.Spec.Containers[0].Image = ""
			p.Spec.Containers[0].Name = ""
		}, []string{"spec.containers[0].name: Required value", "spec.containers[0].image: Required value", "spec.restartPolicy: Unsupported value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod, err := Parse("web.yaml", manifest(t, tt.mutate), testNode)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("valid manifest rejected: %v", err)
				}
				if pod == nil {
					t.Fatal("no pod")
				}
				return
			}
			if pod != nil || err == nil {
				t.Fatalf("invalid manifest accepted; want %q", tt.want)
			}
			me, ok := errors.AsType[*ManifestError](err)
			if !ok {
				t.Fatalf("error %T %v is not a *ManifestError", err, err)
			}
			if me.File != "web.yaml" {
				t.Errorf("File = %q", me.File)
			}
			if len(me.Fields) != len(tt.want) {
				t.Fatalf("got %d field errors, want %d:\n%v", len(me.Fields), len(tt.want), err)
			}
			for i, want := range tt.want {
				if got := me.Fields[i].Error(); !strings.HasPrefix(got, want) {
					t.Errorf("field error %d = %q\nwant prefix %q", i, got, want)
				}
			}
			if !strings.HasPrefix(err.Error(), "web.yaml: "+tt.want[0]) {
				t.Errorf("error %q does not start with the file and first field", err)
			}
		})
	}
}

func TestParseErrorMessage(t *testing.T) {
	_, err := Parse("web.yaml", manifest(t, func(p *v1.Pod) { p.Spec.Containers[0].Image = "" }), testNode)
	if got, want := err.Error(), "web.yaml: spec.containers[0].image: Required value"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	if fe, ok := errors.AsType[*field.Error](err); !ok || fe.Field != "spec.containers[0].image" || fe.Type != field.ErrorTypeRequired {
		t.Errorf("errors.As *field.Error = %v, %v", fe, ok)
	}
}

func TestParseDecodeErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"empty", "", "m.yaml: empty manifest"},
		{"only comments", "# nothing\n\n---\n# here\n", "m.yaml: empty manifest"},
		{"two documents", webYAML + "---\n" + webYAML, "m.yaml: 2 YAML documents, a manifest holds exactly one Pod"},
		{"not yaml", "apiVersion: v1\nkind: [Pod\n", "m.yaml: decode: "},
		{"not an object", "- a\n- b\n", "m.yaml: decode: manifest is not an object"},
		{"no apiVersion", "kind: Pod\nmetadata: {name: x}\n", "m.yaml: apiVersion: Required value"},
		{"no kind", "apiVersion: v1\nmetadata: {name: x}\n", "m.yaml: kind: Required value"},
		{"wrong kind", "apiVersion: apps/v1\nkind: Deployment\n",
			`m.yaml: apiVersion: Unsupported value: "apps/v1": supported values: "v1"; kind: Unsupported value: "Deployment": supported values: "Pod"`},
		{"bad quantity", strings.Replace(webYAML, "    ports:", "    resources:\n      limits: {memory: 12XB}\n    ports:", 1),
			`m.yaml: spec.containers[0].resources.limits[memory]: Invalid value: "12XB": quantities must match the regular expression`},
		{"bad sizeLimit", webYAML + "  volumes:\n  - name: d\n    emptyDir: {sizeLimit: lots}\n",
			`m.yaml: spec.volumes[0].emptyDir.sizeLimit: Invalid value: "lots"`},
		{"wrong type", strings.Replace(webYAML, "containerPort: 80", "containerPort: eighty", 1),
			"m.yaml: spec.containers.ports.containerPort: cannot decode a JSON string into int32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod, err := Parse("m.yaml", []byte(tt.data), testNode)
			if err == nil {
				t.Fatalf("accepted: %+v", pod)
			}
			if _, ok := errors.AsType[*ManifestError](err); !ok {
				t.Errorf("error %T is not a *ManifestError", err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q\nwant prefix %q", err, tt.want)
			}
		})
	}
	// A leading document marker and a trailing empty document are fine.
	if _, err := Parse("m.yaml", []byte("---\n"+webYAML+"---\n"), testNode); err != nil {
		t.Errorf("manifest with document markers: %v", err)
	}
	if _, err := Parse("m.yaml", []byte(webYAML), ""); err == nil {
		t.Error("empty node name accepted")
	}
}

func TestParseUID(t *testing.T) {
	uid := func(file, node, data string) string {
		t.Helper()
		pod, err := Parse(file, []byte(data), node)
		if err != nil {
			t.Fatal(err)
		}
		return string(pod.UID)
	}
	base := uid("/m/web.yaml", "node1", webYAML)
	changed := strings.Replace(webYAML, "busybox:1.36", "busybox:1.37", 1)
	cosmetic := "# the web server\n" + strings.Replace(webYAML, "  labels:\n    app: web\n", "  labels: {app: web}   # inline\n", 1)
	tests := []struct {
		name    string
		uid     string
		sameUID bool
	}{
		{"same content, same path and node", uid("/m/web.yaml", "node1", webYAML), true},
		{"same pod as JSON", uid("/m/web.yaml", "node1", webJSON), true},
		{"comments and formatting only", uid("/m/web.yaml", "node1", cosmetic), true},
		{"node name case", uid("/m/web.yaml", "NODE1", webYAML), true},
		{"changed content", uid("/m/web.yaml", "node1", changed), false},
		{"other node", uid("/m/web.yaml", "node2", webYAML), false},
		{"other path", uid("/m/web2.yaml", "node1", webYAML), false},
	}
	for _, tt := range tests {
		if (tt.uid == base) != tt.sameUID {
			t.Errorf("%s: uid %s vs %s, want same=%v", tt.name, tt.uid, base, tt.sameUID)
		}
	}
	explicit := strings.Replace(webYAML, "  name: web\n", "  name: web\n  uid: 1234-abcd\n", 1)
	if got := uid("/m/web.yaml", "node1", explicit); got != "1234-abcd" {
		t.Errorf("uid from the manifest not kept: %s", got)
	}
}
