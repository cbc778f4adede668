package bus_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/walsearch/walsearch/bus"
)

// TestEmbeddedBusIsReachableLocallyWithItsToken: a running embedded bus
// writes where other processes on the machine reach it — a loopback
// address and a token, in a file only its user can read — and takes no
// client without the token. The file goes when the bus closes.
func TestEmbeddedBusIsReachableLocallyWithItsToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := bus.DefaultConfig()
	cfg.DataDir = dir
	b, err := bus.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	fi, err := os.Stat(filepath.Join(dir, bus.LocalAccessFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", bus.LocalAccessFile, fi.Mode().Perm())
	}
	a, err := bus.ReadLocalAccess(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Token == "" || a.PID != os.Getpid() {
		t.Errorf("access = %+v, want a token and this process's pid", a)
	}
	host, _, err := net.SplitHostPort(a.URL[len("nats://"):])
	if err != nil || !net.ParseIP(host).IsLoopback() {
		t.Errorf("access url %q: want a loopback address (%v)", a.URL, err)
	}

	if nc, err := nats.Connect(a.URL); err == nil {
		nc.Close()
		t.Error("a client without the token was let in")
	}
	// With the token, another client uses the bus: it reads the state store.
	other := bus.DefaultConfig()
	other.URL, other.Token = a.URL, a.Token
	ob, err := bus.Open(context.Background(), other)
	if err != nil {
		t.Fatalf("open with the local access: %v", err)
	}
	if err := ob.State().Put(context.Background(), "probe", []byte("1")); err != nil {
		t.Fatal(err)
	}
	ob.Close()

	b.Close()
	if _, err := os.Stat(filepath.Join(dir, bus.LocalAccessFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left after Close (stat: %v)", bus.LocalAccessFile, err)
	}
}
