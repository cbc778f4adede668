package documents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/transform"
)

// Defaults of Config.
const (
	// DefaultBatchRoots is how many documents one rebuild query reads.
	DefaultBatchRoots = 500
	// DefaultMaxVisibilityWait bounds how long a rebuild waits for its
	// snapshot to see the changes that asked for it (see MapRound).
	DefaultMaxVisibilityWait = time.Minute
)

// lookupBatch is how many changed rows one root-finding query looks up.
const lookupBatch = 1000

// Config configures an Assembler.
type Config struct {
	// Connect opens the connection rebuilds read from. Required.
	Connect func(context.Context) (*pgx.Conn, error)
	// Own reports whether a table a definition uses is also indexed on its
	// own (one document per row, as without definitions). Default: none is.
	Own func(schema, table string) bool
	// BatchRoots is how many documents one rebuild query reads.
	// Default: 500.
	BatchRoots int
	// MaxVisibilityWait bounds how long a rebuild waits for PostgreSQL to
	// make a committed change visible to new snapshots (it is visible a
	// moment after the log has it; longer under synchronous replication).
	// Past it the round fails and is delivered again. Default: 1m.
	MaxVisibilityWait time.Duration
	Logger            *slog.Logger
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Connect == nil {
		errs = append(errs, errors.New("documents: a PostgreSQL connection is required"))
	}
	if c.BatchRoots < 0 {
		errs = append(errs, fmt.Errorf("documents: batch roots: want 0 (default) or more, got %d", c.BatchRoots))
	}
	return errors.Join(errs...)
}

// Assembler is the transform stage's mapper when documents are defined: it
// maps changes of the tables the definitions use to rebuilt documents of
// their roots, and every other change with the next mapper (the scripts).
//
// Map is safe for concurrent use; MapRound is called from one goroutine
// at a time, which owns the connection. Close releases it.
type Assembler struct {
	cfg     Config
	next    transform.Mapper
	plans   []*compiled
	byTable map[string][]target
	roots   map[string]*compiled
	log     *slog.Logger
	conn    *pgx.Conn // MapRound's
}

type compiled struct {
	plan *Plan
	q    *queries
}

type target struct {
	c *compiled
	e *entry
}

// NewAssembler returns the mapper of plans; next maps everything else, and
// the assembled documents (a root table's transform.js runs on them).
func NewAssembler(cfg Config, plans []*Plan, next transform.Mapper) (*Assembler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BatchRoots == 0 {
		cfg.BatchRoots = DefaultBatchRoots
	}
	if cfg.MaxVisibilityWait == 0 {
		cfg.MaxVisibilityWait = DefaultMaxVisibilityWait
	}
	if cfg.Own == nil {
		cfg.Own = func(string, string) bool { return false }
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if next == nil {
		next = transform.Identity{}
	}
	a := &Assembler{cfg: cfg, next: next, byTable: map[string][]target{}, roots: map[string]*compiled{},
		log: log.With("component", "documents")}
	for _, p := range plans {
		c := &compiled{plan: p, q: buildQueries(p)}
		a.plans = append(a.plans, c)
		root := p.Root.Table.QualifiedName()
		if a.roots[root] != nil {
			return nil, fmt.Errorf("documents: two definitions of root table %s", root)
		}
		a.roots[root] = c
		for table, es := range c.q.entries {
			for i := range es {
				a.byTable[table] = append(a.byTable[table], target{c: c, e: &es[i]})
			}
		}
	}
	return a, nil
}

// Tables lists every table the definitions read, as "schema.table".
func (a *Assembler) Tables() []string {
	out := make([]string, 0, len(a.byTable))
	for t := range a.byTable {
		out = append(out, t)
	}
	return out
}

// Map implements transform.Mapper: a root table's changes are mapped by
// MapRound; a table only definitions use produces no documents of its
// own; every other change goes to the next mapper.
func (a *Assembler) Map(c *bus.Change) ([]*bus.Doc, error) {
	name := c.Schema + "." + c.Table
	if a.roots[name] != nil {
		return nil, nil
	}
	if _, used := a.byTable[name]; used && !a.cfg.Own(c.Schema, c.Table) {
		return nil, nil
	}
	return a.next.Map(c)
}

// Affects implements transform.RoundMapper.
func (a *Assembler) Affects(c *bus.Change) bool {
	_, ok := a.byTable[c.Schema+"."+c.Table]
	return ok
}

// Close releases the connection.
func (a *Assembler) Close() error {
	if a.conn != nil {
		err := a.conn.Close(context.Background())
		a.conn = nil
		return err
	}
	return nil
}

// MapRound implements transform.RoundMapper. It finds the roots the
// round's changes affect, then, in one REPEATABLE READ snapshot that sees
// every one of the changes, finds the roots that reference changed parent
// rows and reads every affected root's document, BatchRoots at a time,
// handing each batch to emit before reading the next. Each document's
// version is a WAL position read after that snapshot was taken: at or
// above the commit LSN of every change it reflects, and below that of any
// rebuild started later. A root that no longer exists is deleted from the
// index.
func (a *Assembler) MapRound(ctx context.Context, changes []*bus.Change, emit func([]*bus.Doc) error) ([]transform.Failure, error) {
	w := &work{byPlan: map[*compiled]*planWork{}}
	var failed []transform.Failure
	for _, c := range changes {
		if err := c.DecodeRow(); err != nil {
			failed = append(failed, transform.Failure{Change: c, Err: err})
			continue
		}
		if err := c.DecodeOld(); err != nil {
			failed = append(failed, transform.Failure{Change: c, Err: err})
			continue
		}
		w.note(c)
		for _, t := range a.byTable[c.Schema+"."+c.Table] {
			w.plan(t.c).add(t, c)
		}
	}
	deadline := time.Now().Add(a.cfg.MaxVisibilityWait)
	for wait := time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		n, more, visible, err := a.rebuild(ctx, w, emit)
		if err != nil {
			a.dropConn()
			return nil, fmt.Errorf("rebuild documents: %w", err)
		}
		if visible {
			a.log.Debug("documents rebuilt", "changes", len(changes), "documents", n)
			return append(failed, more...), nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("rebuild documents: PostgreSQL did not make committed transactions visible within %s (synchronous replication waiting for a standby?)", a.cfg.MaxVisibilityWait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func (a *Assembler) dropConn() {
	if a.conn != nil {
		_ = a.conn.Close(context.Background())
		a.conn = nil
	}
}

// rebuild reads the documents of w in one snapshot and hands them to emit
// batch by batch; n counts them. visible is false, and nothing was
// emitted, when the snapshot does not see every change of the round yet.
func (a *Assembler) rebuild(ctx context.Context, w *work, emit func([]*bus.Doc) error) (n int, failed []transform.Failure, visible bool, err error) {
	if a.conn == nil {
		if a.conn, err = a.cfg.Connect(ctx); err != nil {
			return 0, nil, false, err
		}
	}
	tx, err := a.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, nil, false, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	// The snapshot is taken when this first statement starts; the WAL
	// position is read after, so it is past the commit record of every
	// transaction the snapshot sees.
	var lsnText, snapText string
	if err := tx.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text, pg_current_snapshot()::text").Scan(&lsnText, &snapText); err != nil {
		return 0, nil, false, err
	}
	snap, err := parseSnapshot(snapText)
	if err != nil {
		return 0, nil, false, err
	}
	for x := range w.xids {
		if !snap.sees(x) {
			a.log.Debug("waiting for a committed transaction to become visible", "xid", x, "snapshot", snapText)
			return 0, nil, false, nil
		}
	}
	version, err := bus.ParseLSN(lsnText)
	if err != nil {
		return 0, nil, false, err
	}
	pos := uint64(0)
	for _, c := range a.plans {
		pw := w.byPlan[c]
		if pw == nil {
			continue
		}
		if err := a.findRoots(ctx, tx, c, pw); err != nil {
			return 0, nil, false, err
		}
		base := bus.Change{V: bus.SchemaVersion, Schema: c.plan.Root.Table.Schema, Table: c.plan.Root.Table.Name,
			LSN: version, CommitTime: w.commitTime}
		if pw.truncate {
			t := base
			t.Op, t.Pos = bus.OpTruncate, pos
			pos++
			ds, err := a.next.Map(&t)
			if err != nil {
				failed = append(failed, transform.Failure{Change: &t, Err: err})
			}
			if err := emit(ds); err != nil {
				return 0, nil, false, err
			}
			n += len(ds)
		}
		for start := 0; start < len(pw.order); start += a.cfg.BatchRoots {
			batch := pw.order[start:min(len(pw.order), start+a.cfg.BatchRoots)]
			found, err := a.read(ctx, tx, c, pw, batch)
			if err != nil {
				return 0, nil, false, err
			}
			docs := make([]*bus.Doc, 0, len(batch))
			for _, id := range batch {
				ch := base
				ch.Key, ch.Pos = pw.keys[id], pos
				pos++
				if doc, ok := found[id]; ok {
					ch.Op, ch.RowJSON = bus.OpUpdate, doc
				} else {
					ch.Op = bus.OpDelete
				}
				ds, err := a.next.Map(&ch)
				if err != nil {
					failed = append(failed, transform.Failure{Change: &ch, Err: err})
					continue
				}
				docs = append(docs, ds...)
			}
			if err := emit(docs); err != nil {
				return 0, nil, false, err
			}
			n += len(docs)
		}
	}
	return n, failed, true, nil
}

// findRoots runs the queries that find the roots of changed rows of
// tables below the root, and, after a truncate of such a table, lists
// every root.
func (a *Assembler) findRoots(ctx context.Context, tx pgx.Tx, c *compiled, pw *planWork) error {
	keyNames := c.plan.Root.Table.Key
	collect := func(sql string, args ...any) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var keyJSON string
			if err := rows.Scan(&keyJSON); err != nil {
				return err
			}
			key, err := decodeKey(keyJSON, keyNames)
			if err != nil {
				return err
			}
			pw.addRoot(key)
		}
		return rows.Err()
	}
	if pw.all {
		root := c.plan.Root.Table
		if err := collect("SELECT json_build_array(" + cols("t0", root.Key) + ")::text FROM " + quoteTable(root) + " t0"); err != nil {
			return fmt.Errorf("list the roots of %s: %w", root.QualifiedName(), err)
		}
	}
	for e, tuples := range pw.lookups {
		for start := 0; start < len(tuples); start += lookupBatch {
			batch := tuples[start:min(len(tuples), start+lookupBatch)]
			if err := collect(e.query, columnsOf(batch, len(e.cols))...); err != nil {
				return fmt.Errorf("find the documents of changed rows: %w", err)
			}
		}
	}
	return nil
}

// read runs the rebuild query for a batch of root ids and returns the
// documents found, by id.
func (a *Assembler) read(ctx context.Context, tx pgx.Tx, c *compiled, pw *planWork, ids []string) (map[string]json.RawMessage, error) {
	keyNames := c.plan.Root.Table.Key
	tuples := make([][]string, len(ids))
	for i, id := range ids {
		tuples[i] = pw.text[id]
	}
	rows, err := tx.Query(ctx, c.q.rebuild, columnsOf(tuples, len(keyNames))...)
	if err != nil {
		return nil, fmt.Errorf("read documents of %s: %w", c.plan.Index, err)
	}
	defer rows.Close()
	found := make(map[string]json.RawMessage, len(ids))
	for rows.Next() {
		var keyJSON string
		var doc []byte
		if err := rows.Scan(&keyJSON, &doc); err != nil {
			return nil, err
		}
		key, err := decodeKey(keyJSON, keyNames)
		if err != nil {
			return nil, err
		}
		found[bus.DocumentID(key)] = json.RawMessage(doc)
	}
	return found, rows.Err()
}

// columnsOf turns tuples of n values into n parameter arrays.
func columnsOf(tuples [][]string, n int) []any {
	out := make([]any, n)
	for i := range n {
		col := make([]string, len(tuples))
		for j, t := range tuples {
			col[j] = t[i]
		}
		out[i] = col
	}
	return out
}

// decodeKey reads a key written as a JSON array.
func decodeKey(s string, names []string) ([]bus.Column, error) {
	var vals []any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&vals); err != nil {
		return nil, fmt.Errorf("decode key %s: %w", s, err)
	}
	if len(vals) != len(names) {
		return nil, fmt.Errorf("decode key %s: want %d values", s, len(names))
	}
	key := make([]bus.Column, len(names))
	for i, n := range names {
		key[i] = bus.Column{Name: n, Value: vals[i]}
	}
	return key, nil
}
