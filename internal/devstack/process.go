package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Daemon is a background process known by its pid file, so that a later
// invocation (devstack down, status) can find and stop it.
type Daemon struct {
	Name    string   // used in messages, e.g. "temporal"
	Path    string   // executable
	Args    []string // arguments, without the executable
	Env     []string // extra environment (KEY=VALUE), added to this process's
	Dir     string   // working directory; empty: current
	LogFile string   // stdout and stderr are appended here
	PIDFile string
	// AsUser runs the process as this user when we are root (postgres
	// refuses to run as root). Ignored when not root.
	AsUser string
	// Attached ties the process to this one: the kernel sends it StopSignal
	// when we exit, even on a crash. Tests use it so that no server
	// outlives `go test`. Detached processes get their own session.
	Attached bool
	// StopSignal asks the process to shut down; default SIGTERM.
	StopSignal syscall.Signal

	exited chan struct{} // closed when the process we started exits
}

func (d *Daemon) stopSignal() syscall.Signal {
	if d.StopSignal == 0 {
		return syscall.SIGTERM
	}
	return d.StopSignal
}

// Start launches the process and writes its pid file. It does not wait for
// readiness; see WaitReady.
func (d *Daemon) Start() error {
	if pid, ok := d.PID(); ok {
		return fmt.Errorf("%s: already running (pid %d, pid file %s)", d.Name, pid, d.PIDFile)
	}
	for _, f := range []string{d.LogFile, d.PIDFile} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return fmt.Errorf("%s: %w", d.Name, err)
		}
	}
	logf, err := os.OpenFile(d.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log file: %w", d.Name, err)
	}
	defer logf.Close() // the child keeps its own descriptor

	cmd := exec.Command(d.Path, d.Args...)
	cmd.Dir = d.Dir
	cmd.Env = append(os.Environ(), d.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf // stdin stays /dev/null
	attr := &syscall.SysProcAttr{}
	if d.Attached {
		attr.Pdeathsig = d.stopSignal()
	} else {
		attr.Setsid = true // survives our exit and the terminal's Ctrl-C
	}
	if d.AsUser != "" && os.Geteuid() == 0 {
		cred, err := credentialOf(d.AsUser)
		if err != nil {
			return fmt.Errorf("%s: %w", d.Name, err)
		}
		attr.Credential = cred
	}
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start %s: %w", d.Name, d.Path, err)
	}
	d.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(d.exited) }() // reap: no zombie while we live
	if err := os.WriteFile(d.PIDFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("%s: pid file: %w", d.Name, err)
	}
	return nil
}

// WaitReady calls ready until it succeeds. It fails at once, with the end of
// the log, if the process exits first.
func (d *Daemon) WaitReady(ctx context.Context, ready func(context.Context) error) error {
	err := poll(ctx, func(ctx context.Context) error {
		if d.exited != nil {
			select {
			case <-d.exited:
				return errExited
			default:
			}
		}
		return ready(ctx)
	})
	if errors.Is(err, errExited) {
		return fmt.Errorf("%s exited during startup; end of %s:\n%s", d.Name, d.LogFile, LogTail(d.LogFile, 20))
	}
	if err != nil {
		return fmt.Errorf("%s not ready: %w; end of %s:\n%s", d.Name, err, d.LogFile, LogTail(d.LogFile, 20))
	}
	return nil
}

var errExited = fmt.Errorf("process exited: %w", errGiveUp)

// PID returns the pid from the pid file when that process is alive.
func (d *Daemon) PID() (int, bool) { return PIDFileAlive(d.PIDFile) }

// Running reports whether the process of the pid file is alive.
func (d *Daemon) Running() bool { _, ok := d.PID(); return ok }

// Stop sends StopSignal, waits up to grace for the process to exit, then
// kills it. Stopping a process that does not run is not an error.
func (d *Daemon) Stop(grace time.Duration) error {
	pid, ok := d.PID()
	if !ok {
		_ = os.Remove(d.PIDFile)
		return nil
	}
	if err := StopPID(pid, d.stopSignal(), grace); err != nil {
		return fmt.Errorf("%s: %w", d.Name, err)
	}
	_ = os.Remove(d.PIDFile)
	return nil
}

// StopPID signals pid and waits up to grace for it to go, then SIGKILLs it.
func StopPID(pid int, sig syscall.Signal, grace time.Duration) error {
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !pidAlive(pid) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for range 100 {
		if !pidAlive(pid) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("pid %d survived SIGKILL", pid)
}

// PIDFileAlive reads a pid file whose first line is a pid (ours, and
// PostgreSQL's postmaster.pid) and reports whether that process is alive.
func PIDFileAlive(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, pidAlive(pid)
}

// pidAlive is true for a live process; zombies (exited, not yet reaped) count
// as gone.
func pidAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !os.IsNotExist(err)
	}
	// Format: "pid (comm) S ..."; comm may contain spaces and parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

func credentialOf(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("running as root needs the system user %q: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// chownTo gives path to user name when we are root, so a daemon run AsUser
// can write there.
func chownTo(path, name string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	c, err := credentialOf(name)
	if err != nil {
		return err
	}
	return os.Chown(path, int(c.Uid), int(c.Gid))
}

// LogTail returns the last n lines of a log file, for error messages.
func LogTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
