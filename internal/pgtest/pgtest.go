// Package pgtest starts throwaway PostgreSQL clusters for integration tests.
//
// A cluster is initialised in a temporary directory, listens on 127.0.0.1 only
// (no Unix socket), runs with wal_level=logical, and is stopped and removed by
// Stop. When the test process runs as root, initdb and postgres run as the
// "postgres" system user, since PostgreSQL refuses to run as root. The server
// is started with a parent-death signal so that it never outlives a test
// binary that was killed.
//
// It must never touch a cluster it did not start.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequireEnv names the environment variable that turns a missing PostgreSQL
// installation from a skip into a failure (CI sets it).
const RequireEnv = "WALSEARCH_REQUIRE_POSTGRES"

// Cluster is one running throwaway PostgreSQL server.
type Cluster struct {
	Port    int
	Dir     string
	BinDir  string
	cmd     *exec.Cmd
	cred    *syscall.Credential
	done    chan struct{}
	stopped sync.Once
	dbSeq   atomic.Int64
	logPath string
}

// ErrNotInstalled is returned when no PostgreSQL server binaries are found.
var ErrNotInstalled = errors.New("postgresql server binaries (initdb, postgres) not found: install the postgresql package")

// FindBinDir returns the directory holding initdb and postgres.
func FindBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), nil
	}
	return "", ErrNotInstalled
}

// Start initialises and starts a cluster. Callers must call Stop.
func Start() (*Cluster, error) {
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{BinDir: bin, done: make(chan struct{})}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres system user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp("", "walsearch-pg-")
	if err != nil {
		return nil, fmt.Errorf("create cluster dir: %w", err)
	}
	c.Dir = dir
	if c.cred != nil {
		if err := os.Chown(dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("chown cluster dir: %w", err)
		}
	}
	if err := c.initdb(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// A free port is picked by the kernel, then released for postgres; another
	// process may take it in between, so a failed start is retried.
	for attempt := 0; ; attempt++ {
		err = c.start()
		if err == nil {
			return c, nil
		}
		if attempt == 4 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

func (c *Cluster) dataDir() string { return filepath.Join(c.Dir, "data") }

func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.BinDir, name), args...)
	cmd.Dir = c.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGQUIT}
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "LANG=C.UTF-8", "TZ=UTC")
	return cmd
}

func (c *Cluster) initdb() error {
	cmd := c.command("initdb", "-D", c.dataDir(), "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--no-sync", "--locale=C.UTF-8")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	conf := `
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
wal_level = logical
max_replication_slots = 64
max_wal_senders = 64
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
log_min_messages = warning
logical_decoding_work_mem = 64MB
`
	f, err := os.OpenFile(filepath.Join(c.dataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("configure cluster: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(conf); err != nil {
		return fmt.Errorf("configure cluster: %w", err)
	}
	hba := "host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"
	if err := os.WriteFile(filepath.Join(c.dataDir(), "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return fmt.Errorf("configure cluster: %w", err)
	}
	if c.cred != nil {
		_ = os.Chown(filepath.Join(c.dataDir(), "pg_hba.conf"), int(c.cred.Uid), int(c.cred.Gid))
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start runs postgres in the foreground as a child process, so that it is
// stopped by PID and dies with the test binary.
func (c *Cluster) start() error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("pick a port: %w", err)
	}
	c.Port = port
	c.logPath = filepath.Join(c.Dir, "postgres.log")
	logf, err := os.Create(c.logPath)
	if err != nil {
		return fmt.Errorf("create server log: %w", err)
	}
	defer logf.Close()
	cmd := c.command("postgres", "-D", c.dataDir(), "-p", strconv.Itoa(port))
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			c.cmd, c.done = cmd, done
			return nil
		}
		select {
		case <-done:
			log, _ := os.ReadFile(c.logPath)
			return fmt.Errorf("postgres exited during start: %s", bytes.TrimSpace(log))
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGQUIT)
			<-done
			return fmt.Errorf("postgres did not accept connections within 60s: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// URL returns a connection string for database db as the superuser.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// Restart stops the server (fast shutdown) and starts it again on the same port.
func (c *Cluster) Restart() error {
	port := c.Port
	if err := c.stopServer(syscall.SIGINT); err != nil {
		return err
	}
	logf, err := os.OpenFile(c.logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	defer logf.Close()
	cmd := c.command("postgres", "-D", c.dataDir(), "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("restart postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c.cmd, c.done = cmd, done
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("postgres exited during restart")
		case <-ctx.Done():
			return fmt.Errorf("postgres did not come back within 60s: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) stopServer(sig syscall.Signal) error {
	if c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Signal(syscall.SIGQUIT)
		<-c.done
		return nil
	}
}

// Stop shuts the server down and removes its directory. It is idempotent.
func (c *Cluster) Stop() {
	c.stopped.Do(func() {
		_ = c.stopServer(syscall.SIGQUIT)
		os.RemoveAll(c.Dir)
	})
}

// Log returns the server log, for failure messages.
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(c.logPath)
	return string(b)
}

// NewDatabase creates a fresh database and returns its connection URL. The
// database and every replication slot in it are dropped at test cleanup.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%s", c.dbSeq.Add(1), sanitize(t.Name()))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatalf("connect to test cluster: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() { c.dropDatabase(t, name) })
	return c.URL(name)
}

func (c *Cluster) dropDatabase(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Errorf("drop database %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	// Replication connections of a stopped pipeline may linger briefly.
	_, _ = conn.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, name)
	_, _ = conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, name)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Errorf("drop database %s: %v", name, err)
	}
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return b.String()
}

// Main is for TestMain: it starts one cluster for the package, runs the tests
// and stops the cluster before exiting (a deferred Stop would never run past
// os.Exit). When PostgreSQL is not installed, tests that call Shared skip,
// unless RequireEnv is set, in which case the package fails.
func Main(m *testing.M, shared **Cluster) {
	c, err := Start()
	switch {
	case err == nil:
		*shared = c
	case errors.Is(err, ErrNotInstalled) && os.Getenv(RequireEnv) == "":
		fmt.Fprintln(os.Stderr, "pgtest:", err, "- integration tests will be skipped")
	default:
		fmt.Fprintln(os.Stderr, "pgtest: start cluster:", err)
		os.Exit(1)
	}
	code := m.Run()
	if c != nil {
		c.Stop()
	}
	os.Exit(code)
}

// Require returns c, or skips the test when no cluster could be started.
func Require(t testing.TB, c *Cluster) *Cluster {
	t.Helper()
	if c == nil {
		t.Skip("PostgreSQL is not installed: " + ErrNotInstalled.Error())
	}
	return c
}
