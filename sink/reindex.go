package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/bus"
)

// Zero-downtime reindex (docs/indices.md): the sink builds <alias>_v(N+1)
// with the current settings and mapping while it keeps writing: every write
// to the alias is also sent to the new index (a shadow write, with the same
// external version), and the documents already indexed are copied over with
// their versions. Versions make the order of the two irrelevant: whichever
// arrives second with an older version is refused. When the new index holds
// as many documents as the old one, the alias is moved in one atomic
// _aliases call, and the old index is deleted after a grace period. Searches
// go through the alias throughout and so always see the complete old index
// or the complete new one.

// Defaults for reindexing.
const (
	// DefaultReindexGrace is how long the old index is kept after the swap,
	// for searches that were already running against it.
	DefaultReindexGrace = time.Minute
	// DefaultControlPoll is how often the sink looks for a reindex request.
	DefaultControlPoll = time.Second
	// reindexPage is how many documents a copy step reads and writes.
	reindexPage = 1000
	// reindexAttempts bounds the copy passes before a count mismatch fails
	// the reindex.
	reindexAttempts = 3
)

// ReindexKey is the control store key of the reindex request and its progress.
const ReindexKey = "sink.reindex"

// ControlStore keeps the reindex request and its progress (the bus state KV).
type ControlStore interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Put(ctx context.Context, key string, value []byte) error
}

// ReindexPhase is where a reindex stands.
type ReindexPhase string

// Reindex phases, in order; failed may follow any of the first two.
const (
	ReindexRequested ReindexPhase = "requested"
	ReindexCopying   ReindexPhase = "copying"
	// ReindexSwapped: the alias points to the new index; the old one is
	// deleted after the grace period.
	ReindexSwapped ReindexPhase = "swapped"
	ReindexDone    ReindexPhase = "done"
	ReindexFailed  ReindexPhase = "failed"
)

// ReindexState is a reindex request and its progress.
type ReindexState struct {
	// Index is the document index name ("users", "schema.table").
	Index string       `json:"index"`
	Phase ReindexPhase `json:"phase"`
	// Source is where the new index's documents come from: "" copies the
	// old index; ReindexFromPostgres waits for a backfill of the table
	// (walsearch resync), see resync.go.
	Source string `json:"source,omitempty"`
	// Alias, From and To name the alias, the index it pointed to and the
	// index being built.
	Alias string `json:"alias,omitempty"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
	// Copied counts documents copied from the old index (not counting the
	// writes made to both while copying).
	Copied uint64 `json:"copied"`
	// Rejected counts documents the new index refused (its mapping does not
	// accept them); a reindex with rejections fails the count check.
	Rejected uint64 `json:"rejected"`
	// FromCount and ToCount are the document counts compared before the swap.
	FromCount   int64     `json:"from_count"`
	ToCount     int64     `json:"to_count"`
	Attempt     int       `json:"attempt"`
	Error       string    `json:"error,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	DeleteAfter time.Time `json:"delete_after,omitzero"`
}

// Active reports whether the reindex still has work to do.
func (r *ReindexState) Active() bool {
	return r.Phase == ReindexRequested || r.Phase == ReindexCopying || r.Phase == ReindexSwapped
}

// GetReindex returns the current (or last) reindex, or nil.
func GetReindex(ctx context.Context, store ControlStore) (*ReindexState, error) {
	b, ok, err := store.Get(ctx, ReindexKey)
	if err != nil || !ok {
		return nil, err
	}
	var st ReindexState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("decode reindex state: %w", err)
	}
	return &st, nil
}

func putReindex(ctx context.Context, store ControlStore, st *ReindexState) error {
	st.UpdatedAt = time.Now().UTC()
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode reindex state: %w", err)
	}
	return store.Put(ctx, ReindexKey, b)
}

// RequestReindex asks the running sink to rebuild the index of index. It
// fails with ErrReindexRunning while another reindex is active.
func RequestReindex(ctx context.Context, store ControlStore, index string) (*ReindexState, error) {
	return requestReindex(ctx, store, index, "")
}

func requestReindex(ctx context.Context, store ControlStore, index, source string) (*ReindexState, error) {
	cur, err := GetReindex(ctx, store)
	if err != nil {
		return nil, err
	}
	if cur != nil && cur.Active() {
		return cur, fmt.Errorf("reindex %s (%s): %w", cur.Index, cur.Phase, ErrReindexRunning)
	}
	st := &ReindexState{Index: index, Phase: ReindexRequested, Source: source, RequestedAt: time.Now().UTC()}
	if err := putReindex(ctx, store, st); err != nil {
		return nil, err
	}
	return st, nil
}

// reindexJob is the reindex the sink is running. Its copy goroutine is
// owned by the Sink's Run: started by startReindex, stopped by stop.
type reindexJob struct {
	mu    sync.Mutex
	state ReindexState

	cancel context.CancelFunc
	wg     sync.WaitGroup
	copied chan error // receives each copy pass's outcome
}

func (j *reindexJob) snapshot() ReindexState {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.state
}

func (j *reindexJob) update(f func(*ReindexState)) {
	j.mu.Lock()
	f(&j.state)
	j.mu.Unlock()
}

// stop cancels the copy and waits for it.
func (j *reindexJob) stop() {
	j.cancel()
	j.wg.Wait()
}

// control runs between batches, when no write is in flight: it starts a
// requested reindex, swaps the alias once a copy is complete, and deletes
// old indices after their grace period. Errors are reported in the reindex
// state and the log; they never stop indexing.
func (s *Sink) control(ctx context.Context) {
	if s.cfg.Control == nil || s.cfg.Partition != 0 {
		return // index-level work is partition 0's
	}
	if j := s.job(); j != nil {
		select {
		case err := <-j.copied:
			s.finishCopy(ctx, j, err)
		default:
			st := j.snapshot()
			_ = putReindex(ctx, s.cfg.Control, &st) // progress for walsearch reindex
		}
		return
	}
	st, err := GetReindex(ctx, s.cfg.Control)
	if err != nil || st == nil {
		return
	}
	switch st.Phase {
	case ReindexRequested, ReindexCopying:
		s.startReindex(ctx, st)
	case ReindexSwapped:
		if time.Now().After(st.DeleteAfter) {
			s.deleteOld(ctx, st)
		}
	}
}

func (s *Sink) job() *reindexJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reindex
}

func (s *Sink) setJob(j *reindexJob, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reindex = j
	if j != nil {
		s.status.Reindexing = []string{name}
	} else {
		s.status.Reindexing = nil
	}
}

// startReindex creates the new index, turns on shadow writes and starts the
// copy. It runs between batches, so every write after it is a dual write.
func (s *Sink) startReindex(ctx context.Context, st *ReindexState) {
	fail := func(err error) {
		st.Phase, st.Error = ReindexFailed, err.Error()
		s.log.Error("reindex failed", "index", st.Index, "error", err)
		_ = putReindex(ctx, s.cfg.Control, st)
	}
	if s.cfg.Partitions > 1 {
		// The sinks of the other partitions would not write their
		// documents to the new index while it is copied.
		fail(fmt.Errorf("reindex %s: not available with nats.partitions above 1 (this deployment has %d)", st.Index, s.cfg.Partitions))
		return
	}
	schema, table, err := bus.ParseTable(st.Index)
	if err != nil {
		fail(fmt.Errorf("reindex %s: the index of no table: %w", st.Index, err))
		return
	}
	m, err := s.idx.ensure(ctx, &bus.Doc{Index: st.Index, Schema: schema, Table: table})
	if err != nil {
		if ctx.Err() == nil {
			fail(err)
		}
		return
	}
	resumed := st.Phase == ReindexCopying && st.To != ""
	if !resumed {
		st.Alias, st.From = m.alias, m.write
		st.To = versionedName(m.alias, generation(m.alias, m.write)+1)
		// A leftover of an earlier, failed attempt holds stale documents.
		if status, body, err := s.call(ctx, esapi.IndicesDeleteRequest{Index: []string{st.To}}); err != nil || (status >= 300 && status != http.StatusNotFound) {
			fail(callError("remove leftover index "+st.To, status, body, err))
			return
		}
	}
	if _, err := s.idx.create(ctx, m, st.To); err != nil {
		fail(err)
		return
	}
	st.Phase, st.Error = ReindexCopying, ""
	if err := putReindex(ctx, s.cfg.Control, st); err != nil {
		return // the request stays; tried again on the next round
	}
	s.idx.setShadow(st.Index, st.To)
	j := &reindexJob{state: *st, copied: make(chan error, 1)}
	s.setJob(j, st.Index)
	s.log.Info("reindex started", "index", st.Index, "from", st.From, "to", st.To, "resumed", resumed)
	s.runCopy(ctx, j)
}

// runCopy starts one copy pass.
func (s *Sink) runCopy(ctx context.Context, j *reindexJob) {
	cctx, cancel := context.WithCancel(ctx)
	j.cancel = cancel
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		j.copied <- s.copyIndex(cctx, j)
	}()
}

// finishCopy runs between batches after a copy pass: it compares the counts
// and swaps the alias, or copies again.
func (s *Sink) finishCopy(ctx context.Context, j *reindexJob, copyErr error) {
	j.wg.Wait()
	st := j.snapshot()
	if copyErr != nil {
		if ctx.Err() != nil {
			return
		}
		s.endReindex(ctx, j, fmt.Errorf("copy %s to %s: %w", st.From, st.To, copyErr))
		return
	}
	from, to, err := s.counts(ctx, st.From, st.To)
	j.update(func(r *ReindexState) { r.FromCount, r.ToCount, r.Attempt = from, to, r.Attempt+1 })
	st = j.snapshot()
	// A resync's new index need not match the old one: dropping what the
	// old one held without a row is its point.
	if err == nil && ((from != to && st.Source != ReindexFromPostgres) || st.Rejected > 0) {
		err = fmt.Errorf("%s holds %d documents, %s holds %d (%d refused by the new mapping): %w", st.From, from, st.To, to, st.Rejected, ErrCountMismatch)
		if st.Rejected == 0 && st.Attempt < reindexAttempts {
			s.log.Warn("reindex counts differ; copying again", "index", st.Index, "error", err)
			s.runCopy(ctx, j)
			return
		}
	}
	if err == nil {
		err = s.swap(ctx, &st)
	}
	s.endReindex(ctx, j, err)
}

// endReindex stops shadow writes and records the outcome.
func (s *Sink) endReindex(ctx context.Context, j *reindexJob, err error) {
	st := j.snapshot()
	s.idx.setShadow(st.Index, "")
	s.setJob(nil, "")
	if err != nil {
		st.Phase, st.Error = ReindexFailed, err.Error()
		s.log.Error("reindex failed; the alias still points to the old index", "index", st.Index, "error", err)
		if _, _, derr := s.call(ctx, esapi.IndicesDeleteRequest{Index: []string{st.To}}); derr != nil {
			s.log.Warn("cannot remove the unfinished index", "index", st.To, "error", derr)
		}
	} else {
		st.Phase = ReindexSwapped
		st.DeleteAfter = time.Now().Add(s.cfg.ReindexGrace).UTC()
		s.log.Info("reindex swapped the alias", "alias", st.Alias, "from", st.From, "to", st.To, "documents", st.ToCount)
	}
	if perr := putReindex(ctx, s.cfg.Control, &st); perr != nil {
		s.log.Error("cannot record reindex outcome", "error", perr)
	}
}

// counts refreshes both indices and counts their documents.
func (s *Sink) counts(ctx context.Context, from, to string) (int64, int64, error) {
	status, body, err := s.call(ctx, esapi.IndicesRefreshRequest{Index: []string{from, to}})
	if err != nil || status >= 300 {
		return 0, 0, callError("refresh before counting", status, body, err)
	}
	var n [2]int64
	for i, idx := range []string{from, to} {
		status, body, err := s.call(ctx, esapi.CountRequest{Index: []string{idx}})
		if err != nil || status >= 300 {
			return 0, 0, callError("count "+idx, status, body, err)
		}
		var c struct {
			Count int64 `json:"count"`
		}
		if err := json.Unmarshal(body, &c); err != nil {
			return 0, 0, fmt.Errorf("count %s: %w", idx, err)
		}
		n[i] = c.Count
	}
	return n[0], n[1], nil
}

// swap moves the alias to the new index in one atomic request. A plain
// index that carried the alias's name is removed in the same request.
func (s *Sink) swap(ctx context.Context, st *ReindexState) error {
	actions := []map[string]any{{"add": map[string]any{"index": st.To, "alias": st.Alias, "is_write_index": true}}}
	if st.From == st.Alias {
		actions = append(actions, map[string]any{"remove_index": map[string]any{"index": st.From}})
	} else {
		actions = append(actions, map[string]any{"remove": map[string]any{"index": st.From, "alias": st.Alias}})
	}
	b, _ := json.Marshal(map[string]any{"actions": actions})
	status, body, err := s.call(ctx, esapi.IndicesUpdateAliasesRequest{Body: bytes.NewReader(b)})
	if err != nil {
		return fmt.Errorf("swap alias %s: %w", st.Alias, err)
	}
	if status >= 300 {
		return fmt.Errorf("swap alias %s: HTTP %d: %s", st.Alias, status, truncate(body, 300))
	}
	if m := s.idx.lookup(st.Index); m != nil {
		s.idx.mu.Lock()
		m.write = st.To
		s.idx.mu.Unlock()
	}
	return nil
}

// deleteOld removes the index a reindex replaced once its grace has passed.
func (s *Sink) deleteOld(ctx context.Context, st *ReindexState) {
	if st.From != st.Alias { // a plain index was already removed by the swap
		status, body, err := s.call(ctx, esapi.IndicesDeleteRequest{Index: []string{st.From}})
		if err != nil || (status >= 300 && status != http.StatusNotFound) {
			s.log.Warn("cannot delete the replaced index yet", "index", st.From, "status", status, "body", truncate(body, 200), "error", err)
			return
		}
	}
	st.Phase = ReindexDone
	if err := putReindex(ctx, s.cfg.Control, st); err == nil {
		s.log.Info("reindex done; replaced index deleted", "index", st.From)
	}
}

// restartCopyAfterTruncate is called by a truncate of an index being reindexed, between
// batches: the running copy may carry documents read before the truncate,
// so it is stopped, the new index is emptied like the old one, and the copy
// starts again.
func (s *Sink) restartCopyAfterTruncate(ctx context.Context, name string) {
	j := s.job()
	if j == nil || j.snapshot().Index != name {
		return
	}
	j.stop()
	select {
	case <-j.copied:
	default:
	}
	j.update(func(r *ReindexState) { r.Copied = 0 })
	s.runCopy(ctx, j)
}

// stopReindex stops a running copy when Run ends; the request stays in the
// store as copying and resumes on the next start.
func (s *Sink) stopReindex() {
	if j := s.job(); j != nil {
		j.stop()
		s.setJob(nil, "")
	}
}
