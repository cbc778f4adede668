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

// formatKey holds the version of how documents are indexed, indexFormat. An
// index of another version is rebuilt from the engine's store when opened.
// Version 2 indexes whole-number fields as the numbers themselves (numTerm);
// version 3 indexes every long exactly (version 2 rounded a long past 2^53
// through a float64, so neighbours shared a term).
var formatKey = []byte("eslite_format")

const indexFormat = "3"

// Index is the searchable (refreshed) view of one concrete index. Apply makes
// operations visible to Search at once; near-real-time behaviour is the engine's job.
// An Index is safe for concurrent use.
type Index struct {
	bi       bleve.Index
	keyword  analysis.Analyzer
	mu       sync.RWMutex // guards bi writes, mapping, ckpt, closed
	mapping  *Mapping
	ckpt     uint64
	closed   bool
	bm25Type string

	// pub is the published point-in-time view that searches read. Stage
	// adds documents to bleve without changing it; Apply replaces it.
	pubMu sync.Mutex
	pub   *pubReader
}

// pubReader is a published reader shared by the searches using it; it is
// closed when it has been replaced and the last search has released it.
type pubReader struct {
	r    index.IndexReader
	refs int // guarded by Index.pubMu; 1 for being published
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
	// The engine's store is what makes a write durable; this index is derived
	// data that the engine replays past its checkpoint after a crash. So a
	// batch need not wait for bleve to persist its segment (unsafe_batch):
	// bleve still persists in order, with the checkpoint of each batch.
	config := map[string]any{"unsafe_batch": true}
	existing := false
	if dir != "" {
		_, statErr := os.Stat(filepath.Join(dir, "index_meta.json"))
		existing = statErr == nil
	}
	if existing {
		bi, err = bleve.OpenUsing(dir, config)
	} else {
		bi, err = newBleveIndex(dir, im, config)
	}
	if err != nil {
		return nil, fmt.Errorf("open search index %q: %w", dir, err)
	}
	if existing {
		format, ferr := bi.GetInternal(formatKey)
		if ferr != nil {
			_ = bi.Close()
			return nil, fmt.Errorf("read search index format: %w", ferr)
		}
		if string(format) != indexFormat {
			// Written by an older eslite: start it again empty, with
			// checkpoint 0, so that the engine replays every document.
			if err := bi.Close(); err != nil {
				return nil, fmt.Errorf("close search index to rebuild it: %w", err)
			}
			if err := os.RemoveAll(dir); err != nil {
				return nil, fmt.Errorf("remove search index to rebuild it: %w", err)
			}
			if bi, err = newBleveIndex(dir, im, config); err != nil {
				return nil, fmt.Errorf("open search index %q: %w", dir, err)
			}
		}
	}
	ix := &Index{bi: bi, keyword: keywordAnalyzer(), mapping: m, bm25Type: index.BM25Scoring}
	if err := ix.publish(); err != nil {
		_ = bi.Close()
		return nil, err
	}
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

// newBleveIndex creates a bleve index holding indexFormat. On disk it is
// created with safe batches, so that its mapping and format are persisted
// before it is reopened with config: bleve cannot open an index whose
// mapping was lost.
func newBleveIndex(dir string, im *blevemapping.IndexMappingImpl, config map[string]any) (bleve.Index, error) {
	if dir == "" {
		bi, err := bleve.NewUsing("", im, scorch.Name, scorch.Name, config)
		if err != nil {
			return nil, err
		}
		if err := bi.SetInternal(formatKey, []byte(indexFormat)); err != nil {
			_ = bi.Close()
			return nil, err
		}
		return bi, nil
	}
	bi, err := bleve.NewUsing(dir, im, scorch.Name, scorch.Name, nil)
	if err != nil {
		return nil, err
	}
	if err := bi.SetInternal(formatKey, []byte(indexFormat)); err != nil {
		_ = bi.Close()
		return nil, err
	}
	if err := bi.Close(); err != nil {
		return nil, err
	}
	return bleve.OpenUsing(dir, config)
}

// Op is one refreshed change: Doc == nil deletes ID.
type Op struct {
	ID  string
	Doc *Document
}

// ErrClosed is returned by operations on a closed Index.
var ErrClosed = errors.New("search index closed")

// Apply indexes and deletes documents and stores checkpoint (the engine's
// sequence number the operations bring the index up to) with the last of them.
// A crash part-way leaves the previous checkpoint, so the engine replays the
// whole of ops again; replaying is idempotent.
func (ix *Index) Apply(ops []Op, checkpoint uint64) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return ErrClosed
	}
	if err := ix.stage(ops, checkpoint); err != nil {
		return err
	}
	return ix.publish()
}

// Stage indexes and deletes documents without making them visible: searches
// keep reading the view the last Apply published. It lets the engine index
// continuously while writes arrive, so that a refresh has little left to do
// and unrefreshed writes do not pile up in memory. No checkpoint is stored:
// after a crash the engine replays staged operations again.
func (ix *Index) Stage(ops []Op) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return ErrClosed
	}
	return ix.stage(ops, 0)
}

// stage indexes ops in bounded bleve batches; checkpoint 0 stores none.
// Caller holds ix.mu.
func (ix *Index) stage(ops []Op, checkpoint uint64) error {
	for len(ops) > applyChunk {
		if err := ix.applyBatch(ops[:applyChunk], nil); err != nil {
			return err
		}
		ops = ops[applyChunk:]
	}
	var ck []byte
	if checkpoint != 0 {
		ck = binary.BigEndian.AppendUint64(nil, checkpoint)
	}
	if len(ops) == 0 && (ck == nil || checkpoint == ix.ckpt) {
		return nil
	}
	if err := ix.applyBatch(ops, ck); err != nil {
		return err
	}
	if checkpoint != 0 {
		ix.ckpt = checkpoint
	}
	return nil
}

// publish makes everything indexed so far visible to searches started from
// now on. Caller holds ix.mu (or is opening the index).
func (ix *Index) publish() error {
	adv, err := ix.bi.Advanced()
	if err != nil {
		return fmt.Errorf("open reader: %w", err)
	}
	r, err := adv.Reader()
	if err != nil {
		return fmt.Errorf("open reader: %w", err)
	}
	ix.pubMu.Lock()
	old := ix.pub
	ix.pub = &pubReader{r: r, refs: 1}
	ix.pubMu.Unlock()
	if old != nil {
		return ix.release(old)
	}
	return nil
}

// release drops one reference to p and closes it after the last.
func (ix *Index) release(p *pubReader) error {
	ix.pubMu.Lock()
	p.refs--
	last := p.refs == 0
	ix.pubMu.Unlock()
	if !last {
		return nil
	}
	if err := p.r.Close(); err != nil {
		return fmt.Errorf("close reader: %w", err)
	}
	return nil
}

// applyChunk bounds the documents analysed in one bleve batch. bleve keeps
// every analysed field of a batch in memory until the batch's segment is
// built (several kilobytes per small document), so one batch per refresh
// would make memory grow with the refresh interval times the write rate.
// Searches read the view published after the last chunk of an Apply, so a
// search still sees all of a refresh or none of it.
const applyChunk = 2000

// applyBatch runs one bleve batch; ckpt, when set, is stored with it.
// Caller holds ix.mu.
func (ix *Index) applyBatch(ops []Op, ckpt []byte) error {
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
	if ckpt != nil {
		b.SetInternal(checkpointKey, ckpt)
	}
	if err := ix.bi.Batch(b); err != nil {
		return fmt.Errorf("apply batch: %w", err)
	}
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
			doc.AddField(newNumField(v.path, v.i64, index.IndexField|index.DocValues))
		}
	}
	if len(d.names) > 0 {
		doc.AddField(&namesField{names: d.names})
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
	r, release, err := ix.reader()
	if err != nil {
		return 0
	}
	defer release()
	n, err := r.DocCount()
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
	ix.pubMu.Lock()
	p := ix.pub
	ix.pub = nil
	ix.pubMu.Unlock()
	var rerr error
	if p != nil {
		rerr = ix.release(p)
	}
	return errors.Join(rerr, ix.bi.Close())
}

// reader returns the published point-in-time reader and the function that
// releases it, which the caller must call once. The reader itself is bleve's,
// unwrapped, so that bleve finds the optional interfaces its searchers use.
func (ix *Index) reader() (index.IndexReader, func(), error) {
	ix.pubMu.Lock()
	defer ix.pubMu.Unlock()
	p := ix.pub
	if p == nil {
		return nil, nil, ErrClosed
	}
	p.refs++
	var once sync.Once
	return p.r, func() { once.Do(func() { _ = ix.release(p) }) }, nil
}

// namesField is a document's _field_names: one field holding every name
// as a term, which bleve indexes exactly as one keyword field per name
// (the same terms, frequencies and field length), but analyses and merges
// as one field rather than one per name.
type namesField struct {
	names []string
	freqs index.TokenFrequencies
}

func (f *namesField) Name() string                        { return fieldFieldNames }
func (f *namesField) Value() []byte                       { return nil }
func (f *namesField) ArrayPositions() []uint64            { return nil }
func (f *namesField) EncodedFieldType() byte              { return 't' }
func (f *namesField) Options() index.FieldIndexingOptions { return index.IndexField }
func (f *namesField) AnalyzedLength() int                 { return len(f.names) }
func (f *namesField) AnalyzedTokenFrequencies() index.TokenFrequencies {
	return f.freqs
}

// Size is what bleve accounts the field's memory as.
func (f *namesField) Size() int {
	n := 64
	for _, name := range f.names {
		n += 2*len(name) + 96 // the name, its term and its TokenFreq
	}
	return n
}

func (f *namesField) NumPlainTextBytes() uint64 {
	var n uint64
	for _, name := range f.names {
		n += uint64(len(name))
	}
	return n
}

// Analyze builds the term frequencies directly: each name is one term,
// found once.
func (f *namesField) Analyze() {
	tokens := make(analysis.TokenStream, len(f.names))
	toks := make([]analysis.Token, len(f.names))
	for i, name := range f.names {
		toks[i] = analysis.Token{Term: []byte(name), End: len(name), Position: 1, Type: analysis.AlphaNumeric}
		tokens[i] = &toks[i]
	}
	f.freqs = analysis.TokenFrequency(tokens, nil, index.IndexField)
}
