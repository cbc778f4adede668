package eslite

import (
	"sync"
	"time"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// docEntry is the realtime state of one id: a live document or a delete
// tombstone. Entries are immutable once published in index.docs.
type docEntry struct {
	version   int64
	seqNo     int64
	deleted   bool
	deletedAt int64 // unix milliseconds; tombstones only
	// source is the document's _source. With a store it is nil once the
	// entry is published: the store holds it and index.get reads it there.
	source []byte
	srcLen int // len of the _source, wherever it is kept
}

// aliasMeta is what Elasticsearch stores for an alias on one index.
type aliasMeta struct {
	IsWriteIndex *bool `json:"is_write_index,omitempty"`
}

// tombstoneRef queues a tombstone for pruning once gc_deletes has passed.
type tombstoneRef struct {
	id        string
	seqNo     int64
	deletedAt int64
}

// index is one Elasticsearch index: metadata guarded by Engine.mu, and the
// document store guarded by its own mu.
type index struct {
	name     string
	uuid     string
	created  time.Time
	settings settings             // guarded by Engine.mu
	aliases  map[string]aliasMeta // guarded by Engine.mu

	mu      sync.RWMutex
	mapping *search.Mapping
	docs    map[string]*docEntry
	seqNo   int64                // last assigned sequence number, -1 before the first write
	pending map[string]search.Op // writes not yet visible to search, by id
	staged  bool                 // writes indexed but not yet visible to search
	// stageSteps counts the indexing steps started ahead of refreshes.
	stageSteps int
	// pendingSince is when the oldest write in pending was queued (zero
	// while pending is empty).
	pendingSince time.Time
	tombstones   []tombstoneRef // in delete order
	liveDocs     int64
	liveBytes    int64 // total _source bytes of live documents
	deleted      bool  // the index was deleted; writes must not touch the store

	search *search.Index
	store  *store // nil in memory; then docs keep their _source

	// refreshMu serialises refreshes so that Apply sees writes in order.
	refreshMu   sync.Mutex
	visMu       sync.Mutex
	visible     int64         // highest seq_no visible to search
	visibleCh   chan struct{} // closed and replaced on every refresh
	lastRefresh time.Time     // guarded by visMu
}

func newIndex(name, uuid string, created time.Time, s settings, m *search.Mapping, six *search.Index) *index {
	return &index{
		name:      name,
		uuid:      uuid,
		created:   created,
		settings:  s,
		aliases:   map[string]aliasMeta{},
		mapping:   m,
		docs:      map[string]*docEntry{},
		seqNo:     -1,
		pending:   map[string]search.Op{},
		search:    six,
		visible:   -1,
		visibleCh: make(chan struct{}),
	}
}

// current returns the entry for id that a write must check against, treating
// a tombstone older than gc_deletes as absent. overlay holds this batch's
// earlier writes. Caller holds ix.mu.
func (ix *index) current(overlay map[string]*docEntry, id string, now time.Time, gc time.Duration) *docEntry {
	e, ok := overlay[id]
	if !ok {
		e = ix.docs[id]
	}
	if e != nil && e.deleted && now.UnixMilli()-e.deletedAt > gc.Milliseconds() {
		return nil
	}
	return e
}

// get returns the live document for id with its _source, or nil.
func (ix *index) get(id string) (*docEntry, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	e := ix.docs[id]
	if e == nil || e.deleted {
		return nil, nil
	}
	return ix.withSource(id, e)
}

// withSource returns e, or a copy of it carrying the _source read from the
// store. Reading under ix.mu keeps the two consistent: a write commits to
// the store and publishes under ix.mu. Caller holds ix.mu.
func (ix *index) withSource(id string, e *docEntry) (*docEntry, error) {
	if e.deleted || e.source != nil || ix.store == nil {
		return e, nil
	}
	src, err := ix.store.source(ix.uuid, id)
	if err != nil {
		return nil, err
	}
	c := *e
	c.source = src
	return &c, nil
}

func (ix *index) docCount() int64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.liveDocs
}

// target is the search view of the index.
func (ix *index) target(maxResultWindow int) search.Target {
	ix.mu.RLock()
	m := ix.mapping
	ix.mu.RUnlock()
	return search.Target{Name: ix.name, Index: ix.search, Mapping: m, MaxResultWindow: maxResultWindow}
}
