package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/capture"
)

// verifier holds what one Run needs: a connection to PostgreSQL (plain
// reads only) and the search engine.
type verifier struct {
	cfg  Config
	conn *pgx.Conn
	rr   *capture.RowReader
	es   engine
}

func newVerifier(ctx context.Context, cfg Config) (*verifier, error) {
	conn, err := pgx.Connect(ctx, cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	rr, err := capture.NewRowReader(ctx, conn)
	if err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return &verifier{cfg: cfg, conn: conn, rr: rr, es: engine{es: cfg.ES}}, nil
}

func (v *verifier) close() { v.conn.Close(context.Background()) }

// tables lists the tables to check as "schema.table".
func (v *verifier) tables(ctx context.Context) ([]string, error) {
	if len(v.cfg.Tables) > 0 {
		out := make([]string, len(v.cfg.Tables))
		for i, t := range v.cfg.Tables {
			s, n, err := bus.ParseTable(t)
			if err != nil {
				return nil, fmt.Errorf("table %w", err)
			}
			out[i] = s + "." + n
		}
		return out, nil
	}
	rows, err := v.conn.Query(ctx, `SELECT schemaname || '.' || tablename FROM pg_catalog.pg_publication_tables
		WHERE pubname = $1 AND NOT (schemaname = 'public' AND tablename IN ($2, $3)) ORDER BY 1`,
		v.cfg.Publication, capture.WatermarkTable, capture.OwnersTable)
	if err != nil {
		return nil, fmt.Errorf("list the tables of publication %s: %w", v.cfg.Publication, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list the tables of publication %s: %w", v.cfg.Publication, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("publication %s has no tables (is walsearch set up on this database?)", v.cfg.Publication)
	}
	return names, nil
}

// docRef names a document.
type docRef struct{ index, id string }

// expectedDoc is a document a row should have.
type expectedDoc struct {
	source []byte
	key    []string
}

// candidate is a document that differed and is checked again.
type candidate struct {
	ref docRef
	key []string // the row's key as PostgreSQL prints it; nil if unknown
}

// checkTable compares one table with its index.
func (v *verifier) checkTable(ctx context.Context, name string) TableReport {
	began := time.Now()
	schema, table, _ := bus.ParseTable(name) // "schema.table", from tables()
	tr := TableReport{Table: name, Index: v.cfg.Alias(bus.IndexName(schema, table))}
	cands, err := v.scan(ctx, schema, table, &tr)
	if err == nil {
		err = v.settle(ctx, schema, table, cands, &tr)
	}
	if err != nil {
		tr.Error = err.Error()
	}
	tr.Duration = time.Since(began)
	return tr
}

// scan reads the table chunk by chunk and collects the documents that
// differ at first sight, then the index's documents no row accounts for.
func (v *verifier) scan(ctx context.Context, schema, table string, tr *TableReport) ([]candidate, error) {
	t, err := v.rr.Table(ctx, schema, table)
	if err != nil {
		return nil, err
	}
	if !t.Chunkable() {
		return nil, fmt.Errorf("%s.%s has no primary key (or replica identity index): its documents have no stable ids to check", schema, table)
	}
	var estimate int64
	_ = v.conn.QueryRow(ctx, `SELECT greatest(reltuples, 0)::int8 FROM pg_catalog.pg_class WHERE oid = to_regclass($1)`,
		pgx.Identifier{schema, table}.Sanitize()).Scan(&estimate)
	seen := make(map[string]struct{})
	var cands []candidate
	var after []string
	began := time.Now()
	// The documents of one chunk are fetched and compared while the next
	// chunk is read: PostgreSQL and the engine work at the same time. One
	// comparison is in flight at a time; it alone appends to cands until
	// its result is received.
	compared := make(chan error, 1)
	inFlight := false
	wait := func() error {
		if !inFlight {
			return nil
		}
		inFlight = false
		return <-compared
	}
	defer func() { _ = wait() }()
	for {
		start := time.Now()
		var rows []capture.Row
		n, err := v.rr.ReadChunk(ctx, t, after, v.cfg.ChunkRows, func(r capture.Row) error {
			rows = append(rows, r)
			return nil
		})
		if err != nil {
			return nil, err
		}
		tr.Rows += uint64(n)
		if n > 0 {
			after = rows[n-1].Key
		}
		exp, err := v.expected(ctx, rows, tr.Index, seen)
		if err != nil {
			return nil, err
		}
		tr.Documents += uint64(len(exp))
		if err := wait(); err != nil {
			return nil, err
		}
		inFlight = true
		go func() {
			act, err := v.indexedDocs(ctx, refsOf(exp))
			for ref, e := range exp {
				if a := act[ref]; err == nil && (!a.found || !sameDoc(e.source, a.source)) {
					cands = append(cands, candidate{ref: ref, key: e.key})
				}
			}
			compared <- err
		}()
		if v.cfg.Progress != nil {
			rate := float64(tr.Rows) / max(time.Since(began).Seconds(), 1e-9)
			v.cfg.Progress(Progress{Table: tr.Table, Rows: tr.Rows, Total: uint64(max(estimate, int64(tr.Rows))), RowsPerSecond: rate})
		}
		if n < v.cfg.ChunkRows {
			break
		}
		if err := v.throttle(ctx, n, start); err != nil {
			return nil, err
		}
	}
	if err := wait(); err != nil {
		return nil, err
	}
	err = v.es.scanIDs(ctx, tr.Index, v.cfg.ChunkRows, func(ids []string) error {
		for _, id := range ids {
			if _, ok := seen[id]; !ok {
				cands = append(cands, candidate{ref: docRef{tr.Index, id}, key: parseID(t, id)})
			}
		}
		return nil
	})
	return cands, err
}

// throttle waits so that reading n rows took at least n/Rate seconds.
func (v *verifier) throttle(ctx context.Context, n int, start time.Time) error {
	if v.cfg.Rate <= 0 {
		return nil
	}
	wait := time.Duration(float64(n)/v.cfg.Rate*float64(time.Second)) - time.Since(start)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// expected runs rows through the scripts, or, for a definition's root,
// rebuilds their documents as the pipeline does. Every id of index a row
// accounts for is added to seen, also when its script failed (its change
// is then dead-lettered, which GET /status reports).
func (v *verifier) expected(ctx context.Context, rows []capture.Row, index string, seen map[string]struct{}) (map[docRef]expectedDoc, error) {
	out := make(map[docRef]expectedDoc, len(rows))
	add := func(r capture.Row, docs []*bus.Doc) {
		for _, d := range docs {
			if d.Op != bus.DocIndex {
				continue
			}
			ref := docRef{v.cfg.Alias(d.Index), d.ID}
			if ref.index == index {
				seen[d.ID] = struct{}{}
			}
			out[ref] = expectedDoc{source: d.Source, key: r.Key}
		}
	}
	if len(rows) > 0 && v.cfg.Documents != nil {
		name := rows[0].Change.Schema + "." + rows[0].Change.Table
		if v.cfg.Documents.IsRoot(name) {
			keys := make([][]bus.Column, len(rows))
			texts := make([][]string, len(rows))
			for i, r := range rows {
				keys[i], texts[i] = r.Change.Key, r.Key
				seen[bus.DocumentID(r.Change.Key)] = struct{}{}
			}
			docs, failed, err := v.cfg.Documents.Read(ctx, v.conn, name, keys, texts)
			if err != nil {
				return nil, err
			}
			for _, r := range rows {
				id := bus.DocumentID(r.Change.Key)
				if err := failed[id]; err != nil {
					v.cfg.Logger.Warn("the transform script fails on a document: it is not checked", "table", name, "id", id, "error", err)
					continue
				}
				add(r, docs[id])
			}
			return out, nil
		}
	}
	for _, r := range rows {
		seen[bus.DocumentID(r.Change.Key)] = struct{}{}
		docs, err := v.cfg.Scripts.Map(r.Change)
		if err != nil {
			v.cfg.Logger.Warn("the transform script fails on a row: its document is not checked",
				"table", r.Change.Schema+"."+r.Change.Table, "id", bus.DocumentID(r.Change.Key), "error", err)
			continue
		}
		add(r, docs)
	}
	return out, nil
}

func refsOf(m map[docRef]expectedDoc) []docRef {
	out := make([]docRef, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	return out
}

// indexedDocs fetches documents, grouped by index.
func (v *verifier) indexedDocs(ctx context.Context, refs []docRef) (map[docRef]indexed, error) {
	byIndex := map[string][]string{}
	for _, r := range refs {
		byIndex[r.index] = append(byIndex[r.index], r.id)
	}
	out := make(map[docRef]indexed, len(refs))
	for index, ids := range byIndex {
		for chunk := range slices.Chunk(ids, max(v.cfg.ChunkRows, 1)) {
			got, err := v.es.mget(ctx, index, chunk)
			if err != nil {
				return nil, err
			}
			for id, d := range got {
				out[docRef{index, id}] = d
			}
		}
	}
	return out, nil
}

// parseID recovers a row's key from a document id (see bus.DocumentID): a
// single-column key is its value, a composite key a JSON array of them.
func parseID(t *capture.Table, id string) []string {
	n := len(t.KeyColumns())
	if n == 1 {
		return []string{id}
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(id)))
	dec.UseNumber()
	var vals []any
	if dec.Decode(&vals) != nil || len(vals) != n {
		return nil
	}
	out := make([]string, n)
	for i, v := range vals {
		switch x := v.(type) {
		case string:
			out[i] = x
		case json.Number:
			out[i] = x.String()
		case bool:
			out[i] = fmt.Sprint(x)
		default:
			return nil
		}
	}
	return out
}
