package scaleout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/bus/bustest"
	"github.com/walsearch/walsearch/internal/e2e"
	"github.com/walsearch/walsearch/internal/pgtest"
)

var (
	cluster *pgtest.Cluster
	binDir  string // walsearch and nats-server, built once per test binary
)

func TestMain(m *testing.M) {
	c, err := pgtest.Start()
	switch {
	case err == nil:
		cluster = c
	case errors.Is(err, pgtest.ErrNotInstalled) && os.Getenv(pgtest.RequireEnv) == "":
		fmt.Fprintln(os.Stderr, "pgtest:", err, "- integration tests will be skipped")
	default:
		fmt.Fprintln(os.Stderr, "pgtest: start cluster:", err)
		os.Exit(1)
	}
	binDir, err = os.MkdirTemp("", "walsearch-scaleout-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if c != nil {
		c.Stop()
	}
	os.RemoveAll(binDir)
	os.Exit(code)
}

var (
	buildOnce             sync.Once
	walsearchBin, natsBin string
	buildErr              error
)

// binaries builds walsearch and nats-server once for the test binary.
func binaries(t *testing.T) (walsearch, natsServer string) {
	t.Helper()
	buildOnce.Do(func() {
		began := time.Now()
		if natsBin, buildErr = bustest.BuildNATSServer(binDir); buildErr != nil {
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		walsearchBin = filepath.Join(binDir, "walsearch")
		if out, err := exec.Command(goTool, "build", "-o", walsearchBin, "github.com/walsearch/walsearch/cmd/walsearch").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build walsearch: %w\n%s", err, out)
		}
		t.Logf("walsearch and nats-server built in %s", time.Since(began).Round(100*time.Millisecond))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return walsearchBin, natsBin
}

// deployment is one walsearch deployment split over processes.
type deployment struct {
	t        *testing.T
	bin      string
	pgURL    string
	natsURL  string
	esURL    string
	apiAddr  string
	leaseTTL time.Duration
	apiCfg   string
	// partitions is nats.partitions (0: unset, one partition).
	partitions int

	nats *bustest.Cluster
	eng  *e2e.Engine
	conn *pgx.Conn // to the deployment's database, for the test's writes and checks
}

// newDeployment starts what a deployment runs on — a 3-server NATS
// cluster, a search engine, a database whose table items has 300 rows —
// for processes the test starts with d.start.
func newDeployment(t *testing.T) *deployment {
	t.Helper()
	pg := pgtest.Require(t, cluster)
	wsBin, natsBin := binaries(t)
	nc := bustest.StartCluster(t, natsBin, 3)
	eng := e2e.StartEngine(t)
	url := pg.NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, `CREATE TABLE items (id bigint PRIMARY KEY, n int NOT NULL, note text);
		INSERT INTO items SELECT g, 0, 'seed ' || g FROM generate_series(1, 300) g`); err != nil {
		t.Fatal(err)
	}
	return &deployment{t: t, bin: wsBin, pgURL: url, natsURL: nc.URL, esURL: eng.URL, apiAddr: e2e.FreeAddr(t),
		leaseTTL: 3 * time.Second, nats: nc, eng: eng, conn: conn}
}

func (d *deployment) config(role string) string {
	// The api process serves the search API on d.apiAddr; every other one
	// serves its health and metrics endpoints on api.listen, each on a
	// port of its own.
	listen := "127.0.0.1:0"
	if role == "api" {
		listen = d.apiAddr
	}
	return d.configAt(role, d.pgURL, listen)
}

// configAt writes the configuration of a process running role, reaching
// PostgreSQL at pgURL and serving HTTP on listen.
func (d *deployment) configAt(role, pgURL, listen string) string {
	parts := ""
	if d.partitions > 0 {
		parts = fmt.Sprintf("  partitions: %d\n", d.partitions)
	}
	return e2e.WriteConfig(d.t, e2e.Config{DataDir: d.t.TempDir(), PostgresURL: pgURL, Slot: "scaleout",
		ElasticsearchURL: d.esURL, APIListen: listen,
		Extra: fmt.Sprintf("role: %s\nnats:\n  url: %s\n%scapture:\n  lease_ttl: %s\n", role, d.natsURL, parts, d.leaseTTL)})
}

func (d *deployment) start(role string, env ...string) *e2e.Process {
	path := d.config(role)
	if role == "api" {
		d.apiCfg = path
	}
	cmd := exec.Command(d.bin, "run", "--config", path)
	cmd.Env = append(os.Environ(), env...)
	return e2e.Start(d.t, cmd)
}

// leader is the capture lease as GET /status shows it.
type leader struct {
	Holder  string    `json:"holder"`
	Token   uint64    `json:"token"`
	Expires time.Time `json:"expires"`
}

func (l leader) pid() int {
	parts := strings.Split(l.Holder, "/")
	if len(parts) != 3 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[1])
	return pid
}

func (d *deployment) leader(ctx context.Context) (leader, error) {
	var st struct {
		Capture struct {
			Leader *leader `json:"leader"`
		} `json:"capture"`
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+d.apiAddr+"/status", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return leader{}, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return leader{}, fmt.Errorf("GET /status: %d %s", res.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return leader{}, err
	}
	if st.Capture.Leader == nil {
		return leader{}, errors.New("no leader in /status")
	}
	return *st.Capture.Leader, nil
}

// waitLeader polls /status until ok accepts the leader.
func (d *deployment) waitLeader(what string, within time.Duration, ok func(leader) bool) leader {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		l, err := d.leader(ctx)
		cancel()
		if err == nil && ok(l) {
			return l
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: not within %s; last leader %+v (%v)", what, within, l, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// caughtUp waits until a search through the api process with min_lsn at
// PostgreSQL's insert position answers: the sink, in another process,
// applied everything committed so far (read-your-writes on the api role).
func (d *deployment) caughtUp(conn *pgx.Conn, within time.Duration) {
	d.t.Helper()
	var lsn string
	if err := conn.QueryRow(context.Background(), `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		d.t.Fatal(err)
	}
	deadline := time.Now().Add(within)
	for {
		req, _ := http.NewRequest("POST", "http://"+d.apiAddr+"/search", strings.NewReader(`{"index":"items","page_size":1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Walsearch-Min-LSN", lsn)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
			err = fmt.Errorf("HTTP %d: %s", res.StatusCode, body)
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("search with min_lsn %s did not answer within %s: %v", lsn, within, err)
		}
		// A 504 after api.min_lsn_timeout means not yet: ask again.
	}
}

// workload writes to items from its own connection until stopped: each
// transaction inserts a row, updates one and now and then deletes one.
type workload struct {
	mu     sync.Mutex
	paused bool
	stop   chan struct{}
	done   chan error
	txs    int
}

func startWorkload(t *testing.T, url string, firstID int) *workload {
	w := &workload{stop: make(chan struct{}), done: make(chan error, 1)}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer conn.Close(context.Background())
		tick := time.NewTicker(20 * time.Millisecond) // pacing, about 50 tx/s
		defer tick.Stop()
		ctx := context.Background()
		for id := firstID; ; id++ {
			select {
			case <-w.stop:
				w.done <- nil
				return
			case <-tick.C:
			}
			w.mu.Lock()
			paused := w.paused
			w.mu.Unlock()
			if paused {
				continue
			}
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO items (id, n, note) VALUES ($1, 0, 'new')`, id); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `UPDATE items SET n = n + 1, note = 'updated ' || $1 WHERE id = $1 % 300 + 1`, id); err != nil {
					return err
				}
				// Two changes of one row in one transaction share a
				// version: only their order makes the second one win.
				if _, err := tx.Exec(ctx, `UPDATE items SET note = note || ' again' WHERE id = $1 % 300 + 1`, id); err != nil {
					return err
				}
				if id%7 == 0 {
					_, err := tx.Exec(ctx, `DELETE FROM items WHERE id = $1`, id-3)
					return err
				}
				return nil
			})
			if err != nil {
				w.done <- err
				return
			}
			w.mu.Lock()
			w.txs++
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *workload) pause(p bool) {
	w.mu.Lock()
	w.paused = p
	w.mu.Unlock()
}

func (w *workload) finish(t *testing.T) int {
	t.Helper()
	close(w.stop)
	if err := <-w.done; err != nil {
		t.Fatalf("workload: %v", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.txs
}

// changeTokens records, in arrival order, the lease token of every change
// message published on the cluster.
type changeTokens struct {
	mu     sync.Mutex
	tokens []uint64
}

func (c *changeTokens) add(m *nats.Msg) {
	tok, _ := strconv.ParseUint(m.Header.Get(bus.LeaseHeader), 10, 64)
	c.mu.Lock()
	c.tokens = append(c.tokens, tok)
	c.mu.Unlock()
}

// staleAfter counts the messages with a token up to old that arrived after
// the first message with a newer token, and says whether one was seen.
func (c *changeTokens) staleAfter(old uint64) (stale int, seenNewer bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tok := range c.tokens {
		switch {
		case tok > old:
			seenNewer = true
		case seenNewer:
			stale++
		}
	}
	return stale, seenNewer
}

// TestSeparateProcessesFailover runs walsearch as seven processes on a
// three-node NATS cluster — two capture (leader and standby), two
// transform and two sink sharing the streams' two partitions, and api —
// under a write workload. It stops the leader (SIGSTOP)
// past its lease: the standby takes over, and the stopped leader, once
// continued (and, by fault injection, still capturing), publishes nothing. Then it kills the new leader (SIGKILL): the
// other takes over again. Then, with a probe writing marker rows and
// searching for each, it kills the server leading the changes stream, then
// a transform, then a sink (the other takes its partition; a new one
// joins and takes a partition back), and reports the
// longest write → searchable gap of each failure, the capture kill's
// included. The index ends equal to the table (walsearch verify).
func TestSeparateProcessesFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds walsearch and nats-server and runs eight processes")
	}
	d := newDeployment(t)
	d.partitions = 2
	ctx, wsBin, nc, eng, url, conn := context.Background(), d.bin, d.nats, d.eng, d.pgURL, d.conn
	transform, transform2 := d.start("transform"), d.start("transform")
	sink, sink2 := d.start("sink"), d.start("sink")
	// The probe searches every 20 ms, faster than the API's default rate limit.
	d.start("api", "WALSEARCH_API_RATE_LIMIT=0")
	captures := map[int]*e2e.Process{}
	// Fault injection: the first leader does not stop capturing when it
	// finds its lease lost, so that only the publisher's fence keeps it
	// from publishing what PostgreSQL sent it while it was stopped.
	first := d.start("capture", "WALSEARCH_FAULT_IGNORE_LEASE_LOSS=1")

	captures[first.PID()] = first
	l1 := d.waitLeader("the first capture leads", 2*time.Minute, func(l leader) bool { return l.pid() == first.PID() })
	second := d.start("capture")

	captures[second.PID()] = second
	// The snapshot went capture → WALSEARCH_CHANGES → transform →
	// WALSEARCH_DOCS → sink, each in its own process.
	eng.WaitEqual(t, conn, "items", "id", "items", 2*time.Minute)
	// The two processes of each kind share the partitions.
	d.waitHolders("each transform holds a partition", "transform", time.Minute, heldBy(transform.PID(), transform2.PID()))
	d.waitHolders("each sink holds a partition", "sink", time.Minute, heldBy(sink.PID(), sink2.PID()))

	sub, err := nats.Connect(nc.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// Streams and buckets were sized to the cluster: three replicas.
	js, err := jetstream.New(sub)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{bus.ChangesStream, bus.DocsStream, bus.DLQStream, "KV_" + bus.StateBucket, "KV_" + bus.LeaseBucket} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("stream %s has %d replicas, want 3 (one per server of the cluster)", name, r)
		}
	}
	var seen changeTokens
	if _, err := sub.Subscribe(bus.ChangePrefix+">", seen.add); err != nil {
		t.Fatal(err)
	}
	w := startWorkload(t, url, 1000)

	// The leader stops past its lease. Everything it read is published
	// first (the workload pauses until the api applied it), so that what
	// it holds when it continues is only what PostgreSQL sent meanwhile.
	w.pause(true)
	d.caughtUp(conn, time.Minute)
	stoppedPID := l1.pid()
	if err := syscall.Kill(stoppedPID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	continued := false
	cont := func() {
		if !continued {
			continued = true
			_ = syscall.Kill(stoppedPID, syscall.SIGCONT)
		}
	}
	defer cont()
	stoppedAt := time.Now()
	w.pause(false)
	l2 := d.waitLeader("the standby takes over from the stopped leader", 30*time.Second, func(l leader) bool { return l.Token > l1.Token })
	t.Logf("standby (pid %d, token %d) took over %s after the leader (pid %d, token %d) was stopped; lease TTL %s",
		l2.pid(), l2.Token, time.Since(stoppedAt).Round(10*time.Millisecond), stoppedPID, l1.Token, d.leaseTTL)
	if l2.pid() == stoppedPID {
		t.Fatalf("the stopped process still leads: %+v", l2)
	}
	// The stopped leader's session still holds the slot, and PostgreSQL
	// would end it only after wal_sender_timeout (60s): the new leader ends
	// it and streams at once.
	const firstChangeWithin = 30 * time.Second
	deadline := time.Now().Add(firstChangeWithin)
	for {
		if _, ok := seen.staleAfter(l1.Token); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new leader published nothing within %s of the leader's stop", firstChangeWithin)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	t.Logf("the new leader's first change arrived %s after the leader was stopped", time.Since(stoppedAt).Round(10*time.Millisecond))
	cont()
	// Continued, the old leader finds its lease lost and stands by.
	old := captures[stoppedPID]
	deadline = time.Now().Add(time.Minute)
	for !strings.Contains(old.Output(), "standing by") {
		if time.Now().After(deadline) {
			t.Fatalf("the continued leader did not stand by within a minute:\n%s", old.Output())
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	if stale, _ := seen.staleAfter(l1.Token); stale > 0 {
		t.Fatalf("the stale leader published %d changes under token %d or none after the new leader's first", stale, l1.Token)
	}
	// It did try: its publisher refused.
	if out := old.Output(); !strings.Contains(out, "publish "+bus.ChangePrefix) || !strings.Contains(out, bus.ErrLeaseLost.Error()) {
		t.Errorf("the continued leader shows no publish refused by its fence:\n%s", out)
	}
	// The new leader may have acquired the lease again (a failed start
	// releases it): the one that leads now is the one to kill.
	l2 = d.waitLeader("a leader after the stale one stood by", 30*time.Second, func(l leader) bool { return l.Token > l1.Token })

	// From here on a probe writes marker rows one at a time and searches
	// for each until it is found: the write → searchable gap of every
	// failure that follows.
	p := startProbe(t, url, d.apiAddr)
	defer p.finish(t)

	// The new leader is killed: the old one, standing by, takes over.
	killedAt := time.Now()
	captures[l2.pid()].Kill()
	killed := time.Now()
	l3 := d.waitLeader("the standby takes over from the killed leader", 30*time.Second, func(l leader) bool { return l.Token > l2.Token })
	took := time.Since(killedAt)
	t.Logf("standby (pid %d, token %d) took over %s after the leader was killed", l3.pid(), l3.Token, took.Round(10*time.Millisecond))
	if l3.pid() != stoppedPID {
		t.Errorf("leader after the kill is pid %d, want the standby %d", l3.pid(), stoppedPID)
	}
	if limit := 2*d.leaseTTL + 5*time.Second; took > limit {
		t.Errorf("takeover took %s, want it within the lease TTL (%s) and polling, at most %s", took, d.leaseTTL, limit)
	}
	// The new leader resumes from the slot's position: the writes made
	// meanwhile and after arrive.
	deadline = time.Now().Add(time.Minute)
	for {
		if _, ok := seen.staleAfter(l2.Token); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the last leader published nothing within a minute")
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	if stale, _ := seen.staleAfter(l2.Token); stale > 0 {
		t.Errorf("changes under the killed leader's token %d or older arrived after the new leader's first (%d)", l2.Token, stale)
	}
	gaps := []string{fmt.Sprintf("capture leader killed: %s", p.gapSince(t, killed))}

	// The server leading the changes stream dies (SIGKILL): its streams
	// have two replicas left, which elect a new leader; every client
	// reconnects to a server still up.
	info, err := js.Stream(ctx, bus.ChangesStream)
	if err != nil {
		t.Fatal(err)
	}
	victim := -1
	for i := range 3 {
		if info.CachedInfo().Cluster != nil && info.CachedInfo().Cluster.Leader == nc.Name(i) {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("no leader of %s among the servers: %+v", bus.ChangesStream, info.CachedInfo().Cluster)
	}
	nc.Kill(victim)
	killed = time.Now()
	gaps = append(gaps, fmt.Sprintf("NATS server %s (leader of %s) killed: %s", nc.Name(victim), bus.ChangesStream, p.gapSince(t, killed)))

	// A transform, then a sink, are killed: the other of its kind takes
	// its partition once its lease expired, and its new consumer hands it
	// the unacknowledged messages first, in order. A new process of the
	// kind then joins and takes a partition back.
	transform.Kill()
	killed = time.Now()
	gaps = append(gaps, fmt.Sprintf("a transform killed (the other takes its partition): %s", p.gapSince(t, killed)))
	d.waitHolders("the other transform holds every partition", "transform", time.Minute, heldBy(transform2.PID()))
	transform3 := d.start("transform")
	d.waitHolders("a joining transform takes a partition", "transform", time.Minute, heldBy(transform2.PID(), transform3.PID()))
	sink.Kill()
	killed = time.Now()
	gaps = append(gaps, fmt.Sprintf("a sink killed (the other takes its partition): %s", p.gapSince(t, killed)))
	d.waitHolders("the other sink holds every partition", "sink", time.Minute, heldBy(sink2.PID()))
	sink3 := d.start("sink")
	d.waitHolders("a joining sink takes a partition", "sink", time.Minute, heldBy(sink2.PID(), sink3.PID()))
	t.Logf("longest write → searchable gap (marker rows searched through the api process):\n  %s", strings.Join(gaps, "\n  "))
	markers := p.finish(t)
	txs := w.finish(t)
	d.caughtUp(conn, time.Minute)
	eng.WaitEqual(t, conn, "items", "id", "items", time.Minute)
	out, err := exec.Command(wsBin, "verify", "--config", d.apiCfg, "--progress=false").CombinedOutput()
	if err != nil {
		t.Fatalf("walsearch verify: %v\n%s", err, out)
	}
	t.Logf("%d workload transactions, %d marker rows; walsearch verify:\n%s", txs, markers, out)

	// The lease is in the api process's metrics; the api, transform and
	// sink processes opened no slot of their own.
	res, err := http.Get("http://" + d.apiAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	// A capture whose publish lost its ack with the NATS server started
	// again, and took the lease anew: the leader now is the one to find.
	l4 := d.waitLeader("a leader at the end", 30*time.Second, func(l leader) bool { return l.Token >= l3.Token })
	want := fmt.Sprintf("walsearch_capture_lease_token{holder=%q} %d", l4.Holder, l4.Token)
	if !strings.Contains(string(metrics), want) {
		t.Errorf("GET /metrics lacks %s", want)
	}
	var slots int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE database = current_database()`).Scan(&slots); err != nil {
		t.Fatal(err)
	}
	if slots != 1 {
		t.Errorf("%d replication slots, want the one capture holds", slots)
	}
}

// markerBase is the id of the probe's first marker row, above any id the
// workload writes.
const markerBase = 100_000_000

// probe writes marker rows into items, one at a time, and searches for
// each through the api until it is found: what it records is the write →
// searchable latency of every marker, and so the longest gap while a
// failure lasts.
type probe struct {
	stop chan struct{}
	done chan error

	mu      sync.Mutex
	samples []probeSample
	pending time.Time // when the marker being searched for was written
	ended   bool
}

type probeSample struct{ written, found time.Time }

func startProbe(t *testing.T, pgURL, apiAddr string) *probe {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &probe{stop: make(chan struct{}), done: make(chan error, 1)}
	body := func(id int) string {
		return fmt.Sprintf(`{"index":"items","query_fields":{"id":%d},"fields":["id"],"page_size":1}`, id)
	}
	go func() {
		defer conn.Close(context.Background())
		client := &http.Client{Timeout: 10 * time.Second}
		for id := markerBase; ; id++ {
			if _, err := conn.Exec(context.Background(), `INSERT INTO items (id, n, note) VALUES ($1, 0, 'marker')`, id); err != nil {
				p.done <- fmt.Errorf("write marker %d: %w", id, err)
				return
			}
			written := time.Now()
			p.mu.Lock()
			p.pending = written
			p.mu.Unlock()
			for {
				select {
				case <-p.stop:
					p.done <- nil
					return
				case <-time.After(20 * time.Millisecond): // polling interval
				}
				res, err := client.Post("http://"+apiAddr+"/search", "application/json", strings.NewReader(body(id)))
				if err != nil {
					continue // the api is reached again on the next poll
				}
				var r struct {
					Meta struct {
						Total int `json:"total_records"`
					} `json:"meta"`
				}
				raw, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode == http.StatusOK && json.Unmarshal(raw, &r) == nil && r.Meta.Total == 1 {
					break
				}
			}
			p.mu.Lock()
			p.samples = append(p.samples, probeSample{written, time.Now()})
			p.mu.Unlock()
		}
	}()
	return p
}

// gapSince waits until a marker written after began — when the failure
// happened (the process was gone) — was found: the pipeline works again.
// It returns the longest write → searchable latency of the markers found
// since began, the one in flight at the failure included, with how many
// they were.
func (p *probe) gapSince(t *testing.T, began time.Time) string {
	t.Helper()
	// A marker takes at most a lease TTL, a stream leader election or a
	// consumer's ack wait (15s) longer than usual: two minutes is far more
	// than that, also on a loaded machine.
	const within = 2 * time.Minute
	deadline := time.Now().Add(within)
	for {
		p.mu.Lock()
		recovered := len(p.samples) > 0 && p.samples[len(p.samples)-1].written.After(began)
		var longest time.Duration
		n := 0
		for _, s := range p.samples {
			if s.found.After(began) {
				n++
				longest = max(longest, s.found.Sub(s.written))
			}
		}
		pending := p.pending
		p.mu.Unlock()
		if recovered {
			return fmt.Sprintf("%s (%d markers)", longest.Round(10*time.Millisecond), n)
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("probe ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no marker written after %s was searchable within %s; the one searched for now was written %s ago",
				began.Format(time.StampMilli), within, time.Since(pending).Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// finish stops the probe (once) and returns how many markers it wrote.
func (p *probe) finish(t *testing.T) int {
	t.Helper()
	p.mu.Lock()
	ended := p.ended
	p.ended = true
	n := len(p.samples)
	p.mu.Unlock()
	if ended {
		return n
	}
	close(p.stop)
	if err := <-p.done; err != nil {
		t.Errorf("probe: %v", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.samples) + 1 // and the last one, written but not searched for to the end
}
