package controlplane

import "syscall"

// sysProcAttr makes a component die with the test process (SIGKILL when the
// thread that started it exits), so a test killed by its timeout leaves
// nothing running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
