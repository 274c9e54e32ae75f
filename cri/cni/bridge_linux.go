package cni

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// defaultBridge is the bridge plugin's default bridge name.
const defaultBridge = "cni0"

// pinBridgeMACs gives every bridge the network's bridge plugins use an address
// of its own if it has none. A Linux bridge whose address nobody set takes the
// lowest address of its ports, and 00:00:00:00:00:00 once the last port is
// gone. The bridge plugin sets the bridge's address to itself (to keep it from
// following the ports) only at the end of a successful ADD, with the address
// it read before it added the pod's veth; so an ADD that died or failed after
// it added the first veth, and the DEL that removed it, leave a bridge with
// the null address, and every later ADD fails with "could not set bridge's
// mac: invalid argument". A random locally administered address is what the
// kernel gives a new bridge; the plugin then keeps it.
func pinBridgeMACs(conf []byte) error {
	for _, b := range bridgePlugins(conf) {
		if err := pinBridgeMAC(b.Bridge); err != nil {
			return err
		}
	}
	return nil
}

// bridgePlugin is what the node needs to know of a bridge plugin of a
// configuration list.
type bridgePlugin struct {
	Bridge string // the bridge's name (the plugin's default: cni0)
	IPMasq bool
}

// bridgePlugins lists the bridge plugins of a configuration list.
func bridgePlugins(conf []byte) []bridgePlugin {
	var list struct {
		Plugins []struct {
			Type   string `json:"type"`
			Bridge string `json:"bridge"`
			IPMasq bool   `json:"ipMasq"`
		} `json:"plugins"`
	}
	if json.Unmarshal(conf, &list) != nil {
		return nil
	}
	var out []bridgePlugin
	for _, p := range list.Plugins {
		if p.Type != "bridge" {
			continue
		}
		b := bridgePlugin{Bridge: p.Bridge, IPMasq: p.IPMasq}
		if b.Bridge == "" {
			b.Bridge = defaultBridge
		}
		out = append(out, b)
	}
	return out
}

func pinBridgeMAC(name string) error {
	sys := filepath.Join("/sys/class/net", name)
	if _, err := os.Stat(filepath.Join(sys, "bridge")); err != nil {
		return nil // not there yet (the plugin makes it), or not a bridge (the plugin says so)
	}
	addr, err := os.ReadFile(filepath.Join(sys, "address"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("cni: bridge %s: %w", name, err)
	}
	if strings.TrimSpace(string(addr)) != "00:00:00:00:00:00" {
		return nil
	}
	var mac [6]byte
	if _, err := rand.Read(mac[:]); err != nil {
		return fmt.Errorf("cni: bridge %s: %w", name, err)
	}
	mac[0] = mac[0]&^0x01 | 0x02 // unicast, locally administered
	if err := setHardwareAddr(name, mac); err != nil {
		return fmt.Errorf("cni: give bridge %s, whose address is null, an address of its own: %w", name, err)
	}
	return nil
}

// ifreqHWAddr is struct ifreq with its union holding a struct sockaddr.
type ifreqHWAddr struct {
	name   [unix.IFNAMSIZ]byte
	family uint16
	data   [14]byte
	_      [8]byte
}

func setHardwareAddr(name string, mac [6]byte) error {
	if len(name) >= unix.IFNAMSIZ {
		return fmt.Errorf("interface name %q too long", name)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	var req ifreqHWAddr
	copy(req.name[:], name)
	req.family = unix.ARPHRD_ETHER
	copy(req.data[:], mac[:])
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCSIFHWADDR, uintptr(unsafe.Pointer(&req))); errno != 0 {
		return fmt.Errorf("SIOCSIFHWADDR: %w", errno)
	}
	return nil
}
