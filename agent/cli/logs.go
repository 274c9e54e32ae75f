package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	v1 "k8s.io/api/core/v1"

	"github.com/nodekit-dev/nodekit/internal/podcontainer"
)

// defaultContainerAnnotation names the container kubectl logs and exec
// pick when none is given.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

type logsOptions struct {
	target
	container  string
	follow     bool
	previous   bool
	timestamps bool
	tail       int64
	since      time.Duration
	limitBytes int64
}

func newLogsCommand() *cobra.Command {
	var o logsOptions
	cmd := &cobra.Command{
		Use:   "logs POD [-c CONTAINER]",
		Short: "Print the logs for a container in a pod",
		Long: `Print the logs of a container of a pod, as kubectl logs does: its current
instance's, or with --previous its last terminated instance's. Without -c the
pod's only container, or its first one (or the one its
kubectl.kubernetes.io/default-container annotation names).`,
		Example: `  # What the crash-looping container wrote before it last exited
  nodekit-kubelet logs crashloop-node-a --previous

  # Follow the web server's log, from its last 10 lines
  nodekit-kubelet logs -f --tail 10 web-node-a`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 { // kubectl's old form: logs POD CONTAINER
				if o.container != "" {
					return usageErrorf(cmd, "only one of -c or an inline container name is allowed")
				}
				o.container = args[1]
			}
			return o.run(cmd.Context(), cmd, strings.TrimPrefix(strings.TrimPrefix(args[0], "pods/"), "pod/"))
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.container, "container", "c", "", "the container (default: the pod's first)")
	f.BoolVarP(&o.follow, "follow", "f", false, "stream the log while the container runs")
	f.BoolVarP(&o.previous, "previous", "p", false, "the log of the container's last terminated instance")
	f.BoolVar(&o.timestamps, "timestamps", false, "begin each line with its RFC3339 time")
	f.Int64Var(&o.tail, "tail", -1, "lines from the end to show (-1: all)")
	f.DurationVar(&o.since, "since", 0, "only lines newer than this, e.g. 5s, 2m, 3h")
	f.Int64Var(&o.limitBytes, "limit-bytes", 0, "at most this many bytes (0: no limit)")
	return cmd
}

func (o *logsOptions) run(ctx context.Context, cmd *cobra.Command, name string) error {
	c := o.client()
	pod, err := o.pod(ctx, c, name)
	if err != nil {
		return err
	}
	ctr, err := pickContainer(pod, o.container, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	q := url.Values{}
	set := func(k string, on bool) {
		if on {
			q.Set(k, "true")
		}
	}
	set("follow", o.follow)
	set("previous", o.previous)
	set("timestamps", o.timestamps)
	if o.tail >= 0 {
		q.Set("tailLines", strconv.FormatInt(o.tail, 10))
	}
	if o.since > 0 {
		q.Set("sinceSeconds", strconv.FormatInt(int64((o.since+time.Second-1)/time.Second), 10))
	}
	if o.limitBytes > 0 {
		q.Set("limitBytes", strconv.FormatInt(o.limitBytes, 10))
	}
	path := "/containerLogs/" + url.PathEscape(pod.Namespace) + "/" + url.PathEscape(pod.Name) + "/" + url.PathEscape(ctr)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	body, err := c.open(ctx, path)
	if err != nil {
		if o.previous && isNotFound(err) {
			// The kubelet's answer, which kubectl shows.
			return &apiError{Code: 400, Reason: "BadRequest",
				Message: fmt.Sprintf("previous terminated container %q in pod %q not found", ctr, pod.Name)}
		}
		return err
	}
	defer body.Close()
	if _, err := io.Copy(cmd.OutOrStdout(), body); err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("logs of container %s in pod %s: %w", ctr, pod.Name, err)
	}
	return nil
}

// pickContainer is the container logs and exec use: the one named (which
// must be the pod's), else the one the default-container annotation names,
// else the first, saying so on w when the pod has more than one.
func pickContainer(pod *v1.Pod, name string, w io.Writer) (string, error) {
	if len(pod.Spec.Containers) == 0 {
		return "", fmt.Errorf("pod %s/%s does not have any containers", pod.Namespace, pod.Name)
	}
	explicit := name != ""
	if !explicit {
		name = pod.Annotations[defaultContainerAnnotation]
	}
	if name != "" {
		if !podcontainer.Has(pod, name) {
			return "", fmt.Errorf("container %s is not valid for pod %s out of: %s", name, pod.Name, containerNames(pod))
		}
		return name, nil
	}
	first := pod.Spec.Containers[0].Name
	if len(pod.Spec.Containers) > 1 || len(pod.Spec.InitContainers) > 0 || len(pod.Spec.EphemeralContainers) > 0 {
		fmt.Fprintf(w, "Defaulted container %q out of: %s\n", first, containerNames(pod))
	}
	return first, nil
}

// containerNames lists the pod's containers as kubectl does: the app
// containers, then the ephemeral and init ones, marked.
func containerNames(pod *v1.Pod) string {
	var names []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		names = append(names, c.Name+" (ephem)")
	}
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name+" (init)")
	}
	return strings.Join(names, ", ")
}
