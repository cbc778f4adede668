package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/internal/esclient"
	"github.com/walsearch/walsearch/transform"
	"github.com/walsearch/walsearch/verify"
)

// settleAndVerify waits until the pipeline is quiet — every change
// committed is indexed (the applied position passed PostgreSQL's WAL
// position) and the bus drained — and verifies every table against its
// index. Drift fails the run, with each drifted document next to its row.
func (r *run) settleAndVerify(ctx context.Context) Summary {
	r.engine.Clear()
	r.engine.Release()
	conn, err := pgx.Connect(ctx, r.dbURL)
	if err != nil {
		r.tb.Fatalf("connect to PostgreSQL after the chaos: %v", err)
	}
	defer conn.Close(ctx)
	target, err := walPosition(ctx, conn)
	if err != nil {
		r.tb.Fatal(err)
	}
	since := time.Now()
	rows := r.work.Counts().Rows()
	deadline := since.Add(r.cfg.RecoverWithin + time.Duration(rows-r.lastRows)*time.Millisecond)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		st, err := getStatus(ctx, client, r.base)
		if err == nil && st.AppliedLSN >= target && st.Backlog["transform"] == 0 && st.Backlog["sink"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			r.stuck(fmt.Sprintf("the pipeline to apply everything up to %s and drain the bus", target), since)
		}
		pause(100 * time.Millisecond)
	}
	r.tb.Logf("chaos %s: quiet: applied past %s, bus drained, in %s", r.elapsed(), target, time.Since(since).Round(time.Millisecond))

	sc := transform.DefaultScriptConfig()
	sc.Dir, sc.ReloadInterval, sc.Workers = filepath.Join(r.logDir, "scripts"), 0, 1
	scripts, err := transform.LoadScripts(sc)
	if err != nil {
		r.tb.Fatal(err)
	}
	defer scripts.Close()
	es, err := esclient.New(esclient.Config{Transport: r.engine.Transport()})
	if err != nil {
		r.tb.Fatal(err)
	}
	vc := verify.DefaultConfig()
	vc.URL, vc.Publication, vc.Slot, vc.Scripts, vc.ES = r.dbURL, slot, slot, scripts, es
	vc.Settle = 5 * time.Second
	vc.Applied = func(ctx context.Context) (bus.LSN, error) {
		st, err := getStatus(ctx, client, r.base)
		return st.AppliedLSN, err
	}
	rep, err := verify.Run(ctx, vc)
	if err != nil {
		r.tb.Fatalf("verify: %v", err)
	}
	sum := Summary{Seed: r.cfg.Seed, Kills: r.kills, Starts: r.sup.Starts(), Exits: len(r.sup.Exits()),
		PostgresRestarts: r.restarts, EngineOutages: r.outages, FaultedRequests: r.engine.Faulted(),
		Changes: r.work.Counts(), Drift: rep.Drift()}
	if st, err := getStatus(ctx, client, r.base); err == nil {
		sum.DeadLetters = st.DLQCount
	}
	for _, t := range rep.Tables {
		sum.Rows += t.Rows
		sum.Documents += t.Documents
		sum.Rechecked += t.Rechecked
		if t.Error != "" {
			r.tb.Errorf("verify could not check %s: %s", t.Table, t.Error)
		}
		if t.Drift() == 0 {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "DRIFT in %s → %s: %d missing, %d extra, %d stale\n", t.Table, t.Index, t.Missing.Count, t.Extra.Count, t.Stale.Count)
		for _, k := range []struct {
			kind string
			keys verify.Keys
		}{{"missing", t.Missing}, {"extra", t.Extra}, {"stale", t.Stale}} {
			for _, id := range k.keys.IDs {
				fmt.Fprintf(&b, "  %s %s\n    row:      %s\n    document: %s\n", k.kind, id,
					r.rowOf(ctx, conn, t.Table, id), r.documentOf(ctx, t.Index, id))
			}
		}
		r.tb.Error(b.String())
	}
	if n := r.work.Errors(); len(n) > 0 {
		r.tb.Logf("chaos: transactions that failed (the harness's own doing: restarts, lock timeouts, deadlocks): %v", n)
	}
	return sum
}

// rowOf prints the row of table whose document id is id, as JSON.
func (r *run) rowOf(ctx context.Context, conn *pgx.Conn, table, id string) string {
	var where string
	var args []any
	if table == "public.accounts" {
		var key []any
		if err := json.Unmarshal([]byte(id), &key); err != nil || len(key) != 2 {
			return "(id " + id + " is not an accounts key)"
		}
		where, args = "region = $1 AND id::text = $2", []any{fmt.Sprint(key[0]), fmt.Sprint(key[1])}
	} else {
		where, args = "id::text = $1", []any{id}
	}
	var row string
	err := conn.QueryRow(ctx, `SELECT row_to_json(t)::text FROM `+table+` t WHERE `+where, args...).Scan(&row)
	switch {
	case err == pgx.ErrNoRows:
		return "(no row)"
	case err != nil:
		return "(" + err.Error() + ")"
	}
	return clip(row)
}

// documentOf prints the indexed document id of index, with its version.
func (r *run) documentOf(ctx context.Context, index, id string) string {
	body, _ := json.Marshal(map[string]any{"ids": []string{id}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://engine/"+index+"/_mget", bytes.NewReader(body))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Transport: r.engine.Transport()}).Do(req)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var mr struct {
		Docs []struct {
			Found   bool            `json:"found"`
			Version int64           `json:"_version"`
			Source  json.RawMessage `json:"_source"`
		} `json:"docs"`
	}
	if err := json.Unmarshal(raw, &mr); err != nil || len(mr.Docs) != 1 {
		return clip(string(raw))
	}
	if !mr.Docs[0].Found {
		return "(no document)"
	}
	return fmt.Sprintf("version %d %s", mr.Docs[0].Version, clip(string(mr.Docs[0].Source)))
}

// clip shortens long values (large payloads) for the log.
func clip(s string) string {
	if len(s) > 600 {
		return s[:600] + fmt.Sprintf("… (%d bytes)", len(s))
	}
	return s
}

// pause holds the schedule for d: the harness's own pacing and polling
// interval, never a wait for a condition by itself.
func pause(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	<-t.C
}
