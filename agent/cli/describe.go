package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	v1 "k8s.io/api/core/v1"

	"github.com/nodekit-dev/nodekit/agent/qos"
	"github.com/nodekit-dev/nodekit/internal/downwardapi"
)

func newDescribeCommand() *cobra.Command {
	var t target
	cmd := &cobra.Command{
		Use:   "describe (pod NAME | node)",
		Short: "Show details of a pod, with its events and timeline, or of the node",
		Long: `Show a pod as kubectl describe does: its containers with their states, last
states, exit codes and restart counts, probes, environment and mounts, its
conditions, volumes and QoS class, and its events; then its timeline: what
the agent saw and did for it (source updates, lifecycle events, syncs,
back-offs, image pulls, hooks, probes, CRI calls, status changes), oldest
first.`,
		Example: `  # Why does this pod restart?
  nodekit-kubelet describe pod crashloop-node-a`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name, _ := strings.Cut(args[0], "/")
			if len(args) == 2 {
				name = args[1]
			}
			switch kind {
			case "pods", "pod", "po":
				if name == "" {
					return usageErrorf(cmd, "describe pod needs the pod's name")
				}
				return describePodCommand(cmd.Context(), cmd.OutOrStdout(), &t, name)
			case "nodes", "node", "no":
				g := getOptions{target: t}
				return g.node(cmd.Context(), cmd, name)
			}
			return fmt.Errorf("the server doesn't have a resource type %q (this agent has pods and node)", kind)
		},
	}
	t.addFlags(cmd)
	return cmd
}

func describePodCommand(ctx context.Context, w io.Writer, t *target, name string) error {
	c := t.client()
	pod, err := t.pod(ctx, c, name)
	if err != nil {
		return err
	}
	tl, err := c.timeline(ctx, pod.Namespace, pod.Name)
	if err != nil && !isNotFound(err) {
		return err
	}
	return describePod(w, pod, tl, time.Now())
}

// describePod writes pod as `kubectl describe pod` does, then its timeline
// (nil: none): the events are the timeline's user-facing entries.
func describePod(w io.Writer, pod *v1.Pod, tl *podTimeline, now time.Time) error {
	var buf bytes.Buffer
	d := &describer{tw: tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0), now: now}
	d.pod(pod)
	d.events(tl, pod)
	empty := tl == nil || len(tl.Entries) == 0
	if empty {
		d.line(0, "Timeline:\t<none>")
	}
	if err := d.tw.Flush(); err != nil {
		return err
	}
	if _, err := w.Write(buf.Bytes()); err != nil || empty {
		return err
	}
	return writeTimeline(w, tl, 120)
}

// describer writes kubectl's describe layout: "Key:<tab>value" lines
// indented two spaces per level, aligned by a tabwriter.
type describer struct {
	tw  *tabwriter.Writer
	now time.Time
}

func (d *describer) line(level int, format string, args ...any) {
	fmt.Fprintf(d.tw, strings.Repeat("  ", level)+format+"\n", args...)
}

func (d *describer) pod(p *v1.Pod) {
	d.line(0, "Name:\t%s", p.Name)
	d.line(0, "Namespace:\t%s", p.Namespace)
	if p.Spec.Priority != nil {
		d.line(0, "Priority:\t%d", *p.Spec.Priority)
	}
	if p.Spec.PriorityClassName != "" {
		d.line(0, "Priority Class Name:\t%s", p.Spec.PriorityClassName)
	}
	if r := p.Spec.RuntimeClassName; r != nil && *r != "" {
		d.line(0, "Runtime Class Name:\t%s", *r)
	}
	if p.Spec.ServiceAccountName != "" {
		d.line(0, "Service Account:\t%s", p.Spec.ServiceAccountName)
	}
	if p.Spec.NodeName == "" {
		d.line(0, "Node:\t<none>")
	} else {
		d.line(0, "Node:\t%s/%s", p.Spec.NodeName, p.Status.HostIP)
	}
	if p.Status.StartTime != nil {
		d.line(0, "Start Time:\t%s", p.Status.StartTime.Format(time.RFC1123Z))
	}
	d.keyValues("Labels", p.Labels, false)
	d.keyValues("Annotations", p.Annotations, true)
	terminal := p.Status.Phase == v1.PodFailed || p.Status.Phase == v1.PodSucceeded
	if p.DeletionTimestamp != nil && !terminal {
		d.line(0, "Status:\tTerminating (lasts %s)", since(p.DeletionTimestamp.Time, d.now))
		if g := p.DeletionGracePeriodSeconds; g != nil {
			d.line(0, "Termination Grace Period:\t%ds", *g)
		}
	} else {
		d.line(0, "Status:\t%s", p.Status.Phase)
	}
	if p.Status.Reason != "" {
		d.line(0, "Reason:\t%s", p.Status.Reason)
	}
	if p.Status.Message != "" {
		d.line(0, "Message:\t%s", p.Status.Message)
	}
	d.line(0, "IP:\t%s", p.Status.PodIP)
	if len(p.Status.PodIPs) == 0 {
		d.line(0, "IPs:\t<none>")
	} else {
		d.line(0, "IPs:")
		for _, ip := range p.Status.PodIPs {
			d.line(1, "IP:\t%s", ip.IP)
		}
	}
	for _, ref := range p.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			d.line(0, "Controlled By:\t%s/%s", ref.Kind, ref.Name)
		}
	}
	if p.Status.NominatedNodeName != "" {
		d.line(0, "NominatedNodeName:\t%s", p.Status.NominatedNodeName)
	}
	if p.Spec.Resources != nil {
		d.line(0, "Resources:")
		d.resources(1, p.Spec.Resources)
	}
	if len(p.Spec.InitContainers) > 0 {
		d.containers(p, "Init Containers", p.Spec.InitContainers, p.Status.InitContainerStatuses)
	}
	d.containers(p, "Containers", p.Spec.Containers, p.Status.ContainerStatuses)
	if len(p.Spec.ReadinessGates) > 0 {
		d.line(0, "Readiness Gates:")
		d.line(1, "Type\tStatus")
		for _, g := range p.Spec.ReadinessGates {
			status := "<none>"
			for _, c := range p.Status.Conditions {
				if c.Type == g.ConditionType {
					status = string(c.Status)
				}
			}
			d.line(1, "%s \t%s ", g.ConditionType, status)
		}
	}
	if len(p.Status.Conditions) > 0 {
		d.line(0, "Conditions:")
		d.line(1, "Type\tStatus")
		for _, c := range p.Status.Conditions {
			d.line(1, "%s \t%s ", c.Type, c.Status)
		}
	}
	d.volumes(p.Spec.Volumes)
	class := p.Status.QOSClass
	if class == "" {
		class = qos.Class(p)
	}
	d.line(0, "QoS Class:\t%s", class)
	d.keyValues("Node-Selectors", p.Spec.NodeSelector, false)
	d.tolerations(p.Spec.Tolerations)
}

// keyValues writes a map sorted by key, the first pair beside the title, the
// others below it. Annotations too long for one line are cut, as kubectl's.
func (d *describer) keyValues(title string, m map[string]string, annotations bool) {
	keys := make([]string, 0, len(m))
	for k := range m {
		if annotations && k == v1.LastAppliedConfigAnnotation {
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		d.line(0, "%s:\t<none>", title)
		return
	}
	sort.Strings(keys)
	for i, k := range keys {
		prefix := title + ":"
		if i > 0 {
			prefix = ""
		}
		if !annotations {
			d.line(0, "%s\t%s=%s", prefix, k, m[k])
			continue
		}
		const maxLen = 140
		v := strings.TrimSuffix(m[k], "\n")
		if len(k)+len(v)+2 <= maxLen && !strings.Contains(v, "\n") {
			d.line(0, "%s\t%s: %s", prefix, k, v)
			continue
		}
		d.line(0, "%s\t%s:", prefix, k)
		for _, s := range strings.Split(v, "\n") {
			if len(s) > maxLen-2 {
				s = s[:maxLen-2] + "..."
			}
			d.line(0, "\t  %s", s)
		}
	}
}

func (d *describer) tolerations(ts []v1.Toleration) {
	if len(ts) == 0 {
		d.line(0, "Tolerations:\t<none>")
		return
	}
	ts = slices.Clone(ts)
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].Key < ts[j].Key })
	for i, t := range ts {
		var s strings.Builder
		s.WriteString(t.Key)
		if t.Value != "" {
			s.WriteString("=" + t.Value)
		}
		if t.Effect != "" {
			s.WriteString(":" + string(t.Effect))
		}
		if t.Operator == v1.TolerationOpExists && t.Value == "" {
			if t.Key != "" || t.Effect != "" {
				s.WriteString(" ")
			}
			s.WriteString("op=Exists")
		}
		if t.TolerationSeconds != nil {
			fmt.Fprintf(&s, " for %ds", *t.TolerationSeconds)
		}
		title := "Tolerations:"
		if i > 0 {
			title = ""
		}
		d.line(0, "%s\t%s", title, s.String())
	}
}

func (d *describer) resources(level int, r *v1.ResourceRequirements) {
	for _, l := range []struct {
		title string
		list  v1.ResourceList
	}{{"Limits", r.Limits}, {"Requests", r.Requests}} {
		if len(l.list) == 0 {
			continue
		}
		d.line(level, "%s:", l.title)
		names := make([]string, 0, len(l.list))
		for n := range l.list {
			names = append(names, string(n))
		}
		sort.Strings(names)
		for _, n := range names {
			q := l.list[v1.ResourceName(n)]
			d.line(level+1, "%s:\t%s", n, q.String())
		}
	}
}

func (d *describer) containers(pod *v1.Pod, title string, cs []v1.Container, statuses []v1.ContainerStatus) {
	if len(cs) == 0 {
		d.line(0, "%s: <none>", title)
		return
	}
	d.line(0, "%s:", title)
	for _, c := range cs {
		var st *v1.ContainerStatus
		for i := range statuses {
			if statuses[i].Name == c.Name {
				st = &statuses[i]
			}
		}
		d.line(1, "%s:", c.Name)
		if st != nil {
			d.line(2, "Container ID:\t%s", st.ContainerID)
		}
		d.line(2, "Image:\t%s", c.Image)
		if st != nil {
			d.line(2, "Image ID:\t%s", st.ImageID)
		}
		d.ports(c.Ports)
		for _, words := range []struct {
			title string
			list  []string
		}{{"Command", c.Command}, {"Args", c.Args}} {
			if len(words.list) == 0 {
				continue
			}
			d.line(2, "%s:", words.title)
			for _, a := range words.list {
				for _, s := range strings.Split(a, "\n") {
					d.line(3, "%s", s)
				}
			}
		}
		if st != nil {
			d.state("State", st.State)
			if st.LastTerminationState.Terminated != nil {
				d.state("Last State", st.LastTerminationState)
			}
			d.line(2, "Ready:\t%s", titleBool(st.Ready))
			d.line(2, "Restart Count:\t%d", st.RestartCount)
		}
		d.resources(2, &c.Resources)
		for _, p := range []struct {
			title string
			probe *v1.Probe
		}{{"Liveness", c.LivenessProbe}, {"Readiness", c.ReadinessProbe}, {"Startup", c.StartupProbe}} {
			if p.probe != nil {
				d.line(2, "%s:\t%s", p.title, describeProbe(p.probe))
			}
		}
		d.env(pod, &c)
		d.mounts(c)
	}
}

// ports writes the Port and Host Port lines: one port, else the list.
func (d *describer) ports(ports []v1.ContainerPort) {
	for _, host := range []bool{false, true} {
		var list []string
		for _, p := range ports {
			n := p.ContainerPort
			if host {
				n = p.HostPort
			}
			s := fmt.Sprintf("%d/%s", n, p.Protocol)
			if p.Name != "" {
				s += " (" + p.Name + ")"
			}
			list = append(list, s)
		}
		title := "Port"
		if host {
			title = "Host Port"
		}
		switch {
		case len(list) == 0:
			d.line(2, "%s:\t<none>", title)
		case len(list) == 1:
			d.line(2, "%s:\t%s", title, list[0])
		default:
			d.line(2, "%ss:\t%s", title, strings.Join(list, ", "))
		}
	}
}

func (d *describer) state(title string, s v1.ContainerState) {
	switch {
	case s.Running != nil:
		d.line(2, "%s:\tRunning", title)
		d.line(3, "Started:\t%s", s.Running.StartedAt.Format(time.RFC1123Z))
	case s.Terminated != nil:
		t := s.Terminated
		d.line(2, "%s:\tTerminated", title)
		if t.Reason != "" {
			d.line(3, "Reason:\t%s", t.Reason)
		}
		if t.Message != "" {
			d.line(3, "Message:\t%s", t.Message)
		}
		d.line(3, "Exit Code:\t%d", t.ExitCode)
		if t.Signal > 0 {
			d.line(3, "Signal:\t%d", t.Signal)
		}
		d.line(3, "Started:\t%s", t.StartedAt.Format(time.RFC1123Z))
		d.line(3, "Finished:\t%s", t.FinishedAt.Format(time.RFC1123Z))
	default:
		d.line(2, "%s:\tWaiting", title)
		if s.Waiting != nil && s.Waiting.Reason != "" {
			d.line(3, "Reason:\t%s", s.Waiting.Reason)
		}
	}
}

// describeProbe is kubectl's one-line summary of a probe.
func describeProbe(p *v1.Probe) string {
	attrs := fmt.Sprintf("delay=%ds timeout=%ds period=%ds successThreshold=%d failureThreshold=%d",
		p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
	switch {
	case p.Exec != nil:
		return fmt.Sprintf("exec %v %s", p.Exec.Command, attrs)
	case p.HTTPGet != nil:
		h := p.HTTPGet
		u := url.URL{Scheme: strings.ToLower(string(h.Scheme)), Host: h.Host, Path: h.Path}
		if port := h.Port.String(); port != "" {
			u.Host = net.JoinHostPort(h.Host, port)
		}
		return fmt.Sprintf("http-get %s %s", u.String(), attrs)
	case p.TCPSocket != nil:
		return fmt.Sprintf("tcp-socket %s:%s %s", p.TCPSocket.Host, p.TCPSocket.Port.String(), attrs)
	case p.GRPC != nil:
		service := ""
		if p.GRPC.Service != nil {
			service = *p.GRPC.Service
		}
		return fmt.Sprintf("grpc <pod>:%d %s %s", p.GRPC.Port, service, attrs)
	}
	return "unknown " + attrs
}

func (d *describer) env(pod *v1.Pod, c *v1.Container) {
	if len(c.EnvFrom) > 0 {
		d.line(2, "Environment Variables from:")
		for _, e := range c.EnvFrom {
			kind, name, optional := "", "", false
			switch {
			case e.ConfigMapRef != nil:
				kind, name, optional = "ConfigMap", e.ConfigMapRef.Name, isTrue(e.ConfigMapRef.Optional)
			case e.SecretRef != nil:
				kind, name, optional = "Secret", e.SecretRef.Name, isTrue(e.SecretRef.Optional)
			}
			if e.Prefix != "" {
				kind += fmt.Sprintf(" with prefix '%s'", e.Prefix)
			}
			d.line(3, "%s\t%s\tOptional: %t", name, kind, optional)
		}
	}
	if len(c.Env) == 0 {
		d.line(2, "Environment:\t<none>")
	} else {
		d.line(2, "Environment:")
	}
	for _, e := range c.Env {
		f := e.ValueFrom
		switch {
		case f == nil:
			for i, s := range strings.Split(e.Value, "\n") {
				if i == 0 {
					d.line(3, "%s:\t%s", e.Name, s)
				} else {
					d.line(3, "\t%s", s)
				}
			}
		case f.FieldRef != nil:
			ctx := downwardapi.Context{NodeName: pod.Spec.NodeName}
			for _, ip := range pod.Status.PodIPs {
				ctx.PodIPs = append(ctx.PodIPs, ip.IP)
			}
			for _, ip := range pod.Status.HostIPs {
				ctx.HostIPs = append(ctx.HostIPs, ip.IP)
			}
			v, _ := downwardapi.FieldValue(pod, f.FieldRef, ctx)
			d.line(3, "%s:\t%s (%s:%s)", e.Name, v, f.FieldRef.APIVersion, f.FieldRef.FieldPath)
		case f.ResourceFieldRef != nil:
			v, _ := downwardapi.ResourceValue(pod, c, f.ResourceFieldRef, nil)
			if r := f.ResourceFieldRef.Resource; v == "0" && (r == "limits.cpu" || r == "limits.memory") {
				v = "node allocatable"
			}
			d.line(3, "%s:\t%s (%s)", e.Name, v, f.ResourceFieldRef.Resource)
		case f.SecretKeyRef != nil:
			d.line(3, "%s:\t<set to the key '%s' in secret '%s'>\tOptional: %t", e.Name, f.SecretKeyRef.Key, f.SecretKeyRef.Name, isTrue(f.SecretKeyRef.Optional))
		case f.ConfigMapKeyRef != nil:
			d.line(3, "%s:\t<set to the key '%s' of config map '%s'>\tOptional: %t", e.Name, f.ConfigMapKeyRef.Key, f.ConfigMapKeyRef.Name, isTrue(f.ConfigMapKeyRef.Optional))
		}
	}
}

func (d *describer) mounts(c v1.Container) {
	if len(c.VolumeMounts) == 0 {
		d.line(2, "Mounts:\t<none>")
		return
	}
	d.line(2, "Mounts:")
	mounts := slices.Clone(c.VolumeMounts)
	sort.SliceStable(mounts, func(i, j int) bool { return mounts[i].MountPath < mounts[j].MountPath })
	for _, m := range mounts {
		flags := []string{"rw"}
		if m.ReadOnly {
			flags[0] = "ro"
		}
		if m.SubPath != "" {
			flags = append(flags, fmt.Sprintf("path=%q", m.SubPath))
		}
		d.line(3, "%s from %s (%s)", m.MountPath, m.Name, strings.Join(flags, ","))
	}
}

// volumes writes each volume's type and what it is made of, in kubectl's
// words for the types the agent serves.
func (d *describer) volumes(vs []v1.Volume) {
	if len(vs) == 0 {
		d.line(0, "Volumes:\t<none>")
		return
	}
	d.line(0, "Volumes:")
	for _, v := range vs {
		d.line(1, "%s:", v.Name)
		s := v.VolumeSource
		switch {
		case s.HostPath != nil:
			t := "<none>"
			if s.HostPath.Type != nil {
				t = string(*s.HostPath.Type)
			}
			d.fields("HostPath (bare host directory volume)", "Path", s.HostPath.Path, "HostPathType", t)
		case s.EmptyDir != nil:
			limit := "<unset>"
			if l := s.EmptyDir.SizeLimit; l != nil && l.Sign() > 0 {
				limit = l.String()
			}
			d.fields("EmptyDir (a temporary directory that shares a pod's lifetime)", "Medium", string(s.EmptyDir.Medium), "SizeLimit", limit)
		case s.ConfigMap != nil:
			d.fields("ConfigMap (a volume populated by a ConfigMap)", "Name", s.ConfigMap.Name, "Optional", strconv.FormatBool(isTrue(s.ConfigMap.Optional)))
		case s.Secret != nil:
			d.fields("Secret (a volume populated by a Secret)", "SecretName", s.Secret.SecretName, "Optional", strconv.FormatBool(isTrue(s.Secret.Optional)))
		case s.DownwardAPI != nil:
			d.fields("DownwardAPI (a volume populated by information about the pod)")
			d.line(2, "Items:")
			for _, it := range s.DownwardAPI.Items {
				if it.FieldRef != nil {
					d.line(3, "%s -> %s", it.FieldRef.FieldPath, it.Path)
				}
				if it.ResourceFieldRef != nil {
					d.line(3, "%s -> %s", it.ResourceFieldRef.Resource, it.Path)
				}
			}
		case s.Projected != nil:
			d.fields("Projected (a volume that contains injected data from multiple sources)")
			for _, src := range s.Projected.Sources {
				switch {
				case src.Secret != nil:
					d.line(2, "SecretName:\t%s", src.Secret.Name)
					d.line(2, "Optional:\t%t", isTrue(src.Secret.Optional))
				case src.DownwardAPI != nil:
					d.line(2, "DownwardAPI:\ttrue")
				case src.ConfigMap != nil:
					d.line(2, "ConfigMapName:\t%s", src.ConfigMap.Name)
					d.line(2, "Optional:\t%t", isTrue(src.ConfigMap.Optional))
				case src.ServiceAccountToken != nil && src.ServiceAccountToken.ExpirationSeconds != nil:
					d.line(2, "TokenExpirationSeconds:\t%d", *src.ServiceAccountToken.ExpirationSeconds)
				}
			}
		case s.Image != nil:
			d.fields("Image (a container image or OCI artifact)", "Reference", s.Image.Reference, "PullPolicy", string(s.Image.PullPolicy))
		case s.PersistentVolumeClaim != nil:
			d.fields("PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)",
				"ClaimName", s.PersistentVolumeClaim.ClaimName, "ReadOnly", strconv.FormatBool(s.PersistentVolumeClaim.ReadOnly))
		default:
			d.line(1, "<unknown>")
		}
	}
}

// fields writes a volume's Type line and its key/value pairs.
func (d *describer) fields(typ string, kv ...string) {
	d.line(2, "Type:\t%s", typ)
	for i := 0; i+1 < len(kv); i += 2 {
		d.line(2, "%s:\t%s", kv[i], kv[i+1])
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

// titleBool is kubectl's True or False.
func titleBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
