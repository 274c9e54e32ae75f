package seccomp

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The RuntimeDefault profile as data: the system calls every container may
// make, grouped by what they are for, then the rules that depend on the
// architecture, on arguments, on the kernel or on capabilities.
//
// Names that do not exist on an architecture (the *32 and *64 variants, the
// socketcall multiplexer...) are ignored by the runtime there.
var (
	allowFiles = []string{
		"access", "creat", "faccessat", "faccessat2", "open", "openat", "openat2",
		"close", "close_range", "read", "readv", "pread64", "preadv", "preadv2",
		"write", "writev", "pwrite64", "pwritev", "pwritev2",
		"lseek", "_llseek", "dup", "dup2", "dup3", "fcntl", "fcntl64", "flock",
		"fsync", "fdatasync", "sync", "syncfs", "sync_file_range",
		"truncate", "truncate64", "ftruncate", "ftruncate64", "fallocate",
		"fadvise64", "fadvise64_64", "readahead",
		"copy_file_range", "sendfile", "sendfile64", "splice", "tee", "vmsplice",
		"name_to_handle_at",
	}
	allowFileMetadata = []string{
		"stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "fstatat64",
		"newfstatat", "statx", "statfs", "statfs64", "fstatfs", "fstatfs64",
		"chmod", "fchmod", "fchmodat", "chown", "chown32", "fchown", "fchown32",
		"fchownat", "lchown", "lchown32", "umask",
		"utime", "utimes", "utimensat", "utimensat_time64", "futimesat",
		"getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr",
		"listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr",
	}
	allowDirectories = []string{
		"chdir", "fchdir", "getcwd", "getdents", "getdents64",
		"mkdir", "mkdirat", "rmdir", "mknod", "mknodat",
		"link", "linkat", "symlink", "symlinkat", "readlink", "readlinkat",
		"unlink", "unlinkat", "rename", "renameat", "renameat2",
	}
	allowWaiting = []string{
		"poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64",
		"epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
		"epoll_wait", "epoll_wait_old", "epoll_pwait", "epoll_pwait2",
		"eventfd", "eventfd2", "signalfd", "signalfd4", "pipe", "pipe2",
		"inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
		"fanotify_mark", "ioctl",
		"io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents",
		"io_pgetevents", "io_pgetevents_time64",
		"futex", "futex_time64", "futex_waitv",
	}
	allowProcesses = []string{
		"fork", "vfork", "execve", "execveat", "exit", "exit_group",
		"wait4", "waitid", "waitpid", "getpid", "getppid", "gettid",
		"getpgid", "setpgid", "getpgrp", "getsid", "setsid",
		"prctl", "seccomp", "capget", "capset", "getrlimit", "setrlimit",
		"ugetrlimit", "prlimit64", "getrusage", "times", "sysinfo", "uname",
		"getcpu", "getrandom", "rseq", "membarrier", "restart_syscall",
		"set_tid_address", "set_robust_list", "get_robust_list",
		"get_thread_area", "set_thread_area",
		"pidfd_open", "pidfd_send_signal", "process_mrelease",
		"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
		"ioprio_get", "ioprio_set", "getpriority", "setpriority",
	}
	allowIdentity = []string{
		"getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32",
		"getegid", "getegid32", "getresuid", "getresuid32", "getresgid", "getresgid32",
		"getgroups", "getgroups32", "setuid", "setuid32", "setgid", "setgid32",
		"setreuid", "setreuid32", "setregid", "setregid32",
		"setresuid", "setresuid32", "setresgid", "setresgid32",
		"setfsuid", "setfsuid32", "setfsgid", "setfsgid32", "setgroups", "setgroups32",
	}
	allowSignals = []string{
		"kill", "tkill", "tgkill", "pause", "sigaltstack", "sigprocmask", "sigreturn",
		"rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
		"rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
		"rt_tgsigqueueinfo", "alarm", "getitimer", "setitimer",
	}
	allowScheduling = []string{
		"sched_yield", "sched_getaffinity", "sched_setaffinity",
		"sched_getattr", "sched_setattr", "sched_getparam", "sched_setparam",
		"sched_getscheduler", "sched_setscheduler",
		"sched_get_priority_max", "sched_get_priority_min",
		"sched_rr_get_interval", "sched_rr_get_interval_time64",
	}
	allowMemory = []string{
		"brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore",
		"msync", "mlock", "mlock2", "mlockall", "munlock", "munlockall",
		"remap_file_pages", "memfd_create", "memfd_secret", "map_shadow_stack",
		"pkey_alloc", "pkey_free", "pkey_mprotect",
	}
	allowTime = []string{
		"time", "gettimeofday", "nanosleep", "adjtimex", "clock_adjtime", "clock_adjtime64",
		"clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
		"clock_nanosleep", "clock_nanosleep_time64",
		"timer_create", "timer_delete", "timer_getoverrun",
		"timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
		"timerfd_create", "timerfd_gettime", "timerfd_gettime64",
		"timerfd_settime", "timerfd_settime64",
	}
	allowIPC = []string{
		"ipc", "msgget", "msgsnd", "msgrcv", "msgctl",
		"semget", "semop", "semtimedop", "semtimedop_time64", "semctl",
		"shmget", "shmat", "shmdt", "shmctl",
		"mq_open", "mq_unlink", "mq_notify", "mq_getsetattr",
		"mq_timedsend", "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64",
	}
	// socket itself is allowed below for every family but AF_VSOCK.
	allowNetwork = []string{
		"socketcall", "socketpair", "bind", "listen", "connect", "accept", "accept4",
		"getsockname", "getpeername", "getsockopt", "setsockopt", "shutdown",
		"send", "sendto", "sendmsg", "sendmmsg",
		"recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64",
	}
)

// personalities are the personality(2) values a container may set: the
// Linux default, UNAME26, ADDR_NO_RANDOMIZE (what setarch -R uses), both, and
// 0xffffffff, which only queries the current one.
var personalities = []uint64{0x0, 0x0008, 0x20000, 0x20008, 0xffffffff}

// capabilityAllows are the system calls a capability makes safe to allow:
// the kernel checks the capability itself.
var capabilityAllows = []struct {
	cap   string
	names []string
}{
	{"CAP_DAC_READ_SEARCH", []string{"open_by_handle_at"}},
	{"CAP_SYS_ADMIN", []string{
		"bpf", "clone", "clone3", "fanotify_init", "lookup_dcookie", "perf_event_open",
		"mount", "umount", "umount2", "mount_setattr", "move_mount", "open_tree",
		"fsopen", "fsconfig", "fsmount", "fspick", "quotactl", "quotactl_fd",
		"setns", "unshare", "sethostname", "setdomainname", "syslog",
	}},
	{"CAP_SYS_BOOT", []string{"reboot"}},
	{"CAP_SYS_CHROOT", []string{"chroot"}},
	{"CAP_SYS_MODULE", []string{"init_module", "finit_module", "delete_module"}},
	{"CAP_SYS_PACCT", []string{"acct"}},
	{"CAP_SYS_PTRACE", []string{"ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "kcmp", "pidfd_getfd"}},
	{"CAP_SYS_RAWIO", []string{"iopl", "ioperm"}},
	{"CAP_SYS_TIME", []string{"settimeofday", "stime", "clock_settime", "clock_settime64"}},
	{"CAP_SYS_TTY_CONFIG", []string{"vhangup"}},
	{"CAP_SYS_NICE", []string{"get_mempolicy", "set_mempolicy", "set_mempolicy_home_node", "mbind"}},
	{"CAP_SYSLOG", []string{"syslog"}},
	{"CAP_BPF", []string{"bpf"}},
	{"CAP_PERFMON", []string{"perf_event_open"}},
}

// archAllows are the architecture-specific system calls every container may
// make, by GOARCH ("x32" and "x86" name the other x86 ABIs).
var archAllows = []struct {
	arches []string
	names  []string
}{
	{[]string{"amd64", "x32"}, []string{"arch_prctl"}},
	{[]string{"amd64", "x32", "x86"}, []string{"modify_ldt"}},
	{[]string{"arm", "arm64"}, []string{"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"}},
	{[]string{"ppc64le"}, []string{"sync_file_range2", "swapcontext"}},
	{[]string{"s390", "s390x"}, []string{"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"}},
	{[]string{"riscv64"}, []string{"riscv_flush_icache"}},
}

// Linux ABI values the profile uses. They are spelt out here rather than
// taken from x/sys/unix so that the package builds, and makes the same
// profile, on any OS.
const (
	errnoEPERM  = 1
	errnoENOSYS = 38
	afVSOCK     = 40

	// namespaceCloneFlags are the clone(2) flags that create namespaces
	// (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET):
	// without CAP_SYS_ADMIN clone is allowed only with none of them.
	namespaceCloneFlags = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 |
		0x10000000 | 0x20000000 | 0x40000000
)

// DefaultProfile returns nodekit's RuntimeDefault profile, a new copy each
// time. Resolve it for a container (or call Default) to get its filter.
func DefaultProfile() *Profile {
	eperm, enosys := uint(errnoEPERM), uint(errnoENOSYS)
	var allowed []string
	for _, group := range [][]string{
		allowFiles, allowFileMetadata, allowDirectories, allowWaiting, allowProcesses,
		allowIdentity, allowSignals, allowScheduling, allowMemory, allowTime, allowIPC, allowNetwork,
	} {
		allowed = append(allowed, group...)
	}
	p := &Profile{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		ArchMap:         archMapCopy(defaultArchMap),
		Syscalls: []Syscall{
			{Names: allowed, Action: specs.ActAllow},
			// Since 4.8 seccomp filters are re-checked after a ptrace stop, so
			// tracing can no longer be used to bypass them.
			{Names: []string{"ptrace", "process_vm_readv", "process_vm_writev"}, Action: specs.ActAllow,
				Includes: &Filter{MinKernel: "4.8"}},
			{Names: []string{"socket"}, Action: specs.ActAllow, Comment: "any address family but AF_VSOCK",
				Args: []Arg{{Index: 0, Value: afVSOCK, Op: specs.OpNotEqual}}},
		},
	}
	for _, v := range personalities {
		p.Syscalls = append(p.Syscalls, Syscall{Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []Arg{{Index: 0, Value: v, Op: specs.OpEqualTo}}})
	}
	for _, a := range archAllows {
		p.Syscalls = append(p.Syscalls, Syscall{Names: slices.Clone(a.names), Action: specs.ActAllow, Includes: &Filter{Arches: slices.Clone(a.arches)}})
	}
	for _, c := range capabilityAllows {
		p.Syscalls = append(p.Syscalls, Syscall{Names: slices.Clone(c.names), Action: specs.ActAllow, Includes: &Filter{Caps: []string{c.cap}}})
	}
	noAdmin := []string{"CAP_SYS_ADMIN"}
	p.Syscalls = append(p.Syscalls,
		// Threads and processes, but no new namespaces. The flags are the
		// first argument, except on s390 where clone's first two are swapped.
		Syscall{Names: []string{"clone"}, Action: specs.ActAllow,
			Args:     []Arg{{Index: 0, Value: namespaceCloneFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}},
			Excludes: &Filter{Caps: noAdmin, Arches: []string{"s390", "s390x"}}},
		Syscall{Names: []string{"clone"}, Action: specs.ActAllow, Comment: "s390 passes the flags second",
			Args:     []Arg{{Index: 1, Value: namespaceCloneFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}},
			Includes: &Filter{Arches: []string{"s390", "s390x"}}, Excludes: &Filter{Caps: noAdmin}},
		// clone3 passes its flags in memory, where a filter cannot look: make
		// it look unimplemented so the C library falls back to clone.
		Syscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys, Excludes: &Filter{Caps: noAdmin}},
	)
	return p
}

func archMapCopy(m []ArchMap) []ArchMap {
	out := make([]ArchMap, len(m))
	for i, a := range m {
		out[i] = ArchMap{Arch: a.Arch, SubArches: slices.Clone(a.SubArches)}
	}
	return out
}
