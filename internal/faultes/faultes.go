// Package faultes is a fault-injection HTTP server for tests: it serves an
// Elasticsearch-compatible handler (the embedded engine) on 127.0.0.1 and,
// on command, answers with errors, fails some items of a bulk request inside
// a 200, answers slowly, drops connections, refuses large bodies, holds bulk
// requests unanswered, or is down altogether. It exists only to prove how
// clients behave when Elasticsearch misbehaves; it is never part of the
// product.
package faultes

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is what the server does to matching requests.
type Fault struct {
	// Status answers the whole request with this HTTP status (e.g. 429,
	// 500, 503) without passing it on.
	Status int
	// Drop closes the connection without an answer.
	Drop bool
	// Delay waits this long before handling the request.
	Delay time.Duration
	// ItemStatus fails every other item of a bulk request (the 1st, 3rd,
	// ...) with this status inside a 200 answer; the other items are passed
	// on and applied.
	ItemStatus int
	// Count is how many requests the fault affects; 0 means until Clear.
	Count int
	// All applies the fault to every request, not only _bulk.
	All bool
	// MinItems limits the fault to bulk requests of at least this many
	// items; 0 means any size.
	MinItems int
	// Hold keeps the request received and unanswered, without passing it
	// on, until Release (then it is handled normally) or until the client
	// goes away (then it is dropped: the engine never sees it). Held says
	// how many requests are being held.
	Hold bool
	// HoldAnswer passes the request on and holds the engine's answer, so
	// the engine has applied it but the client does not know: until
	// Release (then the answer is sent) or until the client goes away.
	HoldAnswer bool
}

// Server is a running fault-injection server.
type Server struct {
	// URL is the server's base URL.
	URL  string
	srv  *httptest.Server
	next http.Handler

	mu         sync.Mutex
	fault      *Fault
	left       int
	maxContent int
	// release is closed by Release (and Close) to free held requests.
	release chan struct{}
	closed  bool
	held    atomic.Int64

	bulk        atomic.Int64
	faulted     atomic.Int64
	items       atomic.Int64
	largestBulk atomic.Int64
}

// Start serves next on a free port of 127.0.0.1.
func Start(next http.Handler) *Server {
	s := &Server{next: next, release: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close releases held requests, stops the server and closes its
// connections.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.release)
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Inject makes the server misbehave as f says, replacing any earlier fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault, s.left = &f, f.Count
}

// Clear stops every fault.
func (s *Server) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = nil
}

// Release lets every request held so far proceed (see Fault.Hold and
// Fault.HoldAnswer); requests that arrive later are held again while the
// fault lasts.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		close(s.release)
		s.release = make(chan struct{})
	}
}

// Held counts the requests being held now.
func (s *Server) Held() int64 { return s.held.Load() }

// hold waits until Release or the client going away, and says which.
func (s *Server) hold(r *http.Request) (released bool) {
	s.mu.Lock()
	release := s.release
	s.mu.Unlock()
	s.held.Add(1)
	defer s.held.Add(-1)
	select {
	case <-release:
		return true
	case <-r.Context().Done():
		return false
	}
}

// SetMaxContentLength makes the server refuse request bodies over n bytes
// with 413, as Elasticsearch does past http.max_content_length; 0 means no
// limit of its own.
func (s *Server) SetMaxContentLength(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxContent = n
}

// BulkRequests counts the _bulk requests received.
func (s *Server) BulkRequests() int64 { return s.bulk.Load() }

// Faulted counts the requests a fault was applied to.
func (s *Server) Faulted() int64 { return s.faulted.Load() }

// LargestBulk is the size in bytes of the largest _bulk request body
// received.
func (s *Server) LargestBulk() int64 { return s.largestBulk.Load() }

// BulkItems counts the bulk items passed on to the engine.
func (s *Server) BulkItems() int64 { return s.items.Load() }

// take returns the fault to apply to a request, counting it down.
func (s *Server) take(isBulk bool, body []byte) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fault
	if f == nil || (!isBulk && !f.All) {
		return nil
	}
	if f.MinItems > 0 && (!isBulk || countItems(body) < f.MinItems) {
		return nil
	}
	if f.Count > 0 {
		if s.left <= 0 {
			return nil
		}
		s.left--
	}
	cp := *f
	return &cp
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	isBulk := strings.HasSuffix(r.URL.Path, "/_bulk")
	if isBulk {
		s.bulk.Add(1)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for isBulk {
		seen := s.largestBulk.Load()
		if int64(len(body)) <= seen || s.largestBulk.CompareAndSwap(seen, int64(len(body))) {
			break
		}
	}
	s.mu.Lock()
	limit := s.maxContent
	s.mu.Unlock()
	if limit > 0 && len(body) > limit {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{
			"error":  map[string]any{"type": "content_too_long_exception", "reason": fmt.Sprintf("request body is too large (%d > %d)", len(body), limit)},
			"status": http.StatusRequestEntityTooLarge,
		})
		return
	}
	f := s.take(isBulk, body)
	if f != nil {
		s.faulted.Add(1)
		if f.Delay > 0 {
			select {
			case <-time.After(f.Delay):
			case <-r.Context().Done():
				return
			}
		}
		switch {
		case f.Drop:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		case f.Status != 0:
			writeJSON(w, f.Status, map[string]any{
				"error":  map[string]any{"type": "es_rejected_execution_exception", "reason": "fault injection"},
				"status": f.Status,
			})
			return
		case f.ItemStatus != 0 && isBulk:
			s.partialBulk(w, r, body, f.ItemStatus)
			return
		case f.Hold:
			if !s.hold(r) {
				return // the client is gone; the engine never saw the request
			}
		case f.HoldAnswer:
			if isBulk {
				s.items.Add(int64(countItems(body)))
			}
			rec := httptest.NewRecorder()
			s.next.ServeHTTP(rec, withBody(r, body))
			if !s.hold(r) {
				return // the engine applied the request; the client never knows
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
	}
	if isBulk {
		s.items.Add(int64(countItems(body)))
	}
	s.next.ServeHTTP(w, withBody(r, body))
}

// withBody gives r the body already read from it.
func withBody(r *http.Request, body []byte) *http.Request {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return r
}

// bulkItem is one action of a bulk body with its source line, if any.
type bulkItem struct {
	op    string
	lines [][]byte
}

func parseBulk(body []byte) ([]bulkItem, error) {
	var items []bulkItem
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 1<<20), 512<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var action map[string]json.RawMessage
		if err := json.Unmarshal(line, &action); err != nil || len(action) != 1 {
			return nil, errors.New("faultes: unreadable bulk action line")
		}
		it := bulkItem{lines: [][]byte{append([]byte(nil), line...)}}
		for op := range action {
			it.op = op
		}
		if it.op != "delete" {
			if !sc.Scan() {
				return nil, errors.New("faultes: bulk action without its source line")
			}
			it.lines = append(it.lines, append([]byte(nil), sc.Bytes()...))
		}
		items = append(items, it)
	}
	return items, sc.Err()
}

func countItems(body []byte) int {
	items, _ := parseBulk(body)
	return len(items)
}

// partialBulk fails every other item with status and passes the rest on.
func (s *Server) partialBulk(w http.ResponseWriter, r *http.Request, body []byte, status int) {
	items, err := parseBulk(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error(), "status": 400})
		return
	}
	var pass bytes.Buffer
	var passed []int
	for i, it := range items {
		if i%2 == 1 {
			passed = append(passed, i)
			for _, l := range it.lines {
				pass.Write(l)
				pass.WriteByte('\n')
			}
		}
	}
	results := make([]map[string]any, len(items))
	if len(passed) > 0 {
		s.items.Add(int64(len(passed)))
		req := r.Clone(r.Context())
		req.Body = io.NopCloser(bytes.NewReader(pass.Bytes()))
		req.ContentLength = int64(pass.Len())
		rec := httptest.NewRecorder()
		s.next.ServeHTTP(rec, req)
		var got struct {
			Items []map[string]any `json:"items"`
		}
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil || len(got.Items) != len(passed) {
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		for j, i := range passed {
			results[i] = got.Items[j]
		}
	}
	for i, it := range items {
		if results[i] == nil {
			results[i] = map[string]any{it.op: map[string]any{
				"status": status,
				"error":  map[string]any{"type": "es_rejected_execution_exception", "reason": "fault injection"},
			}}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"took": 1, "errors": true, "items": results})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
