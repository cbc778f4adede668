package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/internal/e2e"
	"github.com/walsearch/walsearch/internal/eslite"
	"github.com/walsearch/walsearch/internal/pgtest"
)

var cluster *pgtest.Cluster

// childArgsEnv makes the test binary act as the walsearch binary, so that
// end-to-end tests can stop it with SIGTERM or SIGKILL like a real process.
const childArgsEnv = "WALSEARCH_E2E_CHILD_ARGS"

func TestMain(m *testing.M) {
	if raw := os.Getenv(childArgsEnv); raw != "" {
		var args []string
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			fmt.Fprintln(os.Stderr, "bad child args:", err)
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := (&Main{Stdout: os.Stdout, Stderr: os.Stderr, Env: os.Environ()}).Run(ctx, args)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "walsearch:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	pgtest.Main(m, &cluster)
}

// process is a walsearch child process.
type process struct {
	t    *testing.T
	cmd  *exec.Cmd
	done chan error
	log  *e2e.SyncBuffer
}

// output is what the process wrote so far.
func (p *process) output() string { return p.log.String() }

func startWalsearch(t *testing.T, args ...string) *process {
	t.Helper()
	cmd := walsearchCommand(args...)
	lb := &e2e.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = lb, lb
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, cmd: cmd, done: make(chan error, 1), log: lb}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("walsearch output:\n%s", tail(lb.String(), 60000))
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

// stop sends sig and waits for the process to exit.
func (p *process) stop(sig syscall.Signal) error {
	_ = p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		return err
	case <-time.After(60 * time.Second):
		// Ask the Go runtime for a goroutine dump so the log shows where it hangs.
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
		p.t.Fatalf("walsearch did not exit within 60s of %v (goroutine dump in the output below)", sig)
		return nil
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// row is what the test compares: the table's content and the index's.
type row struct {
	ID    int64   `json:"id"`
	Name  string  `json:"name"`
	Email *string `json:"email"`
	Age   *int64  `json:"age"`
	V     int64   `json:"v"`
}

func tableRows(t *testing.T, conn *pgx.Conn) map[int64]row {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT id, name, email, age, v FROM users")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]row{}
	for rows.Next() {
		var r row
		var age *int32
		if err := rows.Scan(&r.ID, &r.Name, &r.Email, &age, &r.V); err != nil {
			t.Fatal(err)
		}
		if age != nil {
			a := int64(*age)
			r.Age = &a
		}
		out[r.ID] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// indexRows reads every document of index users through the scroll
// endpoint, which pages at any depth.
func indexRows(base string) (map[int64]row, error) {
	out := map[int64]row{}
	next := base + "/search/users/scroll?size=1000&sort_by=id:asc"
	for {
		res, err := http.Get(next)
		if err != nil {
			return nil, err
		}
		raw, err := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || err != nil {
			return nil, fmt.Errorf("scroll: HTTP %d %v: %s", res.StatusCode, err, raw)
		}
		var sr struct {
			Data []row `json:"data"`
			Meta struct {
				NextCursor *string `json:"next_cursor"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(raw, &sr); err != nil {
			return nil, fmt.Errorf("scroll: %w", err)
		}
		for _, r := range sr.Data {
			out[r.ID] = r
		}
		if sr.Meta.NextCursor == nil {
			return out, nil
		}
		next = base + "/search/users/scroll?cursor=" + url.QueryEscape(*sr.Meta.NextCursor)
	}
}

func diff(want, got map[int64]row) string {
	d, _ := diffIDs(want, got)
	return d
}

// diffIDs describes how got differs from want, and returns the ids concerned.
func diffIDs(want, got map[int64]row) (string, []int64) {
	var b strings.Builder
	var ids []int64
	n := 0
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			fmt.Fprintf(&b, "missing %d; ", id)
			ids = append(ids, id)
			n++
		} else if fmt.Sprint(w.Name, deref(w.Email), derefI(w.Age), w.V) != fmt.Sprint(g.Name, deref(g.Email), derefI(g.Age), g.V) {
			fmt.Fprintf(&b, "stale %d (v%d in index, v%d in table); ", id, g.V, w.V)
			ids = append(ids, id)
			n++
		}
		if n > 10 {
			break
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok && n <= 10 {
			fmt.Fprintf(&b, "resurrected %d; ", id)
			ids = append(ids, id)
			n++
		}
	}
	return b.String(), ids
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func derefI(i *int64) string {
	if i == nil {
		return "<nil>"
	}
	return fmt.Sprint(*i)
}

// convergeWithin bounds how long the index may take to equal the table. It
// is generous because CI runs the race-detector build of every package at
// once on two cores; a healthy run converges in seconds.
const convergeWithin = 3 * time.Minute

// waitConverged polls until the index equals the table. When it does not,
// diagnose (if not nil) is told which ids differ before the test fails.
func waitConverged(t *testing.T, base string, conn *pgx.Conn, what string, diagnose ...func([]int64)) {
	t.Helper()
	deadline := time.Now().Add(convergeWithin)
	var last string
	var bad []int64
	for {
		want := tableRows(t, conn)
		got, err := indexRows(base)
		if err == nil {
			last, bad = diffIDs(want, got)
			if last == "" {
				t.Logf("%s: index equals table (%d rows)", what, len(want))
				return
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			for _, d := range diagnose {
				d(bad)
			}
			t.Fatalf("%s: index did not converge to the table within %s: %s", what, convergeWithin, last)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}

func waitHealthy(t *testing.T, base string, p *process) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(base + "/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("walsearch exited before becoming healthy: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("walsearch not healthy within 60s (last: %v)", err)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}

// writer applies random inserts, updates and deletes to one table, each in
// its own transaction. The statements take the row's id as $1; updates bump v.
type writer struct {
	conn                *pgx.Conn
	rng                 *rand.Rand
	next                int64
	insert, update, del string
}

// usersWriter writes to TestEndToEnd's users table, whose ids run to next.
func usersWriter(conn *pgx.Conn, rng *rand.Rand, next int64) *writer {
	return &writer{conn: conn, rng: rng, next: next,
		insert: `INSERT INTO users (id, name, email, age, v)
			VALUES ($1::bigint, 'user ' || $1::bigint, 'u' || $1::bigint || '@example.com', 20 + $1::bigint % 50, 1)`,
		update: `UPDATE users SET v = v + 1, name = 'renamed ' || v, age = NULL WHERE id = $1`,
		del:    `DELETE FROM users WHERE id = $1`}
}

func (w *writer) step(ctx context.Context) error {
	var err error
	switch w.rng.IntN(4) {
	case 0:
		w.next++
		_, err = w.conn.Exec(ctx, w.insert, w.next)
	case 1:
		_, err = w.conn.Exec(ctx, w.del, w.rng.Int64N(w.next)+1)
	default:
		_, err = w.conn.Exec(ctx, w.update, w.rng.Int64N(w.next)+1)
	}
	return err
}

func TestEndToEnd(t *testing.T) {
	c := pgtest.Require(t, cluster)
	ctx := context.Background()
	dbURL := c.NewDatabase(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `
CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, email text, age int, v int NOT NULL DEFAULT 1);
INSERT INTO users (id, name, email, age)
  SELECT g, 'user ' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'u' || g || '@example.com' END, 20 + g % 50
  FROM generate_series(1, 500) g;`); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	cfgPath := filepath.Join(t.TempDir(), "walsearch.yaml")
	cfg := fmt.Sprintf("data_dir: %s\npostgres:\n  url: %s\n  slot: e2e\n  publication: e2e\napi:\n  listen: %s\nlog:\n  level: debug\n", dataDir, dbURL, addr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	// 1. Rows that existed before the first start are indexed.
	p := startWalsearch(t, "run", "--config", cfgPath)
	waitHealthy(t, base, p)
	waitConverged(t, base, conn, "initial snapshot")

	// 2. Live inserts, updates and deletes.
	w := usersWriter(conn, rand.New(rand.NewPCG(1, 2)), 500)
	for range 200 {
		if err := w.step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitConverged(t, base, conn, "live changes")

	// 3. Changes made while walsearch is down arrive after a clean restart.
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("clean shutdown exited with %v", err)
	}
	for range 200 {
		if err := w.step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	p = startWalsearch(t, "run", "--config", cfgPath)
	waitHealthy(t, base, p)
	waitConverged(t, base, conn, "after clean restart")

	// 4. kill -9 in the middle of a burst of writes, then restart.
	wconn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer wconn.Close(ctx)
	bw := usersWriter(wconn, rand.New(rand.NewPCG(3, 4)), w.next+3000)
	if _, err := wconn.Exec(ctx, `INSERT INTO users (id, name, v) SELECT g, 'burst ' || g, 1 FROM generate_series($1::bigint + 1, $2::bigint) g`, w.next, bw.next); err != nil {
		t.Fatal(err)
	}
	burstDone := make(chan error, 1)
	stopBurst := make(chan struct{})
	// The burst is bounded by count, not by time: on a slow machine a
	// time-bounded burst grows the backlog the restart must drain.
	const burstSteps = 4000
	go func() {
		for range burstSteps {
			select {
			case <-stopBurst:
				burstDone <- nil
				return
			default:
			}
			if err := bw.step(ctx); err != nil {
				burstDone <- err
				return
			}
		}
		<-stopBurst
		burstDone <- nil
	}()
	// Let the burst reach the index, then kill walsearch mid-flight.
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := indexRows(base)
		if err == nil && len(got) > 1500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("burst never reached the index (%d docs, %v)", len(got), err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	_ = p.stop(syscall.SIGKILL)
	close(stopBurst)
	if err := <-burstDone; err != nil {
		t.Fatal(err)
	}
	p = startWalsearch(t, "run", "--config", cfgPath)
	waitHealthy(t, base, p)
	waitConverged(t, base, conn, "after kill -9 during a burst", func(ids []int64) {
		_ = p.stop(syscall.SIGTERM)
		diagnoseBus(t, dataDir)
		diagnoseEngine(t, filepath.Join(dataDir, "eslite"), conn, ids)
	})
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("final shutdown exited with %v", err)
	}
}

// diagnoseEngine opens the stopped process's embedded engine and says, for
// each id, what the table holds, what the engine's store holds (realtime GET)
// and what its search view finds: a right store with a wrong search view is
// an engine problem, a wrong store means the write never arrived.
func diagnoseEngine(t *testing.T, dir string, conn *pgx.Conn, ids []int64) {
	eng, err := eslite.Open(eslite.Config{Dir: dir})
	if err != nil {
		t.Logf("diagnosis: open engine: %v", err)
		return
	}
	defer eng.Close()
	hc := &http.Client{Transport: eng.RoundTripper()}
	get := func(method, path, body string) string {
		req, _ := http.NewRequest(method, "http://eslite.diag"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			return err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return fmt.Sprintf("%d %s", res.StatusCode, b)
	}
	get("POST", "/users/_refresh", "")
	for i, id := range ids {
		if i == 5 {
			break
		}
		var v int64
		err := conn.QueryRow(context.Background(), "SELECT v FROM users WHERE id = $1", id).Scan(&v)
		t.Logf("diagnosis id %d: table v=%d (%v)\n  store: %s\n  search: %s", id, v, err,
			get("GET", fmt.Sprintf("/users/_doc/%d", id), ""),
			get("POST", "/users/_search", fmt.Sprintf(`{"query":{"term":{"id":%d}},"version":true}`, id)))
	}
}

// diagnoseBus opens the stopped process's bus and reports what is still
// queued and what was dead-lettered, with the first reasons.
func diagnoseBus(t *testing.T, dataDir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := bus.DefaultConfig()
	cfg.DataDir = dataDir
	b, err := bus.Open(ctx, cfg)
	if err != nil {
		t.Logf("diagnosis: open bus: %v", err)
		return
	}
	defer b.Close()
	for _, name := range []string{bus.ChangesStream, bus.DocsStream, bus.DLQStream} {
		st, err := b.JetStream().Stream(ctx, name)
		if err != nil {
			t.Logf("diagnosis: stream %s: %v", name, err)
			continue
		}
		info, _ := st.Info(ctx)
		t.Logf("diagnosis: stream %s holds %d messages (seq %d..%d)", name, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
		for cons := range st.ListConsumers(ctx).Info() {
			t.Logf("diagnosis:   consumer %s: pending %d, ack pending %d, delivered %d, ack floor %d",
				cons.Name, cons.NumPending, cons.NumAckPending, cons.Delivered.Stream, cons.AckFloor.Stream)
		}
		if name != bus.DLQStream || info.State.Msgs == 0 {
			continue
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq < info.State.FirstSeq+5; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				continue
			}
			var dl bus.DeadLetter
			_ = json.Unmarshal(m.Data, &dl)
			t.Logf("diagnosis:   dead letter %d from %s: %s", seq, dl.Stage, tail(dl.Error, 500))
		}
	}
}
