// Package monitor supervises one container from start to exit, in a small process of
// its own (the nodekit-monitor binary) that outlives the CRI shim.
//
// Start (shim side) writes the Config to <dir>/monitor.json and spawns the binary in
// a new session with /dev/null as stdio and a sync pipe as fd 3. The binary calls
// Run, which:
//
//   - becomes a child subreaper, so the container's init process, which
//     `runc run -d` leaves behind, becomes its child;
//   - runs `<runtime> --root <root> [args] run -d --pid-file <pid> --bundle <b> <id>`
//     with pipes as stdio (runc passes them on to the container), or in Terminal
//     mode with a console socket through which runc sends the pty master;
//   - reports {"pid":N} or {"error":"<runtime message>"} on the sync pipe and closes
//     it (after an error the monitor exits);
//   - copies the container's output into the CRI log file (package crilog) and
//     to the clients attached to its attach socket (Config.AttachSocket; see
//     Attach and the protocol in attach.go); with Config.Stdin the container's
//     stdin is a pipe the monitor holds open and clients write to (a terminal's
//     stdin is its pty, whose size clients set);
//   - reaps every child; when the container init exits it drains the output (until
//     EOF, at most 2 s), compares the memory cgroup's oom_kill counter with the one
//     at start, and writes the Exit record atomically to ExitFile: from that moment
//     the container has exited for everyone;
//   - with DeleteOnExit runs `<runtime> delete --force <id>` and exits.
//
// Attach is the client side, for the shim: it connects to the socket (whose path
// may exceed the 108 bytes of a socket address) and copies the container's output
// to the client's writers and the client's input to the container until the
// container exits. A client that stops reading is dropped after 5 s rather than
// stall the container; one that goes away costs the monitor nothing.
//
// The same binary has a reap mode (ReapArg) for terminal execs: runc sends a
// pty master only when detached, so `nodekit-monitor reap` runs `runc exec -d`
// as a child subreaper and exits with the status of the process it left behind.
//
// The monitor runs in its own session and ignores SIGHUP, SIGINT and SIGPIPE, so
// nothing that happens to the shim reaches it. SIGTERM sent to the monitor is
// forwarded to the container init process. SIGUSR1 makes it reopen the log file
// (after the log was rotated by renaming it).
//
// The monitor stays small: stdlib and x/sys only, one P (GOMAXPROCS=1), children
// waited for on SIGCHLD rather than in blocking wait4 calls, and no allocation per
// line of output, 4 KiB copy buffers. With 20 monitors running (each with an
// attach socket and a stdin pipe), each accounts for about 0.84 MiB of
// proportional set size (Pss); TestMonitorMemory keeps it under 0.9 MiB.
package monitor
