package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// errNotDevice is returned by deviceFromPath for a file that is not a device node.
var errNotDevice = errors.New("not a device node")

// setDevices adds the requested devices, each with a device-cgroup rule
// allowing its permissions, after a rule denying everything else (runc adds
// its own allowances for /dev/null, /dev/zero and the like). A privileged
// container gets every device in the host's /dev and no device restriction.
func setDevices(s *specs.Spec, in Input) error {
	s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	seen := map[string]bool{}
	for i, d := range in.Config.GetDevices() {
		field := fmt.Sprintf("devices[%d]", i)
		host := d.GetHostPath()
		if host == "" || !filepath.IsAbs(host) {
			return fieldErr(field+".host_path", "%q is not an absolute path", host)
		}
		ctr := d.GetContainerPath()
		if ctr == "" {
			ctr = host
		}
		if !path.IsAbs(ctr) {
			return fieldErr(field+".container_path", "%q is not an absolute path", ctr)
		}
		perms := d.GetPermissions()
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" {
			return fieldErr(field+".permissions", "%q: want a combination of r, w and m", d.GetPermissions())
		}
		devs, err := devicesAt(host, path.Clean(ctr))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDevice) {
				return &FieldError{Field: field + ".host_path", Err: err}
			}
			return fmt.Errorf("container %s: device %s: %w", in.ID, host, err)
		}
		for _, dev := range devs {
			s.Linux.Devices = append(s.Linux.Devices, dev)
			seen[dev.Path] = true
			major, minor := dev.Major, dev.Minor
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
				Allow: true, Type: dev.Type, Major: &major, Minor: &minor, Access: perms,
			})
		}
	}
	if in.Config.GetLinux().GetSecurityContext().GetPrivileged() {
		host, err := hostDevices()
		if err != nil {
			return fmt.Errorf("container %s: list host devices: %w", in.ID, err)
		}
		for _, dev := range host {
			if !seen[dev.Path] {
				s.Linux.Devices = append(s.Linux.Devices, dev)
			}
		}
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	return nil
}

// devicesAt returns the device at host, or the devices under it when it is a
// directory, named under ctr. A symlink given directly is followed (udev's
// /dev/disk/by-id/... names); links found while walking a directory are not,
// so each device appears once under its real name.
func devicesAt(host, ctr string) ([]specs.LinuxDevice, error) {
	fi, err := os.Stat(host)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		real, err := filepath.EvalSymlinks(host)
		if err != nil {
			return nil, err
		}
		dev, err := deviceFromPath(real)
		if err != nil {
			return nil, err
		}
		if dev.Type == "p" {
			return nil, fmt.Errorf("%s is a fifo: %w", host, errNotDevice)
		}
		dev.Path = ctr
		return []specs.LinuxDevice{dev}, nil
	}
	return walkDevices(host, ctr)
}

// walkDevices lists the block and character devices under dir, recursively,
// skipping what is never a device to pass on: the pts, shm, fd and mqueue
// mounts of a /dev, the console, fifos and links.
func walkDevices(dir, ctr string) ([]specs.LinuxDevice, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []specs.LinuxDevice
	for _, e := range entries {
		name := e.Name()
		full := filepath.Join(dir, name)
		if e.IsDir() {
			switch name {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				continue
			}
			sub, err := walkDevices(full, path.Join(ctr, name))
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		if name == "console" {
			continue
		}
		dev, err := deviceFromPath(full)
		if errors.Is(err, errNotDevice) || errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if dev.Type == "p" {
			continue
		}
		dev.Path = path.Join(ctr, name)
		out = append(out, dev)
	}
	return out, nil
}

// hostDevices lists every device under the host's /dev.
func hostDevices() ([]specs.LinuxDevice, error) {
	return walkDevices("/dev", "/dev")
}
