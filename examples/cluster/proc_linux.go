package main

import "syscall"

// nodeProcAttr: a node gets SIGTERM should this program die without
// stopping it (it then stops its pods and exits).
func nodeProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
