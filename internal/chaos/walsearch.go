package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// supervisor keeps one `walsearch run` process running, as a service
// manager would: it restarts the process when it exits on its own (after
// restartBackoff) and when the harness kills it (at once). Every process
// appends its output to one log file.
type supervisor struct {
	bin, cfg string
	env      []string
	logPath  string

	kill chan chan struct{} // a kill request; closed once the process is gone
	stop chan chan error    // a stop request; answered with the exit error

	mu        sync.Mutex
	starts    int
	selfExits []exit
	running   bool
	since     time.Time // when the running process started
}

// exit is a process that ended without being killed.
type exit struct {
	at     time.Time
	err    string
	reason string // the last line it printed
}

const restartBackoff = time.Second

func newSupervisor(bin, cfg, logPath string, env []string) *supervisor {
	return &supervisor{bin: bin, cfg: cfg, env: env, logPath: logPath,
		kill: make(chan chan struct{}), stop: make(chan chan error)}
}

// run supervises until a stop request; call it in its own goroutine.
func (s *supervisor) run() {
	for {
		cmd, done, err := s.start()
		if err != nil {
			// The binary could not even be started: retry like an exit.
			s.recordExit(err, "")
			if s.backoff() {
				return
			}
			continue
		}
		select {
		case err := <-done:
			s.recordExit(err, lastLine(s.logPath))
			if s.backoff() {
				return
			}
		case ack := <-s.kill:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			s.setRunning(false)
			close(ack)
		case reply := <-s.stop:
			reply <- s.terminate(cmd, done)
			return
		}
	}
}

// backoff waits before a restart; a kill request meanwhile is answered at
// once (nothing runs), and a stop request ends the supervision (true).
func (s *supervisor) backoff() bool {
	t := time.NewTimer(restartBackoff)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return false
		case ack := <-s.kill:
			close(ack)
		case reply := <-s.stop:
			reply <- nil
			return true
		}
	}
}

func (s *supervisor) start() (*exec.Cmd, chan error, error) {
	s.mu.Lock()
	s.starts++
	n := s.starts
	s.mu.Unlock()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open the walsearch log: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== chaos: start %d at %s ===\n", n, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(s.bin, "run", "--config", s.cfg)
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start walsearch: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	s.mu.Lock()
	s.running, s.since = true, time.Now()
	s.mu.Unlock()
	return cmd, done, nil
}

func (s *supervisor) setRunning(r bool) {
	s.mu.Lock()
	s.running = r
	s.mu.Unlock()
}

func (s *supervisor) recordExit(err error, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = false
	msg := "exit status 0"
	if err != nil {
		msg = err.Error()
	}
	s.selfExits = append(s.selfExits, exit{at: time.Now(), err: msg, reason: reason})
}

// terminate stops the process with SIGTERM, as an operator would, and
// returns how it exited; one still running after a minute is asked for a
// goroutine dump (in the log) and killed.
func (s *supervisor) terminate(cmd *exec.Cmd, done chan error) error {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		s.setRunning(false)
		return err
	case <-time.After(time.Minute):
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
		}
		s.setRunning(false)
		return errors.New("walsearch did not exit within a minute of SIGTERM (goroutine dump in its log)")
	}
}

// Kill sends SIGKILL to the running process and returns once it is gone;
// the supervisor starts the next one at once.
func (s *supervisor) Kill() {
	ack := make(chan struct{})
	s.kill <- ack
	<-ack
}

// Stop ends the supervision with a clean shutdown of the running process.
func (s *supervisor) Stop() error {
	reply := make(chan error)
	s.stop <- reply
	return <-reply
}

// Uptime is how long the running process has run (0 when none runs).
func (s *supervisor) Uptime() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return 0
	}
	return time.Since(s.since)
}

// Exits returns the processes that ended on their own.
func (s *supervisor) Exits() []exit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]exit(nil), s.selfExits...)
}

// Starts counts the processes started.
func (s *supervisor) Starts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts
}

// lastLine is the last non-empty line of the file at path.
func lastLine(path string) string {
	raw, _ := os.ReadFile(path)
	raw = bytes.TrimRight(raw, "\n")
	if i := bytes.LastIndexByte(raw, '\n'); i >= 0 {
		raw = raw[i+1:]
	}
	return strings.TrimSpace(string(raw))
}

// logTail is the last n lines of the file at path.
func logTail(path string, n int) string {
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// crashes finds what must never be in walsearch's output, whatever the
// harness did to it: a panic, a data race, a fatal runtime error.
func crashes(path string) []string {
	raw, _ := os.ReadFile(path)
	var out []string
	for _, marker := range []string{"panic:", "WARNING: DATA RACE", "fatal error:"} {
		if i := bytes.Index(raw, []byte(marker)); i >= 0 {
			end := min(len(raw), i+4000)
			out = append(out, string(raw[i:end]))
		}
	}
	return out
}
