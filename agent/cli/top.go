package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	v1 "k8s.io/api/core/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

type topOptions struct {
	target
	allNamespaces bool
	containers    bool
	sortBy        string
	noHeaders     bool
}

func newTopCommand() *cobra.Command {
	var o topOptions
	cmd := &cobra.Command{
		Use:   "top (pods [NAME] | node)",
		Short: "Display CPU and memory use of the pods or the node",
		Long: `Display what the pods (or their containers, or the node) use now, as kubectl
top does: CPU in millicores and the memory working set, from the agent's
Summary API (/stats/summary).`,
		Example: `  # The pods using the most memory first
  nodekit-kubelet top pods --sort-by memory`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name, _ := strings.Cut(args[0], "/")
			if len(args) == 2 {
				name = args[1]
			}
			if o.sortBy != "" && o.sortBy != "cpu" && o.sortBy != "memory" {
				return usageErrorf(cmd, "--sort-by accepts only cpu or memory")
			}
			switch kind {
			case "pods", "pod", "po":
				return o.pods(cmd.Context(), cmd.OutOrStdout(), name)
			case "nodes", "node", "no":
				return o.node(cmd.Context(), cmd.OutOrStdout())
			}
			return usageErrorf(cmd, "top shows pods or node, not %q", kind)
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "pods of every namespace, with a NAMESPACE column")
	f.BoolVar(&o.containers, "containers", false, "a row per container")
	f.StringVar(&o.sortBy, "sort-by", "", "cpu or memory: the largest first")
	f.BoolVar(&o.noHeaders, "no-headers", false, "no header line")
	return cmd
}

// usage is one row of top: CPU in nanocores, memory working set in bytes.
type usage struct {
	namespace, pod, container string
	cpu, memory               uint64
}

func (o *topOptions) pods(ctx context.Context, w io.Writer, name string) error {
	if o.allNamespaces {
		o.namespace = ""
	}
	c := o.client()
	if name != "" {
		if _, err := o.pod(ctx, c, name); err != nil {
			return err
		}
	}
	sum, err := c.summary(ctx)
	if err != nil {
		return err
	}
	var rows []usage
	var missing []statsapi.PodStats
	for _, p := range sum.Pods {
		ref := p.PodRef
		if (o.namespace != "" && ref.Namespace != o.namespace) || (name != "" && ref.Name != name) {
			continue
		}
		if o.containers {
			for _, ct := range p.Containers {
				cpu, mem, ok := figures(ct.CPU, ct.Memory)
				if ok {
					rows = append(rows, usage{ref.Namespace, ref.Name, ct.Name, cpu, mem})
				}
			}
			continue
		}
		cpu, mem, ok := figures(p.CPU, p.Memory)
		if !ok { // no pod-level figures: the sum of its containers'
			ok = len(p.Containers) > 0
			for _, ct := range p.Containers {
				c, m, cok := figures(ct.CPU, ct.Memory)
				cpu, mem, ok = cpu+c, mem+m, ok && cok
			}
		}
		if !ok {
			missing = append(missing, p)
			continue
		}
		rows = append(rows, usage{namespace: ref.Namespace, pod: ref.Name, cpu: cpu, memory: mem})
	}
	if len(rows) == 0 {
		if name != "" && len(missing) > 0 {
			return fmt.Errorf("metrics not available for pod %s/%s, age: %s", missing[0].PodRef.Namespace, name, since(missing[0].StartTime.Time, time.Now()))
		}
		return fmt.Errorf("metrics not available yet")
	}
	namespaces := map[string]bool{}
	for _, r := range rows {
		namespaces[r.namespace] = true
	}
	printUsage(w, rows, o.sortBy, o.containers, o.allNamespaces || len(namespaces) > 1, o.noHeaders)
	return nil
}

// figures reads CPU (nanocores) and memory (working set bytes); ok is
// false when one is missing (the first CPU sample has no rate yet).
func figures(cpu *statsapi.CPUStats, mem *statsapi.MemoryStats) (c, m uint64, ok bool) {
	if cpu == nil || cpu.UsageNanoCores == nil || mem == nil || mem.WorkingSetBytes == nil {
		return 0, 0, false
	}
	return *cpu.UsageNanoCores, *mem.WorkingSetBytes, true
}

func printUsage(w io.Writer, rows []usage, sortBy string, containers, namespaces, noHeaders bool) {
	slices.SortFunc(rows, func(a, b usage) int {
		switch sortBy {
		case "cpu":
			return cmp.Compare(b.cpu, a.cpu)
		case "memory":
			return cmp.Compare(b.memory, a.memory)
		}
		return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.pod, b.pod), cmp.Compare(a.container, b.container))
	})
	tw := newTable(w)
	var head []string
	if namespaces {
		head = append(head, "NAMESPACE")
	}
	if containers {
		head = append(head, "POD")
	}
	head = append(head, "NAME", "CPU(cores)", "MEMORY(bytes)")
	if !noHeaders {
		fmt.Fprintln(tw, strings.Join(head, "\t"))
	}
	for _, r := range rows {
		var cells []string
		if namespaces {
			cells = append(cells, r.namespace)
		}
		cells = append(cells, r.pod)
		if containers {
			cells = append(cells, r.container)
		}
		cells = append(cells, millicores(r.cpu), mebibytes(r.memory))
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

func (o *topOptions) node(ctx context.Context, w io.Writer) error {
	c := o.client()
	n, err := c.node(ctx)
	if err != nil {
		return err
	}
	sum, err := c.summary(ctx)
	if err != nil {
		return err
	}
	cpu, mem, ok := figures(sum.Node.CPU, sum.Node.Memory)
	if !ok {
		return fmt.Errorf("metrics not available yet")
	}
	tw := newTable(w)
	if !o.noHeaders {
		fmt.Fprintln(tw, "NAME\tCPU(cores)\tCPU(%)\tMEMORY(bytes)\tMEMORY(%)")
	}
	allocCPU, allocMem := n.Status.Allocatable[v1.ResourceCPU], n.Status.Allocatable[v1.ResourceMemory]
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, millicores(cpu), percent(float64(cpu)/1e6, float64(allocCPU.MilliValue())),
		mebibytes(mem), percent(float64(mem), float64(allocMem.Value())))
	return tw.Flush()
}

// millicores is kubectl top's CPU cell: millicores, rounded up.
func millicores(nanocores uint64) string { return fmt.Sprintf("%dm", (nanocores+999_999)/1_000_000) }

// mebibytes is kubectl top's memory cell: whole MiB.
func mebibytes(b uint64) string { return fmt.Sprintf("%dMi", b>>20) }

func percent(used, of float64) string {
	if of <= 0 {
		return "<unknown>"
	}
	return fmt.Sprintf("%d%%", int64(used/of*100))
}
