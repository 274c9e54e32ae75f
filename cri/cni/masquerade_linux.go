package cni

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// Sweep removes the masquerading rules the bridge plugin (ipMasq) made for a's
// pod, if any are left. The plugin's DEL finds the pod's addresses on its
// interface, so a DEL that runs after the interface is gone cannot remove them:
// after the network namespace went, or when an earlier DEL was cut short by a
// crash of the shim, or raced by an ADD a crash left running. The rules are
// found the way the plugin names them: a POSTROUTING jump to the chain
// "CNI-" + sha512(network name + container id) (24 hex digits). IPv4 only, as
// the plugin's masquerading with iptables. A network without a bridge plugin
// that masquerades has nothing to sweep.
func (m *Manager) Sweep(ctx context.Context, a *Attachment) error {
	if !masquerades(a.Config) {
		return nil
	}
	sum := sha512.Sum512([]byte(a.Network + a.ContainerID))
	chain := "CNI-" + hex.EncodeToString(sum[:])[:24]
	out, err := iptables(ctx, "-t", "nat", "-L", "POSTROUTING", "-n", "--line-numbers")
	if err != nil {
		return err
	}
	var lines []int
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[1] == chain {
			if n, err := strconv.Atoi(f[0]); err == nil {
				lines = append(lines, n)
			}
		}
	}
	// From the last, so that the numbers of the others do not move.
	slices.Sort(lines)
	for _, n := range slices.Backward(lines) {
		if _, err := iptables(ctx, "-t", "nat", "-D", "POSTROUTING", strconv.Itoa(n)); err != nil {
			return err
		}
	}
	// The chain may be there without a jump to it: the plugin makes it before
	// the jump and removes the jump first.
	if _, err := iptables(ctx, "-t", "nat", "-F", chain); err != nil {
		if strings.Contains(err.Error(), "No chain") || strings.Contains(err.Error(), "does not exist") {
			return nil
		}
		return err
	}
	_, err = iptables(ctx, "-t", "nat", "-X", chain)
	return err
}

// masquerades reports whether a network configuration list has a bridge plugin
// with ipMasq set.
func masquerades(conf []byte) bool {
	for _, b := range bridgePlugins(conf) {
		if b.IPMasq {
			return true
		}
	}
	return false
}

func iptables(ctx context.Context, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("cni: iptables %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}
