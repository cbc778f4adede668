package pgtest

import (
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

var shared *Cluster

func TestMain(m *testing.M) { Main(m, &shared) }

func TestClusterIsLogicalAndIsolated(t *testing.T) {
	c := Require(t, shared)
	t.Parallel()
	url := c.NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var level string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		t.Fatalf("wal_level = %q, want logical", level)
	}
	var listen string
	if err := conn.QueryRow(ctx, "SHOW listen_addresses").Scan(&listen); err != nil {
		t.Fatal(err)
	}
	if listen != "127.0.0.1" {
		t.Fatalf("listen_addresses = %q, want 127.0.0.1", listen)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_create_logical_replication_slot('pgtest_slot', 'pgoutput')"); err != nil {
		t.Fatal(err)
	}
}

func TestStartStopRemovesDir(t *testing.T) {
	if shared == nil {
		t.Skip("PostgreSQL is not installed")
	}
	t.Parallel()
	c, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(); err != nil {
		c.Stop()
		t.Fatal(err)
	}
	c.Stop()
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Fatalf("cluster dir %s still exists after Stop (err=%v)", c.Dir, err)
	}
	if err := c.cmd.Process.Signal(syscall.Signal(0)); err == nil {
		t.Fatal("postgres still running after Stop")
	}
}
