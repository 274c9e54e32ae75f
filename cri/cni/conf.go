package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/containernetworking/cni/pkg/version"
)

// confExtensions are the file names a configuration directory is searched for.
var confExtensions = []string{".conflist", ".conf", ".json"}

// network is a loaded configuration: list.Bytes is a self-contained configuration
// list (plugins inline, a .conf wrapped), which is what attachments record.
type network struct {
	config Config
	list   *libcni.NetworkConfigList
}

// network returns the configuration in use, loading it again when the directory
// looks different from the last time or the last load failed. Looking costs one
// directory read and a stat per configuration file.
func (m *Manager) network() (*network, error) {
	files, sig, err := m.confFiles()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil && m.loaded && m.err == nil && sig == m.sig {
		return m.cur, nil
	}
	m.loaded, m.sig = true, sig
	m.cur, m.err = nil, err
	if err == nil {
		m.cur, m.err = m.load(files[0])
	}
	return m.cur, m.err
}

// confFiles lists the candidate files in name order and a signature of them (names,
// sizes, modification times).
func (m *Manager) confFiles() ([]string, string, error) {
	dir := m.opts.ConfDir
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("%w: read network config directory %s: %v", ErrNotReady, dir, err)
	}
	var files []string
	var sig strings.Builder
	for _, e := range entries {
		if e.IsDir() || !hasConfExtension(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		fi, err := os.Stat(p) // follows symlinks
		if err != nil || fi.IsDir() {
			continue
		}
		files = append(files, p)
		fmt.Fprintf(&sig, "%s\x00%d\x00%d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	if len(files) == 0 {
		return nil, "", fmt.Errorf("%w: no network config found in %s", ErrNotReady, dir)
	}
	return files, sig.String(), nil
}

func hasConfExtension(name string) bool {
	for _, ext := range confExtensions {
		if filepath.Ext(name) == ext {
			return true
		}
	}
	return false
}

// load parses file into a self-contained list and checks that its plugins exist.
func (m *Manager) load(file string) (*network, error) {
	list, err := parseConfFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: load network config %s: %v", ErrNotReady, file, err)
	}
	cfg := Config{File: file, Name: list.Name, CNIVersion: list.CNIVersion}
	for i, p := range list.Plugins {
		if _, err := invoke.FindInPath(p.Network.Type, m.opts.BinDirs); err != nil {
			return nil, fmt.Errorf("%w: network config %s: plugin %d (%q) not found in %s", ErrNotReady, file, i, p.Network.Type, strings.Join(m.opts.BinDirs, ":"))
		}
		cfg.Plugins = append(cfg.Plugins, p.Network.Type)
	}
	return &network{config: cfg, list: list}, nil
}

// parseConfFile reads a .conflist (with any plugins kept beside it in NAME/*.conf),
// or a single plugin's .conf/.json, and returns a list whose Bytes hold every plugin
// inline.
func parseConfFile(file string) (*libcni.NetworkConfigList, error) {
	var name, cniVersion string
	var plugins []json.RawMessage
	if filepath.Ext(file) == ".conflist" {
		list, err := libcni.NetworkConfFromFile(file)
		if err != nil {
			return nil, err
		}
		name, cniVersion = list.Name, list.CNIVersion
		for _, p := range list.Plugins {
			plugins = append(plugins, p.Bytes)
		}
	} else {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		p, err := libcni.NetworkPluginConfFromBytes(data)
		if err != nil {
			return nil, err
		}
		name, cniVersion = p.Network.Name, p.Network.CNIVersion
		plugins = append(plugins, data)
	}
	if cniVersion == "" {
		return nil, fmt.Errorf("no cniVersion")
	}
	if _, _, _, err := version.ParseVersion(cniVersion); err != nil {
		return nil, fmt.Errorf("cniVersion %q: %w", cniVersion, err)
	}
	if err := utils.ValidateNetworkName(name); err != nil {
		return nil, fmt.Errorf("network name %q: %w", name, err)
	}
	data, err := json.Marshal(struct {
		CNIVersion string            `json:"cniVersion"`
		Name       string            `json:"name"`
		Plugins    []json.RawMessage `json:"plugins"`
	}{cniVersion, name, plugins})
	if err != nil {
		return nil, err
	}
	return libcni.NetworkConfFromBytes(data)
}
