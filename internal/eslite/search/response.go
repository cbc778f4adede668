package search

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Response is a _search result; it marshals to Elasticsearch's response body.
type Response struct {
	took     int64
	shards   int
	total    int64
	track    int
	maxScore *float64
	hits     []json.RawMessage
	aggs     json.RawMessage

	totalAsInt bool    // rest_total_hits_as_int
	terminated *bool   // terminated_early, shown when terminate_after was set
	last       *Cursor // where the next scroll page starts
	scrollID   string
	pitID      string
}

// Total is the exact number of matching documents.
func (r *Response) Total() int64 { return r.total }

// Last is the position after the last hit, where the next scroll page starts.
func (r *Response) Last() *Cursor { return r.last }

// SetScrollID adds "_scroll_id" to the response.
func (r *Response) SetScrollID(id string) { r.scrollID = id }

// SetPITID adds "pit_id" to the response.
func (r *Response) SetPITID(id string) { r.pitID = id }

// SetTotalAsInt renders hits.total as a number (rest_total_hits_as_int).
func (r *Response) SetTotalAsInt(v bool) { r.totalAsInt = v }

// HitCount is the number of hits in the page.
func (r *Response) HitCount() int { return len(r.hits) }

// MarshalJSON renders took, timed_out, _shards, hits and aggregations.
func (r *Response) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	if r.scrollID != "" {
		b.WriteString(`"_scroll_id":`)
		writeJSONString(&b, r.scrollID)
		b.WriteByte(',')
	}
	if r.pitID != "" {
		b.WriteString(`"pit_id":`)
		writeJSONString(&b, r.pitID)
		b.WriteByte(',')
	}
	b.WriteString(`"took":` + strconv.FormatInt(r.took, 10) + `,"timed_out":false`)
	if r.terminated != nil {
		b.WriteString(`,"terminated_early":` + strconv.FormatBool(*r.terminated))
	}
	b.WriteString(`,"_shards":{"total":` +
		strconv.Itoa(r.shards) + `,"successful":` + strconv.Itoa(r.shards) + `,"skipped":0,"failed":0},"hits":{`)
	switch {
	case r.totalAsInt && r.track == 0:
		b.WriteString(`"total":-1,`)
	case r.totalAsInt:
		b.WriteString(`"total":` + strconv.FormatInt(r.total, 10) + `,`)
	case r.track == 0:
	case r.track > 0 && r.total > int64(r.track):
		b.WriteString(`"total":{"value":` + strconv.Itoa(r.track) + `,"relation":"gte"},`)
	default:
		b.WriteString(`"total":{"value":` + strconv.FormatInt(r.total, 10) + `,"relation":"eq"},`)
	}
	b.WriteString(`"max_score":`)
	if r.maxScore != nil {
		b.WriteString(formatScore(*r.maxScore))
	} else {
		b.WriteString("null")
	}
	b.WriteString(`,"hits":[`)
	for i, h := range r.hits {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(h)
	}
	b.WriteString(`]}`)
	if r.aggs != nil {
		b.WriteString(`,"aggregations":`)
		b.Write(r.aggs)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
