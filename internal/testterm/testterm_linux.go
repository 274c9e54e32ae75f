package testterm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Timeout bounds how long the command may run.
const Timeout = 2 * time.Minute

// Run runs cmd with a new 100x30 terminal as its stdin, stdout and stderr,
// types input into it (if any) once the command started, and returns what
// the terminal showed and the command's exit code. The test fails if the
// command does not end within Timeout.
func Run(t testing.TB, cmd *exec.Cmd, input string) (string, int) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	rc, err := master.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n uint32
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		if ierr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ierr != nil {
			return
		}
		if ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: 30, Col: 100}); ierr != nil {
			return
		}
		n, ierr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN)
	}); err != nil {
		t.Fatal(err)
	}
	if ierr != nil {
		t.Fatal(ierr)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	err = cmd.Start()
	slave.Close()
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(master) // EIO once the command is gone
		out <- data
	}()
	if input != "" {
		if _, err := master.Write([]byte(input)); err != nil {
			t.Errorf("typing into the terminal: %v", err)
		}
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	select {
	case err = <-waitErr:
	case <-timer.C:
		cmd.Process.Kill()
		t.Fatalf("%s on a terminal did not finish within %v (killed: %v)", cmd.Path, Timeout, <-waitErr)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	master.SetReadDeadline(time.Now().Add(5 * time.Second))
	return string(<-out), code
}
