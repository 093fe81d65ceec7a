package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

var workerBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// WorkerBinary builds ./worker once per test binary and returns its path.
func WorkerBinary() (string, error) {
	workerBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "usersync-chaos-worker-")
		if err != nil {
			workerBuild.err = err
			return
		}
		workerBuild.dir = dir
		bin := filepath.Join(dir, "worker")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/usersync/usersync/worker").CombinedOutput()
		if err != nil {
			workerBuild.err = fmt.Errorf("go build ./worker: %w\n%s", err, out)
			return
		}
		workerBuild.bin = bin
	})
	return workerBuild.bin, workerBuild.err
}

// RemoveWorkerBinary deletes what WorkerBinary built (TestMain calls it).
func RemoveWorkerBinary() {
	if workerBuild.dir != "" {
		_ = os.RemoveAll(workerBuild.dir)
	}
}

// Worker is the worker command as its own process, configured by environment variables as
// in production, so that it can be killed (SIGKILL: no clean shutdown) and started again.
type Worker struct {
	Bin     string
	Env     []string // KEY=VALUE
	LogFile string

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	Kills int
}

// Start starts the process.
func (w *Worker) Start() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd != nil {
		return errors.New("worker: already running")
	}
	logf, err := os.OpenFile(w.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(w.Bin)
	cmd.Env = append(os.Environ(), w.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Never outlive the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	w.cmd, w.done = cmd, done
	return nil
}

// Kill sends SIGKILL and waits for the process to be gone.
func (w *Worker) Kill() {
	w.stop(syscall.SIGKILL, 0)
	w.mu.Lock()
	w.Kills++
	w.mu.Unlock()
}

// Stop asks the worker to stop (SIGTERM), killing it after 10 s.
func (w *Worker) Stop() { w.stop(syscall.SIGTERM, 10*time.Second) }

func (w *Worker) stop(sig syscall.Signal, grace time.Duration) {
	w.mu.Lock()
	cmd, done := w.cmd, w.done
	w.cmd, w.done = nil, nil
	w.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	_ = cmd.Process.Kill()
	<-done
}

// Running reports whether the process runs.
func (w *Worker) Running() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done == nil {
		return false
	}
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

// LogCount counts the lines of the worker's log holding every one of parts.
func (w *Worker) LogCount(parts ...string) int {
	b, err := os.ReadFile(w.LogFile)
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}
