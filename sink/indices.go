package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/bus"
)

// DefaultGCDeletes is index.gc_deletes on indices the sink creates, unless
// configured: how long Elasticsearch remembers the version of a deleted
// document. docs/delivery.md explains the choice.
const DefaultGCDeletes = "1h"

// DefaultSchemaRecheck is how often the sink looks for new columns in the
// stored table schemas of the indices it writes to.
const DefaultSchemaRecheck = 10 * time.Second

// maxOtherFields bounds how many top-level document fields that are not
// columns (added by a transform script) the sink remembers per index. Past
// it, new columns are found by the periodic schema recheck only.
const maxOtherFields = 1024

// IndexConfig overrides how the index of one table (or script-chosen index)
// is created. The sink's Config.Indices is keyed like document index names:
// "users" for public.users, "schema.table" otherwise.
type IndexConfig struct {
	// Index is the alias documents are written to and searched through,
	// instead of AliasName(key).
	Index string `koanf:"index" help:"alias the table's documents are written to and searched through, instead of the default name"`
	// Settings are added to (and override) the defaults, e.g.
	// {"number_of_shards": 3}.
	Settings map[string]any `koanf:"settings" help:"index settings added to (and overriding) the defaults, e.g. number_of_shards: 3"`
	// Mappings are merged over the mapping derived from the column types: a
	// field given here replaces the derived one; other keys (dynamic,
	// _source, ...) are used as they are.
	Mappings map[string]any `koanf:"mappings" help:"mappings merged over the one derived from the column types: a field given here replaces the derived one"`
}

// managed is what the sink knows about one index name.
type managed struct {
	name  string // the document index name
	alias string
	// write is the concrete index the alias writes to (the alias itself for
	// a legacy concrete index without an alias).
	write string
	// table is the origin whose schema drives the mapping, or nil.
	table *bus.TableSchema
	// checked is when the stored schema was last looked at.
	checked time.Time
	// columns are the names of table's columns; others are top-level
	// document fields seen that are not columns of table. A document field
	// in neither means the table may have a new column.
	columns, others map[string]bool
	// shadow is the index a running reindex builds, written alongside the
	// alias; "" when none.
	shadow string
}

// indexManager creates and tracks the indices documents are written to.
type indexManager struct {
	s *Sink

	mu     sync.Mutex
	byName map[string]*managed
}

func newIndexManager(s *Sink) *indexManager {
	return &indexManager{s: s, byName: map[string]*managed{}}
}

// aliasFor returns the alias of the document index name.
func (m *indexManager) aliasFor(name string) string {
	if ic, ok := m.s.cfg.Indices[name]; ok && ic.Index != "" {
		return ic.Index
	}
	return AliasName(name)
}

// lookup returns the state of name if it is known.
func (m *indexManager) lookup(name string) *managed {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byName[name]
}

// forget drops what is known about name, so that the next write checks the
// index again (after it was deleted behind the sink's back).
func (m *indexManager) forget(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byName, name)
}

// names returns the document index names seen so far.
func (m *indexManager) names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.byName))
}

// shadowOf returns the index a reindex of name is building, or "".
func (m *indexManager) shadowOf(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.byName[name]; st != nil {
		return st.shadow
	}
	return ""
}

// setShadow starts (target != "") or stops dual writes of name to target.
func (m *indexManager) setShadow(name, target string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.byName[name]; st != nil {
		st.shadow = target
	}
}

// ensure makes sure the index of d exists, creating it (alias over a
// versioned index, mapping from the table's columns) on first sight, and
// returns its state. Transient failures are retried until ctx ends.
func (m *indexManager) ensure(ctx context.Context, d *bus.Doc) (*managed, error) {
	if st := m.lookup(d.Index); st != nil {
		if m.s.cfg.Schemas != nil && m.schemaMayHaveChanged(st, d) {
			m.recheck(ctx, st, d)
		}
		return st, nil
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := m.s.backoff(ctx, attempt); err != nil {
				return nil, err
			}
		}
		st, err := m.open(ctx, d)
		if err == nil {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.byName[d.Index] = st
			return st, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		m.s.transient(err.Error())
	}
}

// open finds or creates the index of d.
func (m *indexManager) open(ctx context.Context, d *bus.Doc) (*managed, error) {
	st := &managed{name: d.Index, alias: m.aliasFor(d.Index), checked: time.Now()}
	if d.Schema != "" && d.Table != "" && d.Index == bus.IndexName(d.Schema, d.Table) && m.s.cfg.Schemas != nil {
		ts, err := bus.GetTableSchema(ctx, m.s.cfg.Schemas, d.Schema, d.Table)
		if err != nil {
			m.s.log.Warn("table schema unreadable; using dynamic mapping", "index", d.Index, "error", err)
		}
		if ts == nil {
			// Not stored yet: look again later and add the columns then.
			ts = &bus.TableSchema{Schema: d.Schema, Table: d.Table}
		}
		st.setTable(ts)
	}
	for range 3 {
		write, found, err := m.writeIndexOf(ctx, st.alias)
		if err != nil {
			return nil, err
		}
		if found {
			st.write = write
			// Columns added while the sink was not running are mapped from
			// their types before any document carrying them is written.
			if st.table != nil && len(st.table.Columns) > 0 {
				if err := m.putNewColumns(ctx, write, m.derive(st, st.table)); err != nil {
					m.s.log.Warn("cannot add new columns to the mapping; dynamic mapping applies", "index", st.alias, "error", err)
				}
			}
			return st, nil
		}
		created, err := m.create(ctx, st, versionedName(st.alias, 1))
		if err != nil {
			return nil, err
		}
		if created {
			st.write = versionedName(st.alias, 1)
			m.s.log.Info("index created", "index", st.write, "alias", st.alias, "mapped_columns", len(m.derive(st, st.table)))
			return st, nil
		}
		// Someone else created it meanwhile: look again.
	}
	return nil, fmt.Errorf("create index %s: it keeps appearing and disappearing", st.alias)
}

// writeIndexOf returns the write index of alias, or alias itself when it is
// a concrete index; found is false when neither exists.
func (m *indexManager) writeIndexOf(ctx context.Context, alias string) (string, bool, error) {
	status, body, err := m.s.call(ctx, esapi.IndicesGetAliasRequest{Name: []string{alias}})
	if err != nil {
		return "", false, err
	}
	if status == http.StatusOK {
		var got map[string]struct {
			Aliases map[string]struct {
				IsWriteIndex *bool `json:"is_write_index"`
			} `json:"aliases"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			return "", false, fmt.Errorf("read alias %s: %w", alias, err)
		}
		var only, write string
		for idx, a := range got {
			only = idx
			if w := a.Aliases[alias].IsWriteIndex; w != nil && *w {
				write = idx
			}
		}
		if write == "" && len(got) == 1 {
			write = only
		}
		if write == "" {
			return "", false, fmt.Errorf("alias %s points to %d indices and none is its write index", alias, len(got))
		}
		return write, true, nil
	}
	if status != http.StatusNotFound {
		return "", false, fmt.Errorf("read alias %s: HTTP %d: %s", alias, status, truncate(body, 300))
	}
	status, body, err = m.s.call(ctx, esapi.IndicesExistsRequest{Index: []string{alias}})
	if err != nil {
		return "", false, err
	}
	switch status {
	case http.StatusOK:
		m.s.log.Warn("index is a plain index, not an alias; walsearch reindex turns it into one", "index", alias)
		return alias, true, nil
	case http.StatusNotFound:
		return "", false, nil
	}
	return "", false, fmt.Errorf("check index %s: HTTP %d: %s", alias, status, truncate(body, 300))
}

// indexBody is the PUT /<index> body for st: settings, mappings and, when
// withAlias, the alias with this index as its write index.
func (m *indexManager) indexBody(st *managed, withAlias bool) []byte {
	ic := m.s.cfg.Indices[st.name]
	settings := map[string]any{}
	maps.Copy(settings, ic.Settings)
	if !mentions(settings, "gc_deletes") {
		settings["index.gc_deletes"] = DefaultGCDeletes
	}
	body := map[string]any{
		"settings": settings,
		"mappings": buildMappings(m.derive(st, st.table), ic.Mappings),
	}
	if withAlias {
		body["aliases"] = map[string]any{st.alias: map[string]any{"is_write_index": true}}
	}
	b, _ := json.Marshal(body)
	return b
}

// create creates index for st (with the alias when it is the first
// generation). created is false when it already existed.
func (m *indexManager) create(ctx context.Context, st *managed, index string) (created bool, err error) {
	body := m.indexBody(st, generation(st.alias, index) == 1)
	status, rb, err := m.s.call(ctx, esapi.IndicesCreateRequest{Index: index, Body: bytes.NewReader(body)})
	if err != nil {
		return false, err
	}
	switch {
	case status < 300:
		return true, nil
	case status == http.StatusBadRequest && bytes.Contains(rb, []byte("resource_already_exists_exception")):
		return false, nil
	case status == http.StatusBadRequest || status == http.StatusConflict:
		// A configuration problem (bad settings or mappings): retried, so
		// that nothing is lost, and reported until it is fixed.
		return false, &IndexCreateError{Index: index, Status: status, Reason: truncate(rb, 1000)}
	}
	return false, fmt.Errorf("create index %s: HTTP %d: %s", index, status, truncate(rb, 300))
}

// derive returns the derived properties of ts's columns for st's index.
func (m *indexManager) derive(st *managed, ts *bus.TableSchema) map[string]any {
	return deriveProperties(ts, m.s.cfg.Indices[st.name].Mappings)
}

// setTable makes ts the schema st's mapping follows. Callers hold m.mu or
// own st alone.
func (st *managed) setTable(ts *bus.TableSchema) {
	st.table = ts
	st.columns = make(map[string]bool, len(ts.Columns))
	for _, c := range ts.Columns {
		st.columns[c.Name] = true
	}
	st.others = nil
}

// schemaMayHaveChanged reports whether st's index follows a table whose
// stored schema should be read again before d is written: periodically, and
// as soon as d has a top-level field that is neither a column nor a field
// already found not to be one. Such a field is usually a column just added;
// its schema was stored before the change was published, so reading it now
// maps the column from its type before the document reaches the engine,
// whose dynamic mapping would guess instead (float for every fractional
// number, for instance).
func (m *indexManager) schemaMayHaveChanged(st *managed, d *bus.Doc) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st.table == nil {
		return false
	}
	if time.Since(st.checked) > m.s.cfg.SchemaRecheck {
		return true
	}
	if d.Op != bus.DocIndex || len(st.others) >= maxOtherFields {
		return false
	}
	found := false
	bus.ObjectKeys(d.Source, func(k []byte) bool {
		found = !st.columns[string(k)] && !st.others[string(k)]
		return !found
	})
	return found
}

// recheck adds the columns that appeared in the table's stored schema since
// the index was created (or last checked) to its mapping, before d (which
// may carry one of them) is written. Failures are logged; dynamic mapping
// covers new fields meanwhile.
func (m *indexManager) recheck(ctx context.Context, st *managed, d *bus.Doc) {
	m.mu.Lock()
	st.checked = time.Now()
	old := st.table
	m.mu.Unlock()
	defer m.rememberOthers(st, d)
	ts, err := bus.GetTableSchema(ctx, m.s.cfg.Schemas, old.Schema, old.Table)
	if err != nil || ts == nil || sameColumns(old, ts) {
		return
	}
	if err := m.putNewColumns(ctx, st.alias, m.derive(st, ts)); err != nil {
		m.s.log.Warn("cannot add new columns to the mapping; dynamic mapping applies", "index", st.alias, "error", err)
		return
	}
	m.mu.Lock()
	st.setTable(ts)
	m.mu.Unlock()
}

// rememberOthers records the top-level fields of d that are not columns of
// st's table as it now stands, so that they do not send every later document
// to the stored schema again.
func (m *indexManager) rememberOthers(st *managed, d *bus.Doc) {
	if d.Op != bus.DocIndex {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	bus.ObjectKeys(d.Source, func(k []byte) bool {
		if !st.columns[string(k)] {
			if st.others == nil {
				st.others = map[string]bool{}
			}
			st.others[string(k)] = true
		}
		return len(st.others) < maxOtherFields
	})
}

func sameColumns(a, b *bus.TableSchema) bool {
	return slices.EqualFunc(a.Columns, b.Columns, func(x, y bus.ColumnSchema) bool {
		return x.Name == y.Name && x.Type == y.Type && x.Array == y.Array
	})
}

// putNewColumns maps the derived fields that target does not map yet.
func (m *indexManager) putNewColumns(ctx context.Context, target string, derived map[string]any) error {
	status, body, err := m.s.call(ctx, esapi.IndicesGetMappingRequest{Index: []string{target}})
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("read mapping of %s: HTTP %d: %s", target, status, truncate(body, 300))
	}
	var got map[string]struct {
		Mappings struct {
			Properties map[string]any `json:"properties"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		return fmt.Errorf("read mapping of %s: %w", target, err)
	}
	current := map[string]any{}
	for _, g := range got {
		maps.Copy(current, g.Mappings.Properties)
	}
	add := newProperties(derived, current)
	if len(add) == 0 {
		return nil
	}
	b, _ := json.Marshal(map[string]any{"properties": add})
	status, body, err = m.s.call(ctx, esapi.IndicesPutMappingRequest{Index: []string{target}, Body: bytes.NewReader(b)})
	if err != nil {
		return err
	}
	if status >= 300 {
		return fmt.Errorf("put mapping of %s: HTTP %d: %s", target, status, truncate(body, 300))
	}
	m.s.log.Info("mapping extended with new columns", "index", target, "fields", slices.Sorted(maps.Keys(add)))
	return nil
}

// mentions reports whether settings set key, flat ("index.key") or nested.
func mentions(settings map[string]any, key string) bool {
	for k, v := range settings {
		if k == key || strings.HasSuffix(k, "."+key) {
			return true
		}
		if sub, ok := v.(map[string]any); ok && mentions(sub, key) {
			return true
		}
	}
	return false
}

// call performs one request within the client's timeout and returns its
// status and body.
func (s *Sink) call(ctx context.Context, req esapi.Request) (int, []byte, error) {
	rctx, cancel := context.WithTimeout(ctx, s.es.Timeout())
	defer cancel()
	res, err := req.Do(rctx, s.es)
	if err != nil {
		return 0, nil, fmt.Errorf("elasticsearch request: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("elasticsearch response: %w", err)
	}
	if err := s.es.AuthError(res.StatusCode, body); err != nil {
		return res.StatusCode, body, err // retried like an outage, reported as what to fix
	}
	return res.StatusCode, body, nil
}
