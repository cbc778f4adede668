package capture

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus/bustest"
	"github.com/walsearch/walsearch/internal/pgtest"
)

// TestPostgresRestartLosesAndDuplicatesNothing restarts its own PostgreSQL
// (the package's shared one serves parallel tests) while a writer keeps
// inserting, and runs Run again after each failure the way the pipeline's
// supervisor does.
func TestPostgresRestartLosesAndDuplicatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own PostgreSQL")
	}
	pgtest.Require(t, cluster)
	t.Parallel()
	own, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(own.Stop)
	e := &env{t: t, url: own.NewDatabase(t), bus: bustest.Open(t)}
	e.cfg = DefaultConfig()
	e.cfg.URL, e.cfg.Slot, e.cfg.StatusInterval = e.url, "restart", 50*time.Millisecond
	e.exec(`CREATE TABLE t (id int PRIMARY KEY, v int)`)

	c, err := New(e.cfg, e.bus.Changes(), e.bus.State())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runs atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the supervisor
		defer wg.Done()
		for ctx.Err() == nil {
			runs.Add(1)
			if err := c.Run(ctx); err != nil && ctx.Err() == nil {
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond): // backoff
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	waitFor(t, "streaming", func() bool { return c.Status().Phase == PhaseStreaming })

	// The writer inserts ids in order and retries an insert whose outcome a
	// restart made unknown (ON CONFLICT keeps it idempotent).
	const n = 300
	inserted := 0
	insert := func(id int) bool {
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer ccancel()
		conn, err := pgxConnect(cctx, e.url)
		if err != nil {
			return false
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(cctx, fmt.Sprintf(`INSERT INTO t VALUES (%d, %d) ON CONFLICT DO NOTHING`, id, id))
		return err == nil
	}
	for round := range 3 {
		for inserted < (round+1)*n/3 {
			if insert(inserted + 1) {
				inserted++
			}
		}
		if err := own.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a Run after the restarts to stream", func() bool {
		return runs.Load() > 1 && c.Status().Phase == PhaseStreaming
	})
	all := e.drain("after-restarts", nil)
	seen := map[string]int{}
	for _, ch := range all {
		if ch.Table == "t" {
			seen[fmt.Sprint(ch.Key[0].Value)]++
		}
	}
	var missing, dup []string
	for i := 1; i <= inserted; i++ {
		switch seen[itoa(i)] {
		case 0:
			missing = append(missing, itoa(i))
		case 1:
		default:
			dup = append(dup, itoa(i))
		}
	}
	if len(missing) > 0 || len(dup) > 0 {
		t.Fatalf("after %d runs: missing %s; published twice %s", runs.Load(), strings.Join(missing, ","), strings.Join(dup, ","))
	}
	t.Logf("%d rows over 3 restarts and %d runs", inserted, runs.Load())
}

func pgxConnect(ctx context.Context, url string) (*pgx.Conn, error) { return pgx.Connect(ctx, url) }
