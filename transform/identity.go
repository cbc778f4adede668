package transform

import (
	"encoding/json"
	"fmt"

	"github.com/walsearch/walsearch/bus"
)

// Identity indexes every row as it is: table public.users becomes index
// "users", the primary key becomes the document id, the row the document.
// A row still encoded (RowJSON, Row nil) becomes the document as it is,
// without being decoded and encoded again.
type Identity struct{}

// Map implements Mapper.
func (Identity) Map(c *bus.Change) ([]*bus.Doc, error) {
	d := BaseDoc(c)
	switch c.Op {
	case bus.OpInsert, bus.OpUpdate, bus.OpRead:
		src := json.RawMessage(c.RowJSON) // as capture encoded it (bus.DecodeChangesRaw)
		if c.Row != nil || len(src) == 0 {
			var err error
			if src, err = json.Marshal(c.Row); err != nil {
				return nil, fmt.Errorf("encode row of %s.%s: %w", c.Schema, c.Table, err)
			}
		}
		d.Op, d.Source, d.Unchanged = bus.DocIndex, src, c.Unchanged
		d.From = movedFrom(c, d.Unchanged)
	case bus.OpDelete:
		d.Op = bus.DocDelete
	case bus.OpTruncate:
		d.Op, d.ID = bus.DocTruncate, ""
	default:
		return nil, fmt.Errorf("unknown operation %q on %s.%s", c.Op, c.Schema, c.Table)
	}
	return []*bus.Doc{d}, nil
}

// BaseDoc returns the document event for c with everything but Op, Source
// and Unchanged filled in: the default index, the id and the version.
func BaseDoc(c *bus.Change) *bus.Doc {
	d := &bus.Doc{
		Index: bus.IndexName(c.Schema, c.Table), Version: uint64(c.LSN),
		Schema: c.Schema, Table: c.Table, Pos: c.Pos, CommitTime: c.CommitTime,
	}
	if len(c.Key) > 0 {
		d.ID = bus.DocumentID(c.Key)
	}
	return d
}

// movedFrom is the id of the document a row moved from when an UPDATE
// changed its key and left TOASTed values unchanged: the sink takes them
// from that document.
func movedFrom(c *bus.Change, unchanged []string) string {
	if len(unchanged) == 0 || len(c.From) == 0 {
		return ""
	}
	return bus.DocumentID(c.From)
}
