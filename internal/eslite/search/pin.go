package search

import (
	"sync"

	index "github.com/blevesearch/bleve_index_api"
)

// Pinned keeps one published view of an Index open after later refreshes
// replace it, so that a scroll or a point in time keeps searching the data as
// it was when it was opened. Every Pinned must be released; until then the
// view's segments stay in memory and on disk.
type Pinned struct {
	ix       *Index
	p        *pubReader
	released bool // guarded by ix.pubMu
	once     sync.Once
}

// Pin holds the view searches read now.
func (ix *Index) Pin() (*Pinned, error) {
	ix.pubMu.Lock()
	defer ix.pubMu.Unlock()
	if ix.pub == nil {
		return nil, ErrClosed
	}
	ix.pub.refs++
	return &Pinned{ix: ix, p: ix.pub}, nil
}

// Release lets the view go once no search reads it any more. It is
// idempotent.
func (p *Pinned) Release() {
	p.once.Do(func() {
		p.ix.pubMu.Lock()
		p.released = true
		p.ix.pubMu.Unlock()
		_ = p.ix.release(p.p)
	})
}

// acquire returns the pinned reader for one search and the function that
// ends that search's use of it.
func (p *Pinned) acquire() (index.IndexReader, func(), error) {
	p.ix.pubMu.Lock()
	defer p.ix.pubMu.Unlock()
	if p.released {
		return nil, nil, ErrClosed
	}
	p.p.refs++
	var once sync.Once
	return p.p.r, func() { once.Do(func() { _ = p.ix.release(p.p) }) }, nil
}
