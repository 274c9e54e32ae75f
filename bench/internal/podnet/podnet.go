package podnet

import (
	"crypto/rand"
	"errors"
	"net"
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
