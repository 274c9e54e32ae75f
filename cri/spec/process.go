package spec

import (
	"fmt"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultPath is PATH when neither the image nor the config sets it.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultNoFile is the RLIMIT_NOFILE (soft and hard) a container gets,
// capped to Host.MaxNoFile.
//
// containerd and CRI-O set no rlimits, so a container inherits whatever the
// runtime's service manager gave it: 1048576 under Docker and containerd 1.x
// (LimitNOFILE=infinity), 1024/524288 under systemd's defaults. Here the
// runtime is a monitor process started by the shim, whose limits depend on
// how nodekit was launched, so the spec states one explicitly. 1048576 (the
// kernel's default fs.nr_open) matches what Kubernetes workloads have long
// seen, and servers that check their soft limit at start (databases,
// proxies, Elasticsearch) expect a high one. The cap to the runtime's own hard
// limit is needed because raising a hard limit takes CAP_SYS_RESOURCE, which
// the runtime may lack: runc would then fail to create the container.
const DefaultNoFile = 1 << 20

func setProcess(p *specs.Process, in Input) error {
	cfg := in.Config
	args, err := processArgs(cfg.GetCommand(), cfg.GetArgs(), in.Image.Entrypoint, in.Image.Cmd)
	if err != nil {
		return err
	}
	p.Args = args

	switch {
	case cfg.GetWorkingDir() != "":
		if !path.IsAbs(cfg.GetWorkingDir()) {
			return fieldErr("working_dir", "%q is not an absolute path", cfg.GetWorkingDir())
		}
		p.Cwd = path.Clean(cfg.GetWorkingDir())
	case in.Image.WorkingDir != "":
		p.Cwd = path.Join("/", in.Image.WorkingDir)
	default:
		p.Cwd = "/"
	}

	p.Terminal = cfg.GetTty()
	host, err := hostname(in)
	if err != nil {
		return err
	}
	// Same layering as containerd: defaults, then the image's env, then the
	// config's; a later value replaces an earlier one with the same key in place.
	env := []string{"PATH=" + DefaultPath}
	if cfg.GetTty() {
		env = append(env, "TERM=xterm")
	}
	env = append(env, "HOSTNAME="+host)
	env = mergeEnv(env, in.Image.Env)
	cenv := make([]string, 0, len(cfg.GetEnvs()))
	for i, kv := range cfg.GetEnvs() {
		if kv.GetKey() == "" || strings.Contains(kv.GetKey(), "=") {
			return fieldErr(fmt.Sprintf("envs[%d].key", i), "%q is not a variable name", kv.GetKey())
		}
		cenv = append(cenv, kv.GetKey()+"="+string(kv.GetValue()))
	}
	p.Env = mergeEnv(env, cenv)

	nofile := uint64(DefaultNoFile)
	if m := in.Host.MaxNoFile; m != 0 && m < nofile {
		nofile = m
	}
	p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: nofile, Hard: nofile}}

	res := cfg.GetLinux().GetResources()
	adj := int(res.GetOomScoreAdj())
	if adj < -1000 || adj > 1000 {
		return fieldErr("linux.resources.oom_score_adj", "%d is outside [-1000, 1000]", adj)
	}
	if adj < in.OOMScoreAdjMin {
		adj = in.OOMScoreAdjMin
	}
	p.OOMScoreAdj = &adj
	return nil
}

// processArgs applies Kubernetes' rules: a command replaces the image's
// entrypoint and drops its cmd; args replace the image's cmd.
func processArgs(command, args, entrypoint, cmd []string) ([]string, error) {
	if len(command) == 0 {
		if len(args) == 0 {
			args = cmd
		}
		// An entrypoint of [""] is Docker's way of saying "no entrypoint".
		if !(len(entrypoint) == 1 && entrypoint[0] == "") {
			command = entrypoint
		}
	}
	out := make([]string, 0, len(command)+len(args))
	out = append(out, command...)
	out = append(out, args...)
	if len(out) == 0 {
		return nil, fieldErr("command", "no command specified and the image has no entrypoint or cmd")
	}
	return out, nil
}

// mergeEnv returns base with each of over set: a KEY=value replaces the entry
// with the same key in place or is appended; a bare KEY unsets it.
func mergeEnv(base, over []string) []string {
	out := append([]string(nil), base...)
	index := make(map[string]int, len(out))
	for i, e := range out {
		k, _, _ := strings.Cut(e, "=")
		index[k] = i
	}
	removed := false
	for _, e := range over {
		k, _, ok := strings.Cut(e, "=")
		i, exists := index[k]
		switch {
		case !ok && exists:
			out[i] = ""
			delete(index, k)
			removed = true
		case !ok:
		case exists:
			out[i] = e
		default:
			index[k] = len(out)
			out = append(out, e)
		}
	}
	if removed {
		kept := out[:0]
		for _, e := range out {
			if e != "" {
				kept = append(kept, e)
			}
		}
		out = kept
	}
	return out
}
