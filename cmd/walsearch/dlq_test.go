package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
)

// runCLI runs walsearch in-process and returns its standard output.
func runCLI(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errOut, Env: env}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := m.Run(ctx, args)
	return out.String(), err
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runCLI(t, nil, args...)
	if err != nil {
		t.Fatalf("walsearch %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestDLQCommands(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	b := bustest.OpenDir(t, dataDir)
	ctx := context.Background()
	seed := []struct {
		stage string
		ch    bus.Change
	}{
		{"transform", bus.Change{V: 1, Op: bus.OpInsert, Schema: "public", Table: "users", LSN: 10, Key: []bus.Column{{Name: "id", Value: 1}}, Row: map[string]any{"id": 1}}},
		{"sink", bus.Change{V: 1, Op: bus.OpInsert, Schema: "public", Table: "items", LSN: 11, Key: []bus.Column{{Name: "id", Value: 2}}, Row: map[string]any{"id": 2}}},
		{"transform", bus.Change{V: 1, Op: bus.OpUpdate, Schema: "shop", Table: "orders", LSN: 12, Key: []bus.Column{{Name: "id", Value: 3}}, Row: map[string]any{"id": 3}}},
	}
	for i, s := range seed {
		ev, _ := json.Marshal(s.ch)
		dl := &bus.DeadLetter{Stage: s.stage, Error: "script for " + s.ch.Table + ": Error: boom " + string(rune('a'+i)),
			Stack: "Error: boom\n\tat transform (scripts/x/transform.js:3:9(4))\n", Subject: bus.ChangeSubject(s.ch.Schema, s.ch.Table),
			MsgID: s.ch.MsgID(), Event: ev}
		if err := b.DeadLetter(ctx, dl); err != nil {
			t.Fatal(err)
		}
	}
	b.Close() // the commands open the store themselves
	dd := "--data-dir=" + dataDir

	out := mustCLI(t, "dlq", "list", dd)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "SEQ") || !strings.Contains(lines[1], "walsearch.change.public.users") ||
		!strings.Contains(lines[1], "boom a") || !strings.HasPrefix(lines[3], "3 ") {
		t.Fatalf("dlq list:\n%s", out)
	}
	if out := mustCLI(t, "dlq", "list", dd, "--stage", "sink"); strings.Count(out, "\n") != 2 || !strings.Contains(out, "boom b") {
		t.Fatalf("dlq list --stage sink:\n%s", out)
	}
	out = mustCLI(t, "dlq", "show", "1", dd)
	for _, want := range []string{"stage:    transform", "transform.js:3:9", `"table": "users"`, "msg id:   c:0/A:0"} {
		if !strings.Contains(out, want) {
			t.Errorf("dlq show lacks %q:\n%s", want, out)
		}
	}
	if _, err := runCLI(t, nil, "dlq", "show", "99", dd); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("show of a missing entry: %v", err)
	}
	if out := mustCLI(t, "dlq", "replay", "1", dd); !strings.Contains(out, "replayed 1 to walsearch.change.public.users") {
		t.Fatalf("dlq replay 1:\n%s", out)
	}
	if _, err := runCLI(t, nil, "dlq", "purge", dd); err == nil {
		t.Error("purge without --all or --stage must refuse")
	}
	if out := mustCLI(t, "dlq", "purge", "--stage", "sink", dd); !strings.Contains(out, "1 purged") {
		t.Fatalf("dlq purge --stage sink:\n%s", out)
	}
	out = mustCLI(t, "dlq", "list", dd)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "3 ") {
		t.Fatalf("after replay and purge:\n%s", out)
	}
	if out := mustCLI(t, "dlq", "replay", "--all", dd); !strings.Contains(out, "1 replayed") {
		t.Fatalf("dlq replay --all:\n%s", out)
	}

	b = bustest.OpenDir(t, dataDir)
	if n, err := b.DLQCount(ctx); err != nil || n != 0 {
		t.Fatalf("dead letters left: %d (%v)", n, err)
	}
	got := b.ReadChanges(2, 20*time.Second)
	if len(got) != 2 || got[0].Table != "users" || got[0].LSN != 10 || got[1].Table != "orders" || got[1].LSN != 12 {
		t.Fatalf("replayed changes: %+v", got)
	}
	b.Close()
	mustCLI(t, "dlq", "purge", "--all", dd)
}

func TestDLQRefusesAStoreInUse(t *testing.T) {
	t.Parallel()
	// walsearch run must start: a PostgreSQL it cannot reach stops it.
	dbURL, _ := testDB(t, `SELECT 1`)
	dataDir := t.TempDir()
	natsAddr := freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "walsearch.yaml")
	yaml := "data_dir: " + dataDir + "\npostgres:\n  url: " + dbURL + "\n  slot: " + slotName(dbURL) + "\n  publication: " + slotName(dbURL) + "\nnats:\n  listen: " + natsAddr + "\napi:\n  listen: " + freeAddr(t) + "\nscripts_dir: " + t.TempDir() + "\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startWalsearch(t, "run", "--config", cfgPath)
	store := filepath.Join(dataDir, "nats")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, held := storeHolder(store); held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("walsearch run never opened its store")
		}
		time.Sleep(20 * time.Millisecond)
	}

	_, err := runCLI(t, nil, "dlq", "list", "--data-dir", dataDir)
	var inUse *storeInUseError
	if !errors.As(err, &inUse) || inUse.pid != p.cmd.Process.Pid {
		t.Fatalf("err = %v, want the store reported in use by %d", err, p.cmd.Process.Pid)
	}
	for _, want := range []string{store, "nats.listen", "--nats-url"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	// The advice works: through the listening port the command reaches the bus.
	out, err := runCLI(t, nil, "dlq", "list", "--nats-url", "nats://"+natsAddr)
	if err != nil || !strings.HasPrefix(out, "SEQ") {
		t.Fatalf("dlq list through nats.url: %v\n%s", err, out)
	}
	// With run's own configuration, nats.listen there is enough.
	out, err = runCLI(t, nil, "dlq", "list", "--config", cfgPath)
	if err != nil || !strings.HasPrefix(out, "SEQ") {
		t.Fatalf("dlq list with the configuration of the running instance (nats.listen): %v\n%s", err, out)
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("walsearch run: %v", err)
	}
	if _, held := storeHolder(store); held {
		t.Fatal("store still reported in use after run stopped")
	}
	if _, err := runCLI(t, nil, "dlq", "list", "--data-dir", dataDir); err != nil {
		t.Fatalf("dlq list after run stopped: %v", err)
	}
}

func TestDLQWithoutAStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := runCLI(t, nil, "dlq", "list", "--data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "no walsearch bus under "+dir) {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nats")); err == nil {
		t.Fatal("dlq list created a store")
	}
}
