package search

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/index/scorch"
	blevemapping "github.com/blevesearch/bleve/v2/mapping"
	index "github.com/blevesearch/bleve_index_api"
)

// Reserved bleve field names.
const (
	fieldSource     = "_source"
	fieldFieldNames = "_field_names"
)

// checkpointKey is where the engine's applied sequence number is kept, written in
// the same bleve batch as the documents it covers.
var checkpointKey = []byte("eslite_checkpoint")

// Index is the searchable (refreshed) view of one concrete index. Apply makes
// operations visible to Search at once; near-real-time behaviour is the engine's job.
// An Index is safe for concurrent use.
type Index struct {
	bi       bleve.Index
	keyword  analysis.Analyzer
	mu       sync.RWMutex
	mapping  *Mapping
	ckpt     uint64
	closed   bool
	bm25Type string
}

// OpenIndex opens or creates the bleve index in dir; dir == "" keeps it in memory.
func OpenIndex(dir string, m *Mapping) (*Index, error) {
	var (
		bi  bleve.Index
		err error
	)
	im := blevemapping.NewIndexMapping()
	im.ScoringModel = index.BM25Scoring
	im.DefaultMapping.Dynamic = false
	switch {
	case dir == "":
		bi, err = bleve.NewUsing("", im, scorch.Name, scorch.Name, nil)
	default:
		if _, statErr := os.Stat(filepath.Join(dir, "index_meta.json")); statErr == nil {
			bi, err = bleve.Open(dir)
		} else {
			bi, err = bleve.NewUsing(dir, im, scorch.Name, scorch.Name, nil)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open search index %q: %w", dir, err)
	}
	ix := &Index{bi: bi, keyword: keywordAnalyzer(), mapping: m, bm25Type: index.BM25Scoring}
	raw, err := bi.GetInternal(checkpointKey)
	if err != nil {
		_ = bi.Close()
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	if len(raw) == 8 {
		ix.ckpt = binary.BigEndian.Uint64(raw)
	}
	return ix, nil
}

// Op is one refreshed change: Doc == nil deletes ID.
type Op struct {
	ID  string
	Doc *Document
}

// ErrClosed is returned by operations on a closed Index.
var ErrClosed = errors.New("search index closed")

// Apply indexes and deletes documents in one bleve batch and stores checkpoint
// (the engine's sequence number the batch brings the index up to) with it.
func (ix *Index) Apply(ops []Op, checkpoint uint64) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return ErrClosed
	}
	b := ix.bi.NewBatch()
	for _, op := range ops {
		if op.Doc == nil {
			b.Delete(op.ID)
			continue
		}
		if err := b.IndexAdvanced(ix.bleveDoc(op.ID, op.Doc)); err != nil {
			return fmt.Errorf("index document %q: %w", op.ID, err)
		}
	}
	var ck [8]byte
	binary.BigEndian.PutUint64(ck[:], checkpoint)
	b.SetInternal(checkpointKey, ck[:])
	if err := ix.bi.Batch(b); err != nil {
		return fmt.Errorf("apply batch: %w", err)
	}
	ix.ckpt = checkpoint
	return nil
}

func (ix *Index) bleveDoc(id string, d *Document) *document.Document {
	doc := document.NewDocument(id)
	for _, v := range d.values {
		switch v.kind {
		case vText:
			doc.AddField(document.NewTextFieldCustom(v.path, nil, []byte(v.str),
				index.IndexField|index.IncludeTermVectors, v.an))
		case vKeyword:
			doc.AddField(document.NewTextFieldCustom(v.path, nil, []byte(v.str),
				index.IndexField|index.DocValues, ix.keyword))
		case vNumber:
			doc.AddField(document.NewNumericFieldWithIndexingOptions(v.path, nil, v.num,
				index.IndexField|index.DocValues))
		}
	}
	for _, n := range d.names {
		doc.AddField(document.NewTextFieldCustom(fieldFieldNames, nil, []byte(n), index.IndexField, ix.keyword))
	}
	doc.AddField(document.NewTextFieldCustom(fieldSource, nil, d.Source, index.StoreField, ix.keyword))
	return doc
}

// Checkpoint is the last checkpoint persisted (0 for a new or in-memory index).
func (ix *Index) Checkpoint() uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.ckpt
}

// SetMapping replaces the mapping used to interpret queries against this index.
func (ix *Index) SetMapping(m *Mapping) {
	ix.mu.Lock()
	ix.mapping = m
	ix.mu.Unlock()
}

// Mapping returns the mapping last set.
func (ix *Index) Mapping() *Mapping {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.mapping
}

// DocCount is the number of searchable documents.
func (ix *Index) DocCount() uint64 {
	n, err := ix.bi.DocCount()
	if err != nil {
		return 0
	}
	return n
}

// Close releases the index; further calls fail with ErrClosed.
func (ix *Index) Close() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return nil
	}
	ix.closed = true
	return ix.bi.Close()
}

// reader opens a point-in-time reader; the caller closes it.
func (ix *Index) reader() (index.IndexReader, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return nil, ErrClosed
	}
	adv, err := ix.bi.Advanced()
	if err != nil {
		return nil, fmt.Errorf("open reader: %w", err)
	}
	r, err := adv.Reader()
	if err != nil {
		return nil, fmt.Errorf("open reader: %w", err)
	}
	return r, nil
}
