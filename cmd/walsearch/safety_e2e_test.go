package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/internal/pgtest"
)

// exitWithin is how long a walsearch that cannot start may take to say so.
// Today's checks take well under a second; the margin is for a loaded machine.
const exitWithin = 30 * time.Second

// safetyConfig writes a walsearch.yaml with a fresh data dir and API address
// and the given postgres and elasticsearch sections, and returns its path.
func safetyConfig(t *testing.T, dataDir, sections string) string {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	path := filepath.Join(t.TempDir(), "walsearch.yaml")
	body := fmt.Sprintf("data_dir: %s\napi:\n  listen: %s\n%s", dataDir, freeAddr(t), sections)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// slotName is a slot (and publication) name unique in the cluster: the
// name of the test's database, which is.
func slotName(dbURL string) string {
	return dbURL[strings.LastIndexByte(dbURL, '/')+1 : strings.IndexByte(dbURL, '?')]
}

func pgSection(url, name string, tables ...string) string {
	s := fmt.Sprintf("postgres:\n  url: %s\n  slot: %s\n  publication: %s\n", url, name, name)
	if len(tables) > 0 {
		s += "  tables: [" + strings.Join(tables, ", ") + "]\n"
	}
	return s
}

// runToExit runs walsearch with args and returns its exit error and output,
// failing the test unless it exits within exitWithin.
func runToExit(t *testing.T, args ...string) (error, string) {
	t.Helper()
	p := startWalsearch(t, args...)
	select {
	case err := <-p.done:
		return err, p.output()
	case <-time.After(exitWithin):
		t.Fatalf("walsearch %s still running after %s; output:\n%s", args[0], exitWithin, tail(p.output(), 4000))
		return nil, ""
	}
}

// leftovers lists the slots and publications named name.
func leftovers(t *testing.T, conn *pgx.Conn, name string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT 'slot ' || slot_name FROM pg_replication_slots WHERE slot_name = $1
		UNION ALL SELECT 'publication ' || pubname FROM pg_publication WHERE pubname = $1`, name)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFatalSetupErrorsExitAtOnceWithTheFix(t *testing.T) {
	c := pgtest.Require(t, cluster)
	dbURL, conn := testDB(t, `CREATE TABLE items (id int PRIMARY KEY, name text)`)
	dbName := slotName(dbURL)
	role := "nosuper_" + dbName
	if _, err := conn.Exec(context.Background(), `CREATE ROLE `+role+` LOGIN REPLICATION`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), `DROP ROLE IF EXISTS `+role) })
	notES := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>a web server</html>"))
	}))
	t.Cleanup(notES.Close)
	closed := "http://" + freeAddr(t) // nothing listens there

	for i, tc := range []struct {
		name     string
		sections string
		want     string
	}{
		{"unknown user", pgSection(strings.Replace(dbURL, "postgres@", "nosuchuser@", 1), "x"), "fix the user in postgres.url"},
		{"missing database", pgSection(c.URL("nosuchdb_"+dbName), "x"), "fix the database name in postgres.url"},
		{"missing table", pgSection(dbURL, "x", "items", "nosuch"), "public.nosuch, which do not exist"},
		{"non-superuser with all tables", pgSection(strings.Replace(dbURL, "postgres@", role+"@", 1), "x"), "list the tables to capture in postgres.tables"},
		{"not elasticsearch", pgSection(dbURL, "x") + "elasticsearch:\n  url: " + notES.URL + "\n", "is not Elasticsearch"},
		{"elasticsearch unreachable", pgSection(dbURL, "x") + "elasticsearch:\n  url: " + closed + "\n", "fix elasticsearch.url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("fatal%d_%s", i, dbName)
			cfg := safetyConfig(t, "", strings.ReplaceAll(tc.sections, " x\n", " "+name+"\n"))
			err, out := runToExit(t, "run", "--config", cfg)
			if err == nil {
				t.Fatalf("walsearch exited 0; output:\n%s", tail(out, 4000))
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("output does not say %q:\n%s", tc.want, tail(out, 4000))
			}
			if left := leftovers(t, conn, name); len(left) > 0 {
				t.Fatalf("a failed start left %v behind", left)
			}
		})
	}
}

// A wrong password and wal_level = replica need a server configured so: the
// test starts its own.
func TestWrongPasswordAndWALLevelExitAtOnce(t *testing.T) {
	pgtest.Require(t, cluster)
	own, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(own.Stop)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, own.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `CREATE ROLE capturer LOGIN REPLICATION SUPERUSER PASSWORD 'right'`)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(own.Dir, "data")
	// The cluster's own checks connect as postgres without a password.
	hba := "host all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost replication all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("\nwal_level = replica\n")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := own.Restart(); err != nil {
		t.Fatal(err)
	}
	url := func(pass string) string {
		return fmt.Sprintf("postgres://capturer:%s@127.0.0.1:%d/postgres?sslmode=disable", pass, own.Port)
	}
	for _, tc := range []struct{ name, url, want string }{
		{"wrong password", url("wrong"), "fix the user or password in postgres.url"},
		{"wal_level replica", url("right"), "set wal_level = logical"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err, out := runToExit(t, "run", "--config", safetyConfig(t, "", pgSection(tc.url, "walsearch")))
			if err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("walsearch exited with %v, want non-zero saying %q:\n%s", err, tc.want, tail(out, 4000))
			}
		})
	}
}

func TestSecondInstanceWithAnotherDataDirIsRefused(t *testing.T) {
	dbURL, conn := testDB(t, `CREATE TABLE orders (id int PRIMARY KEY, v int); CREATE TABLE customers (id int PRIMARY KEY, v int);
		INSERT INTO orders VALUES (1, 1)`)
	name := "hijack_" + slotName(dbURL)
	a := runPipeline(t, dbURL, name, "")
	waitDoc(t, a, "orders", 1, "v", float64(1)) // the slot and publication exist

	err, out := runToExit(t, "run", "--config", safetyConfig(t, "", pgSection(dbURL, name, "customers")))
	if err == nil || !strings.Contains(out, "belongs to another walsearch instance") {
		t.Fatalf("second instance exited with %v, want a refusal:\n%s", err, tail(out, 4000))
	}
	var all bool
	if err := conn.QueryRow(context.Background(), `SELECT puballtables FROM pg_publication WHERE pubname = $1`, name).Scan(&all); err != nil || !all {
		t.Fatalf("publication FOR ALL TABLES = %v, %v after the second instance", all, err)
	}
	if _, err := conn.Exec(context.Background(), `UPDATE orders SET v = 2 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	waitDoc(t, a, "orders", 1, "v", float64(2))
	if err := a.p.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

func TestTeardownRemovesWhatTheInstanceCreated(t *testing.T) {
	dbURL, conn := testDB(t, `CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a')`)
	name := "teardown_" + slotName(dbURL)
	r := runPipeline(t, dbURL, name, "")
	waitDoc(t, r, "items", 1, "name", "a")
	if err := r.p.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Another data dir owns nothing here.
	err, out := runToExit(t, "teardown", "--yes", "--config", safetyConfig(t, "", pgSection(dbURL, name)))
	if err == nil || !strings.Contains(out, "belongs to another walsearch instance") {
		t.Fatalf("teardown from another data dir exited with %v, want a refusal:\n%s", err, out)
	}
	err, out = runToExit(t, "teardown", "--config", r.cfgPath)
	if err == nil || !strings.Contains(out, "would remove replication slot "+name) || !strings.Contains(out, "--yes") {
		t.Fatalf("teardown without --yes exited with %v, want a non-zero listing:\n%s", err, out)
	}
	if left := leftovers(t, conn, name); len(left) != 2 {
		t.Fatalf("teardown without --yes removed something: %v left", left)
	}
	err, out = runToExit(t, "teardown", "--yes", "--config", r.cfgPath)
	if err != nil {
		t.Fatalf("teardown: %v\n%s", err, out)
	}
	for _, want := range []string{"removed replication slot " + name, "removed publication " + name, "removed table public.walsearch_watermarks", "removed table public.walsearch_owners"} {
		if !strings.Contains(out, want) {
			t.Fatalf("teardown output does not say %q:\n%s", want, out)
		}
	}
	if left := leftovers(t, conn, name); len(left) > 0 {
		t.Fatalf("teardown left %v", left)
	}
	var tables int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE tablename LIKE 'walsearch\_%'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("%d helper tables left (%v)", tables, err)
	}
}

// waitDoc waits until document id of index has field = want.
func waitDoc(t *testing.T, r running, index string, id float64, field string, want any) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		docs, err := r.docs(index)
		if err == nil && docs[id] != nil && docs[id][field] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%v.%s is not %v within 60s: %v, %v", index, id, field, want, docs, err)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}
