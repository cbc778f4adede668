package search

import (
	"sort"

	"github.com/blevesearch/bleve/v2/index/scorch"
	index "github.com/blevesearch/bleve_index_api"
)

// storedSource reads the stored _source of the hit with internal id iid
// (external id id) from reader. A hit already names its segment and local
// document through its internal id, so on a scorch snapshot the stored
// fields are read there directly; bleve's Document(id) would look id up
// again in the _id dictionary of every segment, which under a steady write
// stream (many small segments) cost a search more than its query. Other
// readers go through Document. segs caches the snapshot's segment offsets
// for the hits of one search; it may be nil.
func storedSource(reader index.IndexReader, segs *segmentOffsets, iid index.IndexInternalID, id string) ([]byte, error) {
	if is, ok := reader.(*scorch.IndexSnapshot); ok && segs != nil {
		if segs.snap != is {
			segs.load(is)
		}
		n := docNum(iid)
		i := sort.Search(len(segs.offsets), func(x int) bool { return segs.offsets[x] > n }) - 1
		if i >= 0 && i < len(segs.segs) {
			var source []byte
			err := segs.segs[i].VisitDocument(n-segs.offsets[i], func(name string, _ byte, val []byte, _ []uint64) bool {
				if name == fieldSource {
					source = append([]byte(nil), val...)
					return false
				}
				return true
			})
			return source, err
		}
	}
	doc, err := reader.Document(id)
	if err != nil || doc == nil {
		return nil, err
	}
	var source []byte
	doc.VisitFields(func(f index.Field) {
		if f.Name() == fieldSource {
			source = append([]byte(nil), f.Value()...)
		}
	})
	return source, nil
}

// segmentOffsets is the first global document number of each segment of a
// scorch snapshot, as scorch numbers them: each segment's count includes
// its deleted documents.
type segmentOffsets struct {
	snap    *scorch.IndexSnapshot
	segs    []*scorch.SegmentSnapshot
	offsets []uint64
}

func (s *segmentOffsets) load(is *scorch.IndexSnapshot) {
	s.snap, s.segs, s.offsets = is, is.Segments(), s.offsets[:0]
	var running uint64
	for _, seg := range s.segs {
		s.offsets = append(s.offsets, running)
		running += seg.Segment().Count()
	}
}
