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
}

// Total is the exact number of matching documents.
func (r *Response) Total() int64 { return r.total }

// MarshalJSON renders took, timed_out, _shards, hits and aggregations.
func (r *Response) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"took":` + strconv.FormatInt(r.took, 10) + `,"timed_out":false,"_shards":{"total":` +
		strconv.Itoa(r.shards) + `,"successful":` + strconv.Itoa(r.shards) + `,"skipped":0,"failed":0},"hits":{`)
	switch {
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
