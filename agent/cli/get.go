package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// pollInterval is how often `get pods -w` reads the pods again (the agent
// has no watch).
var pollInterval = time.Second

type getOptions struct {
	target
	output        string
	watch         bool
	allNamespaces bool
	selector      string
	showLabels    bool
	noHeaders     bool
}

func newGetCommand() *cobra.Command {
	var o getOptions
	cmd := &cobra.Command{
		Use:   "get (pods [NAME] | node) [flags]",
		Short: "Display the pods or the node",
		Long: `Display the agent's pods, with their statuses, or its node: Ready and the
pressure conditions, capacity and allocatable, the runtime and its images.
Without -n, pods of every namespace are shown (a NAMESPACE column appears
when there are several).`,
		Example: `  # The pods, with their IPs
  nodekit-kubelet get pods -o wide

  # Follow changes of the pods' statuses
  nodekit-kubelet get pods -w

  # One pod as YAML
  nodekit-kubelet get pod web-node-a -o yaml

  # The node
  nodekit-kubelet get node`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf(cmd, "you must specify the type of resource to get: pods or node")
			}
			kind, name, _ := strings.Cut(args[0], "/")
			if len(args) == 2 {
				if name != "" {
					return usageErrorf(cmd, "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form")
				}
				name = args[1]
			}
			switch kind {
			case "pods", "pod", "po":
				return o.pods(cmd.Context(), cmd, name)
			case "nodes", "node", "no":
				return o.node(cmd.Context(), cmd, name)
			}
			return fmt.Errorf("the server doesn't have a resource type %q (this agent has pods and node)", kind)
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "output format: wide, yaml, json or name")
	f.BoolVarP(&o.watch, "watch", "w", false, "after listing the pods, print a pod again each time it changes")
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "pods of every namespace, with a NAMESPACE column")
	f.StringVarP(&o.selector, "selector", "l", "", "label selector, e.g. -l app=web,tier!=cache")
	f.BoolVar(&o.showLabels, "show-labels", false, "a LABELS column last")
	f.BoolVar(&o.noHeaders, "no-headers", false, "no header line in tables")
	return cmd
}

func (o *getOptions) pods(ctx context.Context, cmd *cobra.Command, name string) error {
	switch o.output {
	case "", "wide", "yaml", "json", "name":
	default:
		return usageErrorf(cmd, "unable to match a printer suitable for the output format %q, allowed formats are: json,name,wide,yaml", o.output)
	}
	if o.allNamespaces {
		o.namespace = ""
	}
	sel, err := labels.Parse(o.selector)
	if err != nil {
		return usageErrorf(cmd, "-l %q: %v", o.selector, err)
	}
	c := o.client()
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	// pick returns the pods the command shows.
	pick := func() ([]v1.Pod, error) {
		list, err := c.pods(ctx)
		if err != nil {
			return nil, err
		}
		var pods []v1.Pod
		for _, p := range list.Items {
			if o.inNamespace(&p) && (name == "" || p.Name == name) && sel.Matches(labels.Set(p.Labels)) {
				p.APIVersion, p.Kind = "v1", "Pod"
				pods = append(pods, p)
			}
		}
		return pods, nil
	}
	pods, err := pick()
	if err != nil {
		return err
	}
	if name != "" && len(pods) == 0 {
		return podNotFound(name)
	}
	if name != "" && len(pods) > 1 && !o.watch && (o.output == "yaml" || o.output == "json") {
		return fmt.Errorf("pods named %q are in several namespaces: name one with -n", name)
	}
	table := tableOptions{
		namespaces: o.allNamespaces || (o.namespace == "" && len(namespacesOf(pods)) > 1),
		wide:       o.output == "wide",
		labels:     o.showLabels,
		noHeaders:  o.noHeaders,
	}
	if len(pods) == 0 && o.output != "yaml" && o.output != "json" {
		fmt.Fprintln(errOut, noResources(o.namespace))
	} else if err := o.printPods(out, pods, name != "", table); err != nil {
		return err
	}
	if !o.watch {
		return nil
	}
	// Watch: print a pod again whenever its status changes, as kubectl does
	// for each event of a watch; a pod that went is printed once more.
	last := map[string]v1.Pod{}
	for _, p := range pods {
		last[p.Namespace+"/"+p.Name] = p
	}
	table.noHeaders = true
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		pods, err := pick()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var changed []v1.Pod
		seen := map[string]bool{}
		for _, p := range pods {
			key := p.Namespace + "/" + p.Name
			seen[key] = true
			if prev, ok := last[key]; !ok || !samePodState(&prev, &p) {
				changed = append(changed, p)
			}
			last[key] = p
		}
		for key, p := range last {
			if !seen[key] {
				changed = append(changed, p)
				delete(last, key)
			}
		}
		if len(changed) > 0 {
			if err := o.printPods(out, changed, true, table); err != nil {
				return err
			}
		}
	}
}

// printPods prints pods in the output format; single prints one pod as an
// object rather than a list (yaml, json), or each pod as its own object
// (watch).
func (o *getOptions) printPods(w io.Writer, pods []v1.Pod, single bool, t tableOptions) error {
	switch o.output {
	case "yaml", "json":
		if !single {
			return printObject(w, o.output, podList(pods))
		}
		for i, p := range sortPods(pods) {
			if o.output == "yaml" && i > 0 {
				fmt.Fprintln(w, "---")
			}
			if err := printObject(w, o.output, &p); err != nil {
				return err
			}
		}
		return nil
	case "name":
		for _, p := range sortPods(pods) {
			fmt.Fprintf(w, "pod/%s\n", p.Name)
		}
		return nil
	}
	return printPods(w, pods, time.Now(), t)
}

// samePodState says whether a watch has nothing new to print about a pod.
func samePodState(a, b *v1.Pod) bool {
	state := func(p *v1.Pod) []byte {
		data, _ := json.Marshal([]any{p.Status, p.DeletionTimestamp, p.Labels})
		return data
	}
	return bytes.Equal(state(a), state(b))
}

// list is kubectl's List of objects of several kinds or of a query.
type list struct {
	APIVersion string   `json:"apiVersion"`
	Items      []any    `json:"items"`
	Kind       string   `json:"kind"`
	Metadata   listMeta `json:"metadata"`
}

type listMeta struct {
	ResourceVersion string `json:"resourceVersion"`
}

func podList(pods []v1.Pod) *list {
	l := &list{APIVersion: "v1", Kind: "List", Items: []any{}}
	for _, p := range sortPods(pods) {
		l.Items = append(l.Items, p)
	}
	return l
}

// printObject writes obj as kubectl's -o yaml or -o json.
func printObject(w io.Writer, format string, obj any) error {
	var data []byte
	var err error
	if format == "yaml" {
		data, err = yaml.Marshal(obj)
	} else {
		data, err = json.MarshalIndent(obj, "", "    ")
		data = append(data, '\n')
	}
	if err != nil {
		return fmt.Errorf("encode %s: %w", format, err)
	}
	_, err = w.Write(data)
	return err
}

func noResources(namespace string) string {
	if namespace == "" {
		return "No resources found"
	}
	return fmt.Sprintf("No resources found in %s namespace.", namespace)
}

func (o *getOptions) node(ctx context.Context, cmd *cobra.Command, name string) error {
	n, err := o.client().node(ctx)
	if err != nil {
		return err
	}
	if name != "" && name != n.Name {
		return &apiError{Code: 404, Reason: "NotFound", Message: fmt.Sprintf("nodes %q not found", name)}
	}
	n.APIVersion, n.Kind = "v1", "Node"
	w := cmd.OutOrStdout()
	switch o.output {
	case "", "wide":
		return printNode(w, n, time.Now(), o.output == "wide")
	case "yaml", "json":
		return printObject(w, o.output, n)
	case "name":
		_, err := fmt.Fprintf(w, "node/%s\n", n.Name)
		return err
	}
	return usageErrorf(cmd, "unable to match a printer suitable for the output format %q, allowed formats are: json,name,wide,yaml", o.output)
}
