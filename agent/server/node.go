package server

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	v1 "k8s.io/api/core/v1"
)

// PrintNode writes the node as `kubectl get node` does (NAME STATUS ROLES AGE
// VERSION), followed by what `kubectl describe node` shows of its health and
// size: the conditions with their reasons, capacity and allocatable.
func PrintNode(w io.Writer, n *v1.Node, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	status := "Unknown"
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			status = "NotReady"
			if c.Status == v1.ConditionTrue {
				status = "Ready"
			}
		}
	}
	fmt.Fprintln(tw, "NAME\tSTATUS\tROLES\tAGE\tVERSION")
	fmt.Fprintf(tw, "%s\t%s\t<none>\t%s\t%s\n", n.Name, status, since(n.CreationTimestamp.Time, now), n.Status.NodeInfo.KubeletVersion)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "Conditions:")
	fmt.Fprintln(tw, "  TYPE\tSTATUS\tLAST TRANSITION\tREASON\tMESSAGE")
	for _, c := range n.Status.Conditions {
		fmt.Fprintf(tw, "  %s\t%s\t%s ago\t%s\t%s\n", c.Type, c.Status, since(c.LastTransitionTime.Time, now), c.Reason, c.Message)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "  RESOURCE\tCAPACITY\tALLOCATABLE")
	var names []string
	for name := range n.Status.Capacity {
		names = append(names, string(name))
	}
	sort.Strings(names)
	for _, name := range names {
		c := n.Status.Capacity[v1.ResourceName(name)]
		a := n.Status.Allocatable[v1.ResourceName(name)]
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, c.String(), a.String())
	}
	fmt.Fprintln(tw)
	info := n.Status.NodeInfo
	fmt.Fprintf(tw, "Runtime:\t%s\n", info.ContainerRuntimeVersion)
	fmt.Fprintf(tw, "Kernel:\t%s\n", info.KernelVersion)
	fmt.Fprintf(tw, "OS image:\t%s\n", info.OSImage)
	var addrs []string
	for _, a := range n.Status.Addresses {
		addrs = append(addrs, string(a.Type)+"="+a.Address)
	}
	fmt.Fprintf(tw, "Addresses:\t%s\n", strings.Join(addrs, ", "))
	fmt.Fprintf(tw, "Images:\t%d\n", len(n.Status.Images))
	return tw.Flush()
}
