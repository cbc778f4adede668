// Package e2e runs the walsearch binary end to end, for tests and
// benchmarks: against a real PostgreSQL (internal/pgtest), with its search
// engine — the embedded engine — served over HTTP on 127.0.0.1 behind the
// fault-injection server (internal/faultes) in the calling process, so that a
// test can make the engine misbehave and read what it holds. It compares an
// index with its table document by document, and reads a process's memory
// from /proc.
//
// It is test support only: nothing in the product imports it, and it never
// touches a process, server or database it did not start.
package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a running walsearch process.
type Process struct {
	tb   testing.TB
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
	out  *SyncBuffer
}

// SyncBuffer is a buffer safe to write from one goroutine (a child
// process's output copier, a server's logger) while another reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *SyncBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is what was written so far.
func (l *SyncBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start starts cmd (its output is kept for failure messages) and makes sure
// it is killed at the end of the test and with the test process.
func Start(tb testing.TB, cmd *exec.Cmd) *Process {
	tb.Helper()
	return StartPiped(tb, cmd, nil)
}

// StartPiped is Start with the standard output written to stdout instead
// of kept (the standard error is kept); nil keeps both, as Start does.
func StartPiped(tb testing.TB, cmd *exec.Cmd, stdout io.Writer) *Process {
	tb.Helper()
	p := &Process{tb: tb, cmd: cmd, done: make(chan struct{}), out: &SyncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if tb.Failed() {
			tb.Logf("output of %s (pid %d):\n%s", cmd.Path, cmd.Process.Pid, tail(p.out.String(), 60000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Output is what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() {
	p.tb.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits for a clean exit; a process still running
// after 60s is asked for a goroutine dump (in the output) and the test fails.
func (p *Process) Stop() error {
	p.tb.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
		p.tb.Fatalf("pid %d did not exit within 60s of SIGTERM (goroutine dump in its output)", p.PID())
		return nil
	}
}

// PeakRSS is the process's peak resident set size in bytes (VmHWM in
// /proc/<pid>/status): since it started, or since the last ResetPeakRSS.
func (p *Process) PeakRSS() (uint64, error) { return procStatusBytes(p.PID(), "VmHWM:") }

// RSS is the process's resident set size now, in bytes (VmRSS).
func (p *Process) RSS() (uint64, error) { return procStatusBytes(p.PID(), "VmRSS:") }

// ResetPeakRSS restarts the peak measured by PeakRSS from the current RSS
// (Linux clear_refs, value 5).
func (p *Process) ResetPeakRSS() error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.PID()), []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak rss of %d: %w", p.PID(), err)
	}
	return nil
}

func procStatusBytes(pid int, field string) (uint64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read memory of %d: %w", pid, err)
	}
	for line := range strings.Lines(string(raw)) {
		rest, ok := strings.CutPrefix(line, field)
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s of %d: %w", field, pid, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// CPUTime is the processor time the process used so far, user and system,
// all threads.
func (p *Process) CPUTime() (time.Duration, error) { return CPUTime(p.PID()) }

// clockTick is the unit of the times in /proc/<pid>/stat (USER_HZ, 100 on
// every Linux platform Go supports).
const clockTick = 10 * time.Millisecond

// CPUTime is the processor time process pid used so far, user and system
// (utime + stime in /proc/<pid>/stat), with a resolution of 10 ms.
func CPUTime(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu time of %d: %w", pid, err)
	}
	// The command name, in parentheses, may hold spaces: the fields are
	// counted from its closing parenthesis, which is field 2.
	end := bytes.LastIndexByte(raw, ')')
	if end < 0 {
		return 0, fmt.Errorf("read cpu time of %d: no command name in /proc/%d/stat", pid, pid)
	}
	f := strings.Fields(string(raw[end+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("read cpu time of %d: %d fields in /proc/%d/stat", pid, len(f)+2, pid)
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read cpu time of %d: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}
