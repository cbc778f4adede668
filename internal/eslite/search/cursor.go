package search

import "bytes"

// Cursor is where a scroll stopped: the last hit of its last page, in the
// total order searches sort hits by (sort values, then index, then
// document). A scroll keeps its view pinned, so the next page is every hit
// after the cursor.
type Cursor struct {
	keys   []sortVal
	target int
	id     []byte
	total  int64
	done   bool // the last page was empty: nothing follows
}

// Total is the number of matches the scroll's first page counted.
func (c *Cursor) Total() int64 { return c.total }

// compare orders a hit against the cursor: negative or zero when the hit
// was already returned.
func (c *Cursor) compare(h *hitHeap, keys []sortVal, target int, id []byte) int {
	if c.done {
		return 0
	}
	if n := compareKeys(keys, c.keys, h.sorts); n != 0 {
		return n
	}
	if target != c.target {
		if target < c.target {
			return -1
		}
		return 1
	}
	return bytes.Compare(id, c.id)
}

// ContinueAfter makes the search return the page after c, for a scroll.
// As in Elasticsearch, only a scroll's first page carries aggregations.
func (r *Request) ContinueAfter(c *Cursor) {
	r.cursor = c
	r.from = 0
	r.aggs = nil
}
