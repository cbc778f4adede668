package verify

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/capture"
)

// drift is a document confirmed to differ from its row.
type drift struct {
	candidate
	kind string // "missing", "extra" or "stale"
}

// settle checks the candidates again until each matches its row (a change
// was in flight: counted as rechecked) or is confirmed to differ, and
// records the confirmed ones in tr; with Repair it then repairs them.
func (v *verifier) settle(ctx context.Context, schema, table string, cands []candidate, tr *TableReport) error {
	if len(cands) == 0 {
		return nil
	}
	t, err := v.rr.Table(ctx, schema, table)
	if err != nil {
		return err
	}
	found, err := v.confirm(ctx, t, cands, v.cfg.Settle, v.cfg.Settle*recheckLimit, true)
	if err != nil {
		return err
	}
	tr.Rechecked += uint64(len(cands) - len(found))
	if v.cfg.Repair && len(found) > 0 {
		left, err := v.repair(ctx, t, found)
		if err != nil {
			return err
		}
		tr.Repaired = uint64(len(found) - len(left))
		found = left
	}
	for _, d := range found {
		switch d.kind {
		case "missing":
			tr.Missing.add(d.ref.id, v.cfg.MaxKeys)
		case "extra":
			tr.Extra.add(d.ref.id, v.cfg.MaxKeys)
		default:
			tr.Stale.add(d.ref.id, v.cfg.MaxKeys)
		}
	}
	for _, k := range []*Keys{&tr.Missing, &tr.Extra, &tr.Stale} {
		slices.Sort(k.IDs)
	}
	return nil
}

// confirm checks cands again, round after round, until every one either
// matches or is confirmed to differ. A difference is confirmed once it has
// stayed the same (same row, same indexed version) for settle, and the
// pipeline has indexed everything committed before the row was last read
// (the applied watermark passed that position; with useApplied false, or
// without a watermark, settle alone decides). A document that keeps
// changing is checked again until limit has passed and then left out of
// the report: it is not known to differ.
//
// The watermark alone cannot decide: a row deleted (and its document
// deleted) between the re-read and the fetch looks missing, and an absent
// document has no version to tell that it changed after the read. Seeing
// the same difference again, on a fresh read, after settle does.
func (v *verifier) confirm(ctx context.Context, t *capture.Table, cands []candidate, settle, limit time.Duration, useApplied bool) ([]drift, error) {
	deadline := time.Now().Add(limit)
	backoff := firstRecheckBackoff
	seen := make(map[docRef]observation, len(cands))
	var out []drift
	for len(cands) > 0 && time.Now().Before(deadline) {
		exp, err := v.reread(ctx, t, cands)
		if err != nil {
			return nil, err
		}
		after, err := v.walPosition(ctx)
		if err != nil {
			return nil, err
		}
		caughtUp := !useApplied || v.cfg.Applied == nil
		if !caughtUp {
			if caughtUp, err = v.waitApplied(ctx, after, time.Now().Add(settle)); err != nil {
				return nil, err
			}
		}
		refs := make([]docRef, len(cands))
		for i, c := range cands {
			refs[i] = c.ref
		}
		act, err := v.indexedDocs(ctx, refs)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		var next []candidate
		for _, c := range cands {
			e, want := exp[c.ref]
			a := act[c.ref]
			if want == a.found && (!want || sameDoc(e.source, a.source)) {
				delete(seen, c.ref)
				continue // it matches now
			}
			o := observation{want: want, found: a.found, version: a.version, since: now}
			if want {
				o.expected = docHash(e.source)
			}
			if a.found {
				o.indexed = docHash(a.source)
			}
			if prev, ok := seen[c.ref]; ok && prev.same(o) {
				o.since = prev.since
			}
			seen[c.ref] = o
			if caughtUp && now.Sub(o.since) >= settle {
				out = append(out, drift{candidate: c, kind: kindOf(want, a.found)})
				delete(seen, c.ref)
				continue
			}
			next = append(next, c)
		}
		cands = next
		if len(cands) == 0 {
			break
		}
		if err := sleep(ctx, backoff); err != nil {
			return nil, err
		}
		backoff = min(2*backoff, maxRecheckBackoff, settle/4+time.Millisecond)
	}
	if len(cands) > 0 {
		v.cfg.Logger.Warn("documents kept changing while they were checked: not reported", "table", t.Schema()+"."+t.Name(), "documents", len(cands))
	}
	return out, nil
}

// observation is what a differing document looked like, and since when.
type observation struct {
	want, found       bool
	expected, indexed [32]byte
	version           uint64
	since             time.Time
}

func (o observation) same(p observation) bool {
	return o.want == p.want && o.found == p.found && o.expected == p.expected && o.indexed == p.indexed && o.version == p.version
}

func kindOf(want, found bool) string {
	switch {
	case want && !found:
		return "missing"
	case !want && found:
		return "extra"
	}
	return "stale"
}

// reread reads the candidates' rows again and returns the documents they
// should have now.
func (v *verifier) reread(ctx context.Context, t *capture.Table, cands []candidate) (map[docRef]expectedDoc, error) {
	var keys [][]string
	for _, c := range cands {
		if c.key != nil {
			keys = append(keys, c.key)
		}
	}
	var rows []capture.Row
	for chunk := range slices.Chunk(keys, max(v.cfg.ChunkRows, 1)) {
		err := v.rr.ReadKeys(ctx, t, chunk, func(r capture.Row) error {
			rows = append(rows, r)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return v.expected(ctx, rows, "", map[string]struct{}{})
}

// walPosition is the server's current WAL insert position: every
// transaction committed before it was called has a commit LSN below it.
func (v *verifier) walPosition(ctx context.Context) (bus.LSN, error) {
	var s string
	if err := v.conn.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&s); err != nil {
		return 0, fmt.Errorf("read the WAL position: %w", err)
	}
	return bus.ParseLSN(s)
}

// waitApplied waits until the applied watermark reaches lsn or deadline
// passes, and reports whether it reached it.
func (v *verifier) waitApplied(ctx context.Context, lsn bus.LSN, deadline time.Time) (bool, error) {
	if v.cfg.Applied == nil {
		return false, nil
	}
	backoff := firstRecheckBackoff
	for {
		applied, err := v.cfg.Applied(ctx)
		if err == nil && applied >= lsn {
			return true, nil
		}
		if err != nil {
			v.cfg.Logger.Debug("cannot read the applied watermark", "error", err)
		}
		if !time.Now().Before(deadline) {
			return false, nil
		}
		if err := sleep(ctx, min(backoff, time.Until(deadline))); err != nil {
			return false, err
		}
		backoff = min(2*backoff, maxRecheckBackoff)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
