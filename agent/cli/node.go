package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	v1 "k8s.io/api/core/v1"
)

// printNode writes the node as `kubectl get node` does (NAME STATUS ROLES AGE
// VERSION; with wide also INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION
// CONTAINER-RUNTIME), followed by what `kubectl describe node` shows of its
// health and size: the conditions with their reasons, capacity and
// allocatable, the runtime, and the images it holds.
func printNode(w io.Writer, n *v1.Node, now time.Time, wide bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	info := n.Status.NodeInfo
	head := []string{"NAME", "STATUS", "ROLES", "AGE", "VERSION"}
	row := []string{n.Name, nodeStatus(n), "<none>", since(n.CreationTimestamp.Time, now), info.KubeletVersion}
	if wide {
		head = append(head, "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME")
		row = append(row, nodeAddress(n, v1.NodeInternalIP), nodeAddress(n, v1.NodeExternalIP), info.OSImage, info.KernelVersion, info.ContainerRuntimeVersion)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	fmt.Fprintln(tw, strings.Join(row, "\t"))
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
	fmt.Fprintf(tw, "Runtime:\t%s\n", info.ContainerRuntimeVersion)
	fmt.Fprintf(tw, "Kernel:\t%s\n", info.KernelVersion)
	fmt.Fprintf(tw, "OS image:\t%s\n", info.OSImage)
	var addrs []string
	for _, a := range n.Status.Addresses {
		addrs = append(addrs, string(a.Type)+"="+a.Address)
	}
	fmt.Fprintf(tw, "Addresses:\t%s\n", strings.Join(addrs, ", "))
	fmt.Fprintf(tw, "Images:\t%d\n", len(n.Status.Images))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(n.Status.Images) == 0 {
		return nil
	}
	tw = newTable(w)
	fmt.Fprintln(tw, "  IMAGE\tSIZE")
	for _, img := range n.Status.Images {
		name := "<none>"
		if len(img.Names) > 0 {
			name = img.Names[0]
			// Prefer a tag to a digest, as `crictl images` does.
			for _, n := range img.Names {
				if !strings.Contains(n, "@") {
					name = n
					break
				}
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, humanBytes(img.SizeBytes))
	}
	return tw.Flush()
}

func nodeStatus(n *v1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			if c.Status == v1.ConditionTrue {
				return "Ready"
			}
			return "NotReady"
		}
	}
	return "Unknown"
}

func nodeAddress(n *v1.Node, t v1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return "<none>"
}

// humanBytes is a size in binary units: 4.3Mi, 120.0Ki, 512B.
func humanBytes(b int64) string {
	const unit = 1024
	suffixes := []string{"", "Ki", "Mi", "Gi", "Ti"}
	v, i := float64(b), 0
	for v >= unit && i < len(suffixes)-1 {
		v /= unit
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", b)
	}
	return fmt.Sprintf("%.1f%s", v, suffixes[i])
}
