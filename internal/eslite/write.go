package eslite

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// opKind is the kind of a document write.
type opKind int

const (
	opIndex opKind = iota
	opCreate
	opUpdate
	opDelete
)

func (k opKind) String() string {
	return [...]string{"index", "create", "update", "delete"}[k]
}

// updateSpec is the body of an update: a partial doc and/or an upsert.
type updateSpec struct {
	doc         []byte
	upsert      []byte
	docAsUpsert bool
	detectNoop  bool
	// fetch, when set, asks for the updated _source in the response
	// ("get"), filtered.
	fetch *sourceFilter
}

// writeReq is one validated document write, from the document API or a
// bulk item.
type writeReq struct {
	kind          opKind
	id            string
	source        []byte
	update        *updateSpec
	version       int64
	vtype         versionType
	ifSeqNo       int64
	ifPrimaryTerm int64
}

// writeResult is the outcome of one write, as Elasticsearch reports it.
type writeResult struct {
	index   *index
	id      string
	version int64
	seqNo   int64
	result  string // created, updated, deleted, not_found, noop
	status  int
	err     *search.Error
	// getSource is the filtered _source an update returns in "get"; nil
	// when the update did not ask for it.
	getSource []byte
}

// change is one store mutation that execute persists.
type change struct {
	id    string
	entry *docEntry
}

// execute runs writes against the index in order, as one atomic and durable
// step: all results are decided under ix.mu, the changes are persisted in one
// store transaction (one fsync), and only then published. It returns the
// highest sequence number assigned, or -1.
func (e *Engine) execute(ix *index, reqs []*writeReq, results []*writeResult) (int64, error) {
	now := e.now()
	e.mu.RLock()
	gc := ix.settings.gcDeletes()
	e.mu.RUnlock()

	// Runs after ix.mu is released: a writer that filled the queue of
	// unrefreshed writes indexes it before answering.
	defer e.stageIfFull(ix)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.deleted {
		for i := range reqs {
			results[i] = &writeResult{index: ix, id: reqs[i].id, err: errIndexNotFound(ix.name)}
		}
		return -1, nil
	}
	overlay := make(map[string]*docEntry, len(reqs))
	var changes []change
	startSeq := ix.seqNo
	var mapping *search.Mapping // a private copy, made on first use
	mappingChanged := false
	prepare := func(id string, src []byte) (*search.Document, *search.Error) {
		if mapping == nil {
			mapping = ix.mapping.Clone()
		}
		doc, updated, err := mapping.Prepare(id, src)
		if err != nil {
			return nil, asESError(err)
		}
		if updated {
			mappingChanged = true
		}
		return doc, nil
	}
	docs := make(map[string]*search.Document, len(reqs))

	for i, r := range reqs {
		res := &writeResult{index: ix, id: r.id}
		results[i] = res
		cur := ix.current(overlay, r.id, now, gc)
		curVersion, deleted := versionNotFound, true
		if cur != nil {
			curVersion, deleted = cur.version, cur.deleted
		}
		if r.ifSeqNo != seqNoUnassigned {
			if cur == nil || cur.deleted {
				res.err = errVersionConflict(ix, r.id, fmt.Sprintf("required seqNo [%d], primary term [%d]. but no document was found", r.ifSeqNo, r.ifPrimaryTerm))
				continue
			}
			if cur.seqNo != r.ifSeqNo || r.ifPrimaryTerm != primaryTerm {
				res.err = errVersionConflict(ix, r.id, fmt.Sprintf("required seqNo [%d], primary term [%d]. current document has seqNo [%d] and primary term [%d]", r.ifSeqNo, r.ifPrimaryTerm, cur.seqNo, primaryTerm))
				continue
			}
		}
		var entry *docEntry
		switch r.kind {
		case opIndex, opCreate:
			expected := r.version
			if r.kind == opCreate {
				expected = versionMatchDeleted
			}
			if why, bad := r.vtype.conflict(curVersion, expected, deleted); bad {
				res.err = errVersionConflict(ix, r.id, why)
				continue
			}
			doc, perr := prepare(r.id, r.source)
			if perr != nil {
				res.err = perr
				continue
			}
			docs[r.id] = doc
			entry = &docEntry{version: r.vtype.next(curVersion, r.version), source: r.source}
			res.result, res.status = "updated", http.StatusOK
			if deleted {
				res.result, res.status = "created", http.StatusCreated
			}
		case opUpdate:
			src, result, perr := applyUpdate(ix, r, cur)
			if perr != nil {
				res.err = perr
				continue
			}
			if f := r.update.fetch; f != nil && !f.off {
				res.getSource = f.apply(src)
			}
			if result == "noop" {
				res.version, res.seqNo, res.result, res.status = cur.version, cur.seqNo, "noop", http.StatusOK
				continue
			}
			doc, perr := prepare(r.id, src)
			if perr != nil {
				res.err = perr
				continue
			}
			docs[r.id] = doc
			entry = &docEntry{version: vtInternal.next(curVersion, versionMatchAny), source: src}
			res.result, res.status = result, http.StatusOK
			if result == "created" {
				res.status = http.StatusCreated
			}
		case opDelete:
			if why, bad := r.vtype.conflict(curVersion, r.version, deleted); bad {
				res.err = errVersionConflict(ix, r.id, why)
				continue
			}
			entry = &docEntry{version: r.vtype.next(curVersion, r.version), deleted: true, deletedAt: now.UnixMilli()}
			res.result, res.status = "deleted", http.StatusOK
			if deleted {
				res.result, res.status = "not_found", http.StatusNotFound
			}
		}
		ix.seqNo++
		entry.seqNo = ix.seqNo
		res.version, res.seqNo = entry.version, entry.seqNo
		overlay[r.id] = entry
		changes = append(changes, change{id: r.id, entry: entry})
	}
	if len(changes) == 0 {
		return -1, nil
	}
	if e.store != nil {
		var mappingJSON []byte
		if mappingChanged {
			raw, err := mapping.MarshalJSON()
			if err != nil {
				ix.seqNo = startSeq
				return -1, fmt.Errorf("encode mapping of %s: %w", ix.name, err)
			}
			mappingJSON = raw
		}
		if err := e.store.commit(ix.uuid, changes, ix.seqNo, mappingJSON); err != nil {
			ix.seqNo = startSeq
			return -1, fmt.Errorf("persist writes to %s: %w", ix.name, err)
		}
	}
	if mappingChanged {
		ix.mapping = mapping
		ix.search.SetMapping(mapping)
	}
	if len(changes) > 0 && ix.pendingSince.IsZero() {
		ix.pendingSince = now
	}
	for _, c := range changes {
		ix.publish(c.id, c.entry, docs[c.id])
	}
	return ix.seqNo, nil
}

// publish makes a persisted entry the current state of id and queues it for
// the next refresh. Caller holds ix.mu.
func (ix *index) publish(id string, e *docEntry, doc *search.Document) {
	old := ix.docs[id]
	if old != nil && !old.deleted {
		ix.liveDocs--
		ix.liveBytes -= int64(old.srcLen)
	}
	e.srcLen = len(e.source)
	if ix.store != nil && e.source != nil {
		// The store has it; keep only the metadata in memory.
		c := *e
		c.source = nil
		e = &c
	}
	ix.docs[id] = e
	if e.deleted {
		ix.tombstones = append(ix.tombstones, tombstoneRef{id: id, seqNo: e.seqNo, deletedAt: e.deletedAt})
		ix.pending[id] = search.Op{ID: id}
		return
	}
	ix.liveDocs++
	ix.liveBytes += int64(e.srcLen)
	ix.pending[id] = search.Op{ID: id, Doc: doc}
}

// applyUpdate computes the new _source of an update and whether it creates,
// updates or changes nothing.
func applyUpdate(ix *index, r *writeReq, cur *docEntry) ([]byte, string, *search.Error) {
	u := r.update
	if cur == nil || cur.deleted {
		switch {
		case u.upsert != nil:
			return u.upsert, "created", nil
		case u.docAsUpsert && u.doc != nil:
			return u.doc, "created", nil
		}
		return nil, "", errDocumentMissing(ix, r.id)
	}
	if u.doc == nil {
		return nil, "", errValidation("script or doc is missing")
	}
	cur, serr := ix.withSource(r.id, cur)
	if serr != nil {
		return nil, "", errStoreRead(serr)
	}
	base, err := decodeOrdered(cur.source)
	if err != nil {
		return nil, "", errParse("stored source of [" + r.id + "] is not a JSON object")
	}
	patch, err := decodeOrdered(u.doc)
	if err != nil {
		return nil, "", errParse("failed to parse doc: " + err.Error())
	}
	bo, ok1 := base.(*object)
	po, ok2 := patch.(*object)
	if !ok1 || !ok2 {
		return nil, "", errParse("update doc must be a JSON object")
	}
	changed := mergeInto(bo, po)
	if !changed && u.detectNoop {
		return cur.source, "noop", nil
	}
	var buf bytes.Buffer
	encodeOrdered(&buf, bo)
	return buf.Bytes(), "updated", nil
}
