package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"runtime"
	"syscall"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// pluginExec runs CNI plugins as libcni's own executor does, except that a
// plugin dies with its caller (PR_SET_PDEATHSIG). A plugin left running by a
// crash of the shim in the middle of an ADD would otherwise finish that ADD after
// the restarted shim's DEL had undone it, leaving an address, an interface or a
// NAT rule that no journal knows. A plugin killed halfway is undone by DEL,
// which tolerates partial state.
type pluginExec struct {
	version.PluginDecoder
}

func newPluginExec() invoke.Exec { return &pluginExec{} }

func (*pluginExec) ExecPlugin(ctx context.Context, path string, stdin []byte, environ []string) ([]byte, error) {
	// The death signal follows the thread that forks the plugin: keep this
	// goroutine on it until the plugin has ended.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = environ
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return nil, pluginError(err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

func (*pluginExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

// pluginError is the CNI error a failed plugin printed on stdout, else one made
// of its stderr.
func pluginError(err error, stdout, stderr []byte) error {
	e := &types.Error{}
	switch {
	case len(stdout) > 0:
		if jerr := json.Unmarshal(stdout, e); jerr != nil {
			e.Msg = fmt.Sprintf("plugin failed (%v) and its error %q does not parse: %v", err, stdout, jerr)
		}
	case len(stderr) > 0:
		e.Msg = fmt.Sprintf("plugin failed: %q: %v", stderr, err)
	default:
		e.Msg = fmt.Sprintf("plugin failed with no message: %v", err)
	}
	return e
}
