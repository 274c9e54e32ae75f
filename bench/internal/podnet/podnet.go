package podnet

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
)

// FreeSubnet picks a random 10.x.y.0/22, x in 64..127 (clear of the agent
// tests' 10.128.0.0/10), that no interface of the node is in.
func FreeSubnet() (*net.IPNet, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	for range 100 {
		var b [2]byte
		rand.Read(b[:])
		sub := &net.IPNet{IP: net.IPv4(10, 64+b[0]%64, b[1]&^3, 0).To4(), Mask: net.CIDRMask(22, 32)}
		free := true
		for _, a := range addrs {
			if in, ok := a.(*net.IPNet); ok && (in.Contains(sub.IP) || sub.Contains(in.IP)) {
				free = false
			}
		}
		if free {
			return sub, nil
		}
	}
	return nil, errors.New("no free 10.x.y.0/22 for the benchmark's pod network")
}

// WriteBridgeConfList writes the CNI network list name at path: a bridge
// called name, the gateway of subnet, whose host-local IPAM keeps its state in
// ipamDir, then loopback.
func WriteBridgeConfList(path, name string, subnet *net.IPNet, ipamDir string) error {
	conf, err := json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       name,
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": name, "isGateway": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": subnet.String()}}},
					"dataDir": ipamDir,
				},
			},
			map[string]any{"type": "loopback"},
		},
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("CNI configuration %s: %w", name, err)
	}
	return os.WriteFile(path, conf, 0o644)
}
