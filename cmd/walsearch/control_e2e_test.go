package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
)

// TestCommandsReachARunningInstanceFromItsConfig: with walsearch run
// holding its embedded store and no nats.listen or --nats-url anywhere, the
// commands given only --config list, show and replay a dead letter and
// rebuild an index on the running instance (they refused before: "the
// embedded NATS store … is in use").
func TestCommandsReachARunningInstanceFromItsConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL, conn := testDB(t, `CREATE TABLE people (id int PRIMARY KEY, email text);
INSERT INTO people VALUES (1, 'ada@example.com');`)
	scripts, dataDir := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(scripts, "people"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeScript := func(js string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(scripts, "people", "transform.js"), []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeScript(`function transform(doc) {
  if (doc.email === null) { throw new Error("row " + doc.id + " has no email"); }
  return doc;
}`)
	addr := freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "walsearch.yaml")
	name := slotName(dbURL)
	cfg := fmt.Sprintf("data_dir: %s\npostgres:\n  url: %s\n  slot: %s\n  publication: %s\napi:\n  listen: %s\nscripts_dir: %s\ntransform:\n  reload_interval: 200ms\n",
		dataDir, dbURL, name, name, addr, scripts)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := running{base: "http://" + addr, cfgPath: cfgPath, p: startWalsearch(t, "run", "--config", cfgPath)}
	waitHealthy(t, r.base, r.p)
	cli := func(args ...string) (string, error) {
		return runCLI(t, nil, append(args, "--config", cfgPath)...)
	}
	poll := func(what string, ok func() (bool, any)) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			done, last := ok()
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reached within 90s; last: %v", what, last)
			}
			time.Sleep(100 * time.Millisecond) // polling interval
		}
	}

	if _, err := conn.Exec(ctx, `INSERT INTO people VALUES (2, NULL)`); err != nil {
		t.Fatal(err)
	}
	var seq string
	poll("the failing row listed by dlq list --config", func() (bool, any) {
		out, err := cli("dlq", "list")
		if err != nil {
			return false, err
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "has no email") {
				seq = strings.Fields(line)[0]
				return true, nil
			}
		}
		return false, out
	})
	out, err := cli("dlq", "show", seq)
	if err != nil || !strings.Contains(out, "row 2 has no email") || !strings.Contains(out, "stack:") {
		t.Fatalf("dlq show %s: %v\n%s", seq, err, out)
	}

	// Fix the script (hot reload) and replay the dead letter.
	writeScript(`function transform(doc) {
  if (doc.email === null) { doc.email = "unknown"; }
  doc.rev = 2;
  return doc;
}`)
	poll("the fixed script live", func() (bool, any) {
		if _, err := conn.Exec(ctx, `UPDATE people SET email = email WHERE id = 1`); err != nil {
			t.Fatal(err)
		}
		got, err := r.docs("people")
		return err == nil && got[1] != nil && got[1]["rev"] == float64(2), got
	})
	if out, err := cli("dlq", "replay", seq); err != nil || !strings.Contains(out, "1 replayed") {
		t.Fatalf("dlq replay %s: %v\n%s", seq, err, out)
	}
	poll("the replayed row indexed", func() (bool, any) {
		got, err := r.docs("people")
		return err == nil && got[2] != nil && got[2]["email"] == "unknown", got
	})

	// A reindex, requested and followed to the swap through the running
	// instance.
	out, err = cli("reindex", "people", "--timeout", "3m")
	if err != nil || !strings.Contains(out, "alias people now points to people_v2") {
		t.Fatalf("reindex: %v\n%s", err, out)
	}
	if got, err := r.docs("people"); err != nil || len(got) != 2 {
		t.Fatalf("after the reindex: %v %v", got, err)
	}

	if err := r.p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, bus.LocalAccessFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("local access left after shutdown (stat: %v)", err)
	}
}
