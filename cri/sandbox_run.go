package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodekit-dev/nodekit/cri/podns"
)

// shmSize is the size of a pod's /dev/shm, as containerd and Docker give it.
const shmSize = 64 << 20

// RunPodSandbox creates a pod sandbox: pinned network, IPC and UTS namespaces (no
// process) attached to the CNI network (unless the pod uses the host's), the pod's
// hosts, resolv.conf and hostname files, a /dev/shm tmpfs and a cgroup parent.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtime.RunPodSandboxRequest) (*runtime.RunPodSandboxResponse, error) {
	cfg := req.GetConfig()
	if err := validateSandboxConfig(cfg); err != nil {
		return nil, err
	}
	switch req.GetRuntimeHandler() {
	case "", "runc":
	default:
		return nil, invalid("runtime_handler", "unknown runtime handler %q (this runtime offers \"runc\")", req.GetRuntimeHandler())
	}
	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	userns, err := podUserNamespace(cfg)
	if err != nil {
		return nil, err
	}
	if userns != nil && !s.features.userns {
		return nil, invalid("config.linux.security_context.namespace_options.userns_options", "the OCI runtime %s does not support user namespaces with id-mapped mounts", s.opts.Runtime)
	}
	if nsOpts.GetPid() == runtime.NamespaceMode_TARGET || nsOpts.GetIpc() == runtime.NamespaceMode_TARGET || nsOpts.GetNetwork() == runtime.NamespaceMode_TARGET {
		return nil, invalid("config.linux.security_context.namespace_options", "TARGET is only valid for containers")
	}

	id := newID()
	nameKey := sandboxNameKey(cfg.GetMetadata())
	if err := s.objs.reserve(nameKey, id, "pod sandbox"); err != nil {
		return nil, err
	}
	undo := &cleanups{}
	undo.add(func() error { s.objs.release(nameKey, id); return nil })
	defer func() {
		if err := undo.run(); err != nil {
			s.log.Error("cleaning up after a failed RunPodSandbox", "sandbox", id, "err", err)
		}
	}()

	rec := &sandboxRecord{
		ID:        id,
		Config:    cfg,
		State:     runtime.PodSandboxState_SANDBOX_READY,
		CreatedAt: time.Now().UnixNano(),
		Handler:   req.GetRuntimeHandler(),
		UserNS:    userns,
	}
	stateDir, rootDir := s.paths.sandboxState(id), s.paths.sandboxRoot(id)
	undo.add(func() error { return os.RemoveAll(stateDir) })
	undo.add(func() error { return os.RemoveAll(rootDir) })
	for _, d := range []string{stateDir, rootDir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, status.Errorf(codes.Internal, "create sandbox directory: %v", err)
		}
	}

	hostNetwork := nsOpts.GetNetwork() == runtime.NamespaceMode_NODE
	rec.Hostname = cfg.GetHostname()
	if rec.Hostname == "" || hostNetwork {
		h, err := os.Hostname()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "read host name: %v", err)
		}
		if rec.Hostname == "" {
			rec.Hostname = h
		}
	}
	if err := writeSandboxFiles(rootDir, cfg, rec.Hostname, hostNetwork); err != nil {
		return nil, status.Errorf(codes.Internal, "write sandbox files: %v", err)
	}

	if nsOpts.GetIpc() != runtime.NamespaceMode_NODE {
		rec.Shm = s.paths.sandboxShm(id)
		undo.add(func() error { return unmount(rec.Shm) })
		if err := mountTmpfs(rec.Shm, shmSize, mountNoSuidDevExec); err != nil {
			return nil, status.Errorf(codes.Internal, "pod /dev/shm: %v", err)
		}
	}

	parent, own, err := s.cgroups.podParent(id, cfg.GetLinux().GetCgroupParent())
	if err != nil {
		return nil, invalid("config.linux.cgroup_parent", "%v", err)
	}
	rec.Cgroup, rec.OwnCgroup = parent, own

	rec.Namespace = map[string]string{}
	releaseInfra := func() {}
	if userns != nil {
		// The infra process makes the user namespace and the pod's other
		// namespaces inside it; they are pinned from it.
		if releaseInfra, err = s.startInfra(rec, undo); err != nil {
			return nil, err
		}
	} else {
		var kinds []podns.Kind
		if !hostNetwork {
			kinds = append(kinds, podns.Net, podns.UTS)
		}
		if nsOpts.GetIpc() != runtime.NamespaceMode_NODE {
			kinds = append(kinds, podns.IPC)
		}
		nsDir := s.paths.sandboxNS(id)
		undo.add(func() error { return podns.Unpin(nsDir) })
		pinned, err := podns.Pin(podns.Options{Dir: nsDir, Kinds: kinds, Hostname: rec.Hostname})
		if err != nil {
			return nil, status.Errorf(codes.Internal, "create pod namespaces: %v", err)
		}
		for k, p := range pinned {
			rec.Namespace[string(k)] = p
		}
	}
	if !hostNetwork {
		if err := s.attachNetwork(ctx, rec, undo); err != nil {
			return nil, err
		}
	}

	if userns == nil {
		// pid mode POD: the pod's PID namespace
		if releaseInfra, err = s.startInfra(rec, undo); err != nil {
			return nil, err
		}
	}

	if err := writeSandboxRecord(s.paths.sandboxRecord(id), rec); err != nil {
		return nil, status.Errorf(codes.Internal, "save sandbox: %v", err)
	}
	s.objs.addSandbox(newSandbox(rec))
	undo.disarm()
	releaseInfra()
	s.log.Info("pod sandbox ready", "sandbox", id, "pod", cfg.GetMetadata().GetNamespace()+"/"+cfg.GetMetadata().GetName())
	s.emit(id, id, runtime.ContainerEventType_CONTAINER_CREATED_EVENT)
	s.emit(id, id, runtime.ContainerEventType_CONTAINER_STARTED_EVENT)
	return &runtime.RunPodSandboxResponse{PodSandboxId: id}, nil
}

func validateSandboxConfig(cfg *runtime.PodSandboxConfig) error {
	if cfg == nil {
		return invalid("config", "missing")
	}
	m := cfg.GetMetadata()
	switch {
	case m == nil:
		return invalid("config.metadata", "missing")
	case m.GetName() == "":
		return invalid("config.metadata.name", "empty")
	case m.GetNamespace() == "":
		return invalid("config.metadata.namespace", "empty")
	}
	if strings.ContainsAny(m.GetName(), "/\x00") {
		return invalid("config.metadata.name", "%q contains a slash or NUL", m.GetName())
	}
	for _, s := range cfg.GetDnsConfig().GetServers() {
		if strings.ContainsAny(s, " \t\n") || s == "" {
			return invalid("config.dns_config.servers", "bad server %q", s)
		}
	}
	return nil
}

// writeSandboxFiles writes the pod's /etc/hosts, /etc/resolv.conf and /etc/hostname,
// which its containers bind-mount.
func writeSandboxFiles(dir string, cfg *runtime.PodSandboxConfig, hostname string, hostNetwork bool) error {
	var hosts []byte
	if hostNetwork {
		var err error
		if hosts, err = os.ReadFile("/etc/hosts"); err != nil {
			return err
		}
	} else {
		hosts = []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	}
	resolv, err := resolvConf(cfg.GetDnsConfig())
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"hosts":       hosts,
		"resolv.conf": resolv,
		"hostname":    []byte(hostname + "\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// resolvConf renders the pod's resolv.conf: from DNSConfig when given, else the
// host's (as containerd does).
func resolvConf(dns *runtime.DNSConfig) ([]byte, error) {
	if dns == nil {
		data, err := os.ReadFile("/etc/resolv.conf")
		if os.IsNotExist(err) {
			return nil, nil
		}
		return data, err
	}
	var b strings.Builder
	if len(dns.GetSearches()) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(dns.GetSearches(), " "))
	}
	for _, s := range dns.GetServers() {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(dns.GetOptions()) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(dns.GetOptions(), " "))
	}
	return []byte(b.String()), nil
}
