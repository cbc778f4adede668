package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/internal/eslite"
)

// DiscardES is an Elasticsearch endpoint on 127.0.0.1 that answers every
// item of a _bulk request as done (index and create 201 "created", update
// 200 "updated", delete 200 "deleted") without storing anything, and
// records in Arrivals when each document's bulk request had arrived in full
// (the ids must be the rows' integer ids). Every other request — GET /,
// index, alias and mapping management, searches — is served by an
// in-memory embedded engine, so that a client sees Elasticsearch as it is
// at start. It is the ceiling of a sink: indexing costs nothing.
type DiscardES struct {
	// URL is the server's base URL.
	URL      string
	arrivals *Arrivals
	engine   *eslite.Engine
	bulks    atomic.Int64
	// bufs holds *bytes.Buffer for request and response bodies.
	bufs sync.Pool
}

// buffer is an empty buffer from d.bufs.
func (d *DiscardES) buffer() *bytes.Buffer {
	if b, ok := d.bufs.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

// StartDiscardES starts a discarding endpoint stopped at the end of the test.
func StartDiscardES(tb testing.TB, arrivals *Arrivals) *DiscardES {
	tb.Helper()
	eng, err := eslite.Open(eslite.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { eng.Close() })
	d := &DiscardES{arrivals: arrivals, engine: eng}
	srv := httptest.NewServer(d)
	tb.Cleanup(srv.Close)
	d.URL = srv.URL
	return d
}

// Bulks is how many bulk requests were answered.
func (d *DiscardES) Bulks() int64 { return d.bulks.Load() }

func (d *DiscardES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut || !(r.URL.Path == "/_bulk" || strings.HasSuffix(r.URL.Path, "/_bulk")) {
		d.engine.ServeHTTP(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			bulkError(w, err)
			return
		}
		body = zr
	}
	// Read into a buffer sized from the request and reused: growing one
	// from nothing per request was most of the endpoint's cost after the
	// action lines.
	in := d.buffer()
	defer d.bufs.Put(in)
	if r.ContentLength > 0 {
		in.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	if _, err := in.ReadFrom(body); err != nil {
		bulkError(w, err)
		return
	}
	raw := in.Bytes()
	arrived := time.Now()
	d.bulks.Add(1)
	// The answer keeps what filter_path names, as Elasticsearch's does.
	f := eslite.ParseBulkFilter(r.URL.Query().Get("filter_path"))
	out := d.buffer()
	defer d.bufs.Put(out)
	out.Grow(64 + len(raw)/4)
	out.WriteByte('{')
	head := []string{}
	if f.Took() {
		head = append(head, `"took":0`)
	}
	if f.Errors() {
		head = append(head, `"errors":false`)
	}
	if f.Items() {
		head = append(head, `"items":[`)
	}
	out.WriteString(strings.Join(head, ","))
	var ids []int64
	n := 0
	err := BulkItems(raw, func(op, index, id string) {
		if v, err := strconv.ParseInt(id, 10, 64); err == nil {
			ids = append(ids, v)
		} else {
			d.arrivals.Stray()
		}
		if !f.Items() {
			return
		}
		if n > 0 {
			out.WriteByte(',')
		}
		n++
		result, status := "created", "201"
		switch op {
		case "update":
			result, status = "updated", "200"
		case "delete":
			result, status = "deleted", "200"
		}
		// Written with appends, not fmt: the endpoint shares the machine
		// with what it measures, and costs it as little as it can.
		b := append(bus.AppendJSONString(append(out.AvailableBuffer(), '{'), op), ":{"...)
		sep := ""
		field := func(name string) bool {
			if !f.Item(name) {
				return false
			}
			b = append(append(append(b, sep...), '"'), name...)
			b = append(b, `":`...)
			sep = ","
			return true
		}
		if field("_index") {
			b = bus.AppendJSONString(b, index)
		}
		if field("_id") {
			b = bus.AppendJSONString(b, id)
		}
		if field("result") {
			b = append(append(append(b, '"'), result...), '"')
		}
		if field("_shards") {
			b = append(b, `{"total":1,"successful":1,"failed":0}`...)
		}
		if field("status") {
			b = append(b, status...)
		}
		out.Write(append(b, "}}"...))
	})
	if err != nil {
		bulkError(w, err)
		return
	}
	d.arrivals.Record(arrived, ids...)
	if f.Items() {
		out.WriteByte(']')
	}
	out.WriteByte('}')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	_, _ = w.Write(out.Bytes())
}

// bulkError answers a bulk request Elasticsearch could not parse.
func bulkError(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.WriteHeader(http.StatusBadRequest)
	msg, _ := json.Marshal(err.Error())
	fmt.Fprintf(w, `{"error":{"type":"illegal_argument_exception","reason":%s},"status":400}`, msg)
}

// BulkItems calls item for each action of a _bulk body (NDJSON: an action
// line, followed by a source line unless the action is a delete) with the
// action, its _index and its _id.
func BulkItems(body []byte, item func(op, index, id string)) error {
	source := false
	for line := range bytes.Lines(body) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if source {
			source = false
			continue
		}
		op, index, id, err := eslite.ParseBulkAction(line)
		if err != nil {
			return err
		}
		item(op, index, id)
		source = op != "delete"
	}
	if source {
		return errors.New("read bulk body: the last action has no source line")
	}
	return nil
}
