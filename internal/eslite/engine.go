package eslite

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// Engine is an embedded Elasticsearch-compatible node. It is safe for
// concurrent use. Open starts one background refresher; Close stops it,
// flushes and releases everything.
type Engine struct {
	cfg         Config
	log         *slog.Logger
	store       *store                           // nil when in memory
	clock       atomic.Pointer[func() time.Time] // nil = time.Now; tests replace it
	stageAt     int                              // defaultStageAt; tests lower it
	nodeName    string
	clusterUUID string

	// ctxs holds open scrolls and points in time, at most maxScrolls and
	// maxPITs of them; reapInterval is how often expired ones are freed.
	ctxs         contexts
	maxScrolls   int
	maxPITs      int
	reapInterval time.Duration

	mu      sync.RWMutex // guards indices and every index's settings and aliases
	indices map[string]*index
	closed  bool

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open validates cfg, loads what Dir holds (replaying into each search index
// the writes it had not applied yet) and starts the background refresher.
func Open(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validate config: %w", err)
	}
	e := &Engine{
		cfg:      cfg,
		log:      cfg.logger(),
		nodeName: "eslite",
		stageAt:  defaultStageAt,
		indices:  map[string]*index{},
		stop:     make(chan struct{}),

		maxScrolls:   DefaultMaxOpenScrollContexts,
		maxPITs:      DefaultMaxOpenPITContexts,
		reapInterval: defaultReapInterval,
	}
	e.clusterUUID = newUUID()
	if cfg.Dir != "" {
		st, err := openStore(cfg.Dir)
		if err != nil {
			return nil, err
		}
		e.store = st
		if e.clusterUUID, err = st.clusterUUID(e.clusterUUID); err != nil {
			st.close()
			return nil, fmt.Errorf("load cluster uuid: %w", err)
		}
		if err := e.load(); err != nil {
			e.closeIndices()
			st.close()
			return nil, err
		}
	}
	e.wg.Add(2)
	go e.refresher()
	go e.reapContexts()
	return e, nil
}

// load reopens every stored index and brings its search index up to date.
func (e *Engine) load() error {
	metas, err := e.store.loadMetas()
	if err != nil {
		return fmt.Errorf("load indices: %w", err)
	}
	for _, m := range metas {
		if err := e.loadIndex(m); err != nil {
			return fmt.Errorf("load index %s: %w", m.Name, err)
		}
	}
	return nil
}

func (e *Engine) loadIndex(m indexMeta) error {
	mapping, err := search.ParseMapping(m.Mapping)
	if err != nil {
		return fmt.Errorf("parse stored mapping: %w", err)
	}
	six, err := search.OpenIndex(e.indexDir(m.UUID), mapping.Clone())
	if err != nil {
		return fmt.Errorf("open search index: %w", err)
	}
	ix := newIndex(m.Name, m.UUID, time.UnixMilli(m.Created), m.Settings, mapping, six)
	ix.store = e.store
	if m.Aliases != nil {
		ix.aliases = m.Aliases
	}
	e.indices[m.Name] = ix // so that a failure below still closes six

	checkpoint := int64(six.Checkpoint()) // the next sequence number search has not seen
	var replay []search.Op
	seqNo, err := e.store.loadDocs(m.UUID, func(id string, d *docEntry) {
		d.srcLen = len(d.source)
		ix.docs[id] = d
		if d.deleted {
			ix.tombstones = append(ix.tombstones, tombstoneRef{id: id, seqNo: d.seqNo, deletedAt: d.deletedAt})
		} else {
			ix.liveDocs++
			ix.liveBytes += int64(d.srcLen)
		}
		if d.seqNo >= checkpoint {
			replay = append(replay, search.Op{ID: id})
		} else {
			d.source = nil // read from the store when needed
		}
	})
	if err != nil {
		return err
	}
	ix.seqNo = seqNo
	sort.Slice(ix.tombstones, func(i, j int) bool { return ix.tombstones[i].deletedAt < ix.tombstones[j].deletedAt })
	for i := range replay {
		d := ix.docs[replay[i].ID]
		if d.deleted {
			continue
		}
		doc, _, err := mapping.Prepare(replay[i].ID, d.source)
		if err != nil {
			return fmt.Errorf("prepare stored document %q: %w", replay[i].ID, err)
		}
		replay[i].Doc = doc
	}
	if checkpoint <= seqNo {
		// The search index missed writes (a crash lost its last batches).
		// Tombstones pruned since may have been among them, so drop every
		// searchable id the store no longer has.
		ghosts, err := e.ghostIDs(ix, six, mapping)
		if err != nil {
			return err
		}
		for _, id := range ghosts {
			replay = append(replay, search.Op{ID: id})
		}
	}
	for _, op := range replay {
		if d := ix.docs[op.ID]; d != nil {
			d.source = nil
		}
	}
	if len(replay) > 0 {
		if err := six.Apply(replay, uint64(seqNo+1)); err != nil {
			return fmt.Errorf("replay %d writes: %w", len(replay), err)
		}
		e.log.Info("replayed writes into search index", "index", m.Name, "ops", len(replay))
	}
	ix.visible = seqNo
	ix.mapping = mapping
	six.SetMapping(mapping)
	return nil
}

// ghostIDs lists ids the search index holds that the store does not.
func (e *Engine) ghostIDs(ix *index, six *search.Index, m *search.Mapping) ([]string, error) {
	t := search.Target{Name: ix.name, Index: six, Mapping: m, MaxResultWindow: DefaultMaxResultWindow}
	ids, err := search.MatchingIDs(context.Background(), t, []byte(`{"query":{"match_all":{}}}`), e.searchOptions())
	if err != nil {
		return nil, fmt.Errorf("list searchable ids: %w", err)
	}
	var ghosts []string
	for _, id := range ids {
		if _, ok := ix.docs[id]; !ok {
			ghosts = append(ghosts, id)
		}
	}
	return ghosts, nil
}

func (e *Engine) indexDir(uuid string) string {
	if e.cfg.Dir == "" {
		return ""
	}
	return filepath.Join(e.cfg.Dir, "indices", uuid)
}

func (e *Engine) meta(ix *index) (indexMeta, error) {
	ix.mu.RLock()
	raw, err := ix.mapping.MarshalJSON()
	ix.mu.RUnlock()
	if err != nil {
		return indexMeta{}, fmt.Errorf("encode mapping: %w", err)
	}
	aliases := make(map[string]aliasMeta, len(ix.aliases))
	for k, v := range ix.aliases {
		aliases[k] = v
	}
	return indexMeta{Name: ix.name, UUID: ix.uuid, Created: ix.created.UnixMilli(),
		Settings: ix.settings, Mapping: raw, Aliases: aliases}, nil
}

// persistMeta stores the metadata of the given indices atomically. Caller
// holds e.mu.
func (e *Engine) persistMeta(ixs ...*index) error {
	if e.store == nil {
		return nil
	}
	metas := make([]indexMeta, 0, len(ixs))
	for _, ix := range ixs {
		m, err := e.meta(ix)
		if err != nil {
			return err
		}
		metas = append(metas, m)
	}
	if err := e.store.putMetas(metas...); err != nil {
		return fmt.Errorf("persist index metadata: %w", err)
	}
	return nil
}

// createIndex creates a new index. Caller holds e.mu for writing.
func (e *Engine) createIndex(name string, s settings, mapping *search.Mapping, aliases map[string]aliasMeta) (*index, error) {
	if err := validateIndexName(name); err != nil {
		return nil, err
	}
	if ix, ok := e.indices[name]; ok {
		return nil, errAlreadyExists(name, ix.uuid)
	}
	for _, ix := range e.indices {
		if _, ok := ix.aliases[name]; ok {
			return nil, errInvalidIndexName(name, "already exists as alias")
		}
	}
	if mapping == nil {
		mapping, _ = search.ParseMapping(nil)
	}
	uuid := newUUID()
	six, err := search.OpenIndex(e.indexDir(uuid), mapping.Clone())
	if err != nil {
		return nil, fmt.Errorf("open search index: %w", err)
	}
	ix := newIndex(name, uuid, e.now(), s, mapping, six)
	ix.store = e.store
	for k, v := range aliases {
		ix.aliases[k] = v
	}
	if err := e.persistMeta(ix); err != nil {
		six.Close()
		os.RemoveAll(e.indexDir(uuid))
		return nil, err
	}
	e.indices[name] = ix
	e.log.Info("created index", "index", name, "uuid", uuid)
	return ix, nil
}

// deleteIndex removes an index and everything it holds. Caller holds e.mu
// for writing.
func (e *Engine) deleteIndex(ix *index) error {
	ix.mu.Lock()
	ix.deleted = true
	ix.mu.Unlock()
	delete(e.indices, ix.name)
	e.freeContextsOf(ix)
	var errs []error
	if e.store != nil {
		if err := e.store.deleteIndex(ix.name, ix.uuid); err != nil {
			errs = append(errs, fmt.Errorf("delete stored index: %w", err))
		}
	}
	ix.refreshMu.Lock()
	if err := ix.search.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close search index: %w", err))
	}
	ix.refreshMu.Unlock()
	if dir := e.indexDir(ix.uuid); dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove index dir: %w", err))
		}
	}
	e.log.Info("deleted index", "index", ix.name, "uuid", ix.uuid)
	return errors.Join(errs...)
}

// Close stops the refresher and releases the search indices and the store.
// Every acknowledged write is already durable in the store. Close is
// idempotent.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		close(e.stop)
		e.wg.Wait()
		e.freeContexts(func(*readerContext) bool { return true })
		errs := []error{e.closeIndices()}
		if e.store != nil {
			if err := e.store.close(); err != nil {
				errs = append(errs, fmt.Errorf("close store: %w", err))
			}
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

func (e *Engine) closeIndices() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for _, ix := range e.indices {
		ix.refreshMu.Lock()
		if err := ix.search.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close search index %s: %w", ix.name, err))
		}
		ix.refreshMu.Unlock()
	}
	return errors.Join(errs...)
}

// now is the engine's clock.
func (e *Engine) now() time.Time {
	if f := e.clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// newUUID returns a random identifier in Elasticsearch's style: 22 url-safe
// base64 characters.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newDocID returns an auto-generated document id: 20 url-safe base64
// characters, like Elasticsearch's.
func newDocID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
