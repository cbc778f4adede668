package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/walsearch/walsearch/bus"
)

// item is one document write and the message it came from, if it came
// from the bus (see Sink.Write for documents handed over in process).
type item struct {
	doc *bus.Doc
	msg jetstream.Msg // nil for a document handed over by Write
	// target is the Elasticsearch index or alias written to.
	target string
	// shadow marks the copy of a write sent to the index a reindex is
	// building: its outcome is the reindex's business, not the message's.
	shadow bool
}

// process applies one batch of document messages in order. It returns only
// when every message's effect is confirmed by Elasticsearch or
// dead-lettered, or ctx ends.
func (s *Sink) process(ctx context.Context, msgs []jetstream.Msg) error {
	stop := bus.KeepAlive(msgs, s.cfg.AckWait/3)
	defer stop()
	items := make([]item, 0, len(msgs))
	for _, m := range msgs {
		d := new(bus.Doc)
		if err := bus.Decode(m.Data(), d); err != nil {
			if err := s.deadLetter(ctx, item{msg: m}, "undecodable document event: "+err.Error()); err != nil {
				return err
			}
			continue
		}
		items = append(items, item{doc: d, msg: m})
	}
	return s.apply(ctx, items)
}

// Write applies docs in order, as process does for messages: it returns
// only when every document is confirmed by Elasticsearch or dead-lettered
// (a dead letter then holds the document event itself), or ctx ends. It is
// how a transform stage in the same process hands documents over without a
// trip through the bus; the caller acknowledges its own input afterwards.
//
// Write may be called concurrently with Run: writes are applied one batch
// at a time.
func (s *Sink) Write(ctx context.Context, docs []*bus.Doc) error {
	items := make([]item, len(docs))
	for i, d := range docs {
		items[i] = item{doc: d}
	}
	return s.apply(ctx, items)
}

// apply writes items in order. Truncates and watermarks are barriers:
// everything before them is written first.
func (s *Sink) apply(ctx context.Context, items []item) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	seg := 0 // start of the writes not yet sent
	for i, it := range items {
		d := it.doc
		if d.Op != bus.DocWatermark && d.Op != bus.DocTruncate {
			continue
		}
		if err := s.write(ctx, items[seg:i]); err != nil {
			return err
		}
		seg = i + 1
		if d.Op == bus.DocWatermark {
			// Everything before the watermark is written: it counts as
			// applied.
			s.record(func(st *Status) {
				if bus.LSN(d.Version) > st.AppliedLSN {
					st.AppliedLSN = bus.LSN(d.Version)
				}
			})
			continue
		}
		// Everything before the truncate is applied before the index is
		// emptied, and nothing after it may be emptied.
		if err := s.truncate(ctx, d); err != nil {
			return err
		}
	}
	return s.write(ctx, items[seg:])
}

// write applies items: it completes unchanged TOAST values, resolves each
// document's index (creating it on first sight), adds the writes a running
// reindex needs, and sends them through the lanes (see lanes.go).
func (s *Sink) write(ctx context.Context, items []item) error {
	if len(items) == 0 {
		return nil
	}
	items, err := s.resolve(ctx, items)
	if err != nil {
		return err
	}
	if err := s.fillUnchanged(ctx, items); err != nil {
		return err
	}
	first, after := deferMoves(items)
	if err := s.sendLanes(ctx, withShadows(first, s.idx)); err != nil || len(after) == 0 {
		return err
	}
	return s.sendLanes(ctx, withShadows(after, s.idx))
}

// resolve sets each item's target to its index's alias, creating indices seen
// for the first time.
func (s *Sink) resolve(ctx context.Context, items []item) ([]item, error) {
	for i := range items {
		st, err := s.idx.ensure(ctx, items[i].doc)
		if err != nil {
			return nil, err
		}
		items[i].target = st.alias
	}
	return items, nil
}

// withShadows adds, right after each write to an index being reindexed, the
// same write to the new index.
func withShadows(items []item, idx *indexManager) []item {
	var out []item
	for i, it := range items {
		shadow := idx.shadowOf(it.doc.Index)
		if shadow == "" {
			if out != nil {
				out = append(out, it)
			}
			continue
		}
		if out == nil {
			out = append(make([]item, 0, len(items)+8), items[:i]...)
		}
		out = append(out, it, item{doc: it.doc, msg: it.msg, target: shadow, shadow: true})
	}
	if out == nil {
		return items
	}
	return out
}

// sendChunks sends items in order, in requests bounded by MaxBatchBytes,
// MaxContentLength and the current batch size. A document too large to be
// accepted on its own is dead-lettered instead of being sent.
func (s *Sink) sendChunks(ctx context.Context, items []item) error {
	limit := min(s.cfg.MaxBatchBytes, s.cfg.MaxContentLength)
	n := min(len(items), s.batchSize())
	var buf bytes.Buffer
	bodySize := 0 // to size each body once, from the first document
	chunk := make([]item, 0, n)
	for i, it := range items {
		before := buf.Len()
		appendAction(&buf, it)
		if i == 0 {
			// Documents of a round are alike: size the body from the first
			// rather than growing it (and copying it) a dozen times.
			bodySize = min(limit, buf.Len()*n)
			buf.Grow(bodySize)
		}
		if size := buf.Len() - before; size > s.cfg.MaxContentLength {
			buf.Truncate(before)
			if err := s.tooLarge(ctx, it, size); err != nil {
				return err
			}
			continue
		}
		if len(chunk) > 0 && (buf.Len() > limit || len(chunk) >= s.batchSize()) {
			buf.Truncate(before)
			if err := s.send(ctx, chunk, buf.Bytes()); err != nil {
				return err
			}
			// A transport may read a request's body after answering it
			// (see http.RoundTripper): the next request gets a new one.
			buf = bytes.Buffer{}
			buf.Grow(bodySize)
			chunk = chunk[:0]
			appendAction(&buf, it)
		}
		chunk = append(chunk, it)
	}
	return s.send(ctx, chunk, buf.Bytes())
}

// tooLarge dead-letters a document whose bulk item of size bytes exceeds
// the engine's request size limit: sent, it would be refused (413) however
// often it is retried.
func (s *Sink) tooLarge(ctx context.Context, it item, size int) error {
	reason := fmt.Sprintf("document %s/%s is %d bytes as a bulk item, over the search engine's request size limit of %d bytes "+
		"(sink.max_content_length, which must match Elasticsearch's http.max_content_length): it was not sent; "+
		"make the row's document smaller (a transform script can drop or shorten fields) or raise both limits",
		it.target, it.doc.ID, size, s.cfg.MaxContentLength)
	if it.shadow {
		s.shadowRejected(it, reason)
		return nil
	}
	return s.deadLetter(ctx, it, reason)
}

// appendAction writes the bulk action line (and source line) for it.
func appendAction(buf *bytes.Buffer, it item) {
	d := it.doc
	op := "index"
	if d.Op == bus.DocDelete {
		op = "delete"
	}
	buf.WriteString(`{"`)
	buf.WriteString(op)
	buf.WriteString(`":{"_index":`)
	writeJSONString(buf, it.target)
	buf.WriteString(`,"_id":`)
	writeJSONString(buf, d.ID)
	buf.WriteString(`,"version":`)
	buf.Write(strconv.AppendUint(buf.AvailableBuffer(), d.Version, 10))
	buf.WriteString(`,"version_type":"external_gte"}}` + "\n")
	if d.Op != bus.DocDelete {
		buf.Write(d.Source)
		buf.WriteByte('\n')
	}
}

// writeJSONString writes s as a JSON string. Index names and ids are
// nearly always printable ASCII without quotes or backslashes, which need no
// escaping.
func writeJSONString(buf *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b, _ := json.Marshal(s)
			buf.Write(b)
			return
		}
	}
	buf.WriteByte('"')
	buf.WriteString(s)
	buf.WriteByte('"')
}

// bulkResponse is the part of a _bulk response the sink reads. Items is
// read only when Errors is set: otherwise every item succeeded.
type bulkResponse struct {
	Errors bool       `json:"errors"`
	Items  []bulkItem `json:"items"`
}

// bulkItem is one item of a _bulk response: the sink sends only index and
// delete actions.
type bulkItem struct {
	Index  bulkItemOutcome `json:"index"`
	Delete bulkItemOutcome `json:"delete"`
}

func (b *bulkItem) outcome() bulkItemOutcome {
	if b.Delete.Status != 0 {
		return b.Delete
	}
	return b.Index
}

type bulkItemOutcome struct {
	Status int             `json:"status"`
	Result string          `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// readBulkResponse reads the answer to a bulk request of n items. Most
// answers report no error; then the items are only counted, which costs a
// fraction of decoding them (an Elasticsearch item is ~150 bytes of
// metadata).
func readBulkResponse(body []byte, n int) (bulkResponse, error) {
	if errs, items, ok := summarizeBulk(body); ok && !errs && items == n {
		return bulkResponse{}, nil
	}
	var summary struct {
		Errors bool       `json:"errors"`
		Items  []struct{} `json:"items"`
	}
	if err := json.Unmarshal(body, &summary); err != nil {
		return bulkResponse{}, fmt.Errorf("read bulk response: %w", err)
	}
	if len(summary.Items) != n {
		return bulkResponse{}, fmt.Errorf("read bulk response: %d items for %d documents", len(summary.Items), n)
	}
	if !summary.Errors {
		return bulkResponse{}, nil
	}
	var br bulkResponse
	if err := json.Unmarshal(body, &br); err != nil {
		return bulkResponse{}, fmt.Errorf("read bulk response: %w", err)
	}
	return br, nil
}

// send delivers one bulk request, retrying transient failures until every
// item is confirmed or dead-lettered.
func (s *Sink) send(ctx context.Context, items []item, body []byte) error {
	if len(items) == 0 {
		return nil
	}
	s.record(func(st *Status) {
		bounds, b := BulkDocBuckets(), 0
		for b < len(bounds) && float64(len(items)) > bounds[b] {
			b++
		}
		st.BulkDocs[b]++
		st.BulkDocsSum += uint64(len(items))
	})
	res := s.buffer()
	defer s.bufs.Put(res)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.record(func(st *Status) { st.Retries++ })
			if err := s.backoff(ctx, attempt); err != nil {
				return err
			}
		}
		if s.limiter != nil {
			if err := s.limiter.WaitN(ctx, min(len(items), s.limiter.Burst())); err != nil {
				return err
			}
		}
		began := time.Now()
		status, resBody, err := s.doBulk(ctx, body, res)
		took := time.Since(began)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.adapt(took, true)
			s.transient(err.Error())
			if errors.Is(err, context.DeadlineExceeded) && len(items) > 1 {
				// A request the engine cannot answer within the timeout
				// would time out again as it is: send it in two halves,
				// in order, each splitting further if need be.
				s.record(func(st *Status) { st.Splits++ })
				return s.sendHalves(ctx, items)
			}
			continue
		}
		switch {
		case status == http.StatusTooManyRequests || status >= 500 || status == http.StatusUnauthorized ||
			status == http.StatusForbidden || status == http.StatusRequestTimeout:
			// Overload, outage, or credentials/privileges being fixed:
			// nothing here is the documents' fault.
			s.adapt(took, true)
			if err := s.es.AuthError(status, resBody); err != nil {
				s.transient("bulk request: " + err.Error())
			} else {
				s.transient(fmt.Sprintf("bulk request: HTTP %d: %s", status, truncate(resBody, 300)))
			}
			continue
		case status >= 400:
			return s.rejected(ctx, items, status, resBody)
		}
		br, err := readBulkResponse(resBody, len(items))
		if err != nil {
			s.transient(err.Error())
			continue
		}
		retry, err := s.settle(ctx, items, br)
		if err != nil {
			return err
		}
		s.adapt(took, len(retry) > 0)
		if len(retry) == 0 {
			return nil
		}
		items = retry
		body = bulkBody(items)
	}
}

// bulkBody is the body of a bulk request of items.
func bulkBody(items []item) []byte {
	var buf bytes.Buffer
	for _, it := range items {
		appendAction(&buf, it)
	}
	return buf.Bytes()
}

// sendHalves sends items as two bulk requests, the first half first.
func (s *Sink) sendHalves(ctx context.Context, items []item) error {
	h := len(items) / 2
	for _, part := range [][]item{items[:h], items[h:]} {
		if err := s.send(ctx, part, bulkBody(part)); err != nil {
			return err
		}
	}
	return nil
}

// bulkFilterPath asks Elasticsearch to answer a bulk request with only what
// the sink reads of it: whether any item failed, and each item's status
// and error. An item's answer shrinks from about 150 bytes of metadata to
// about 25, which the engine writes, the network carries and the sink
// reads for every document. Error answers to the whole request are not
// filtered (Elasticsearch builds them without the filter).
var bulkFilterPath = []string{"errors", "items.*.status", "items.*.error"}

// buffer is an empty buffer from s.bufs; put it back when done with it and
// with every slice of its bytes. Only answers are read into these: a
// request's body may be read by the transport after it answered.
func (s *Sink) buffer() *bytes.Buffer {
	if b, ok := s.bufs.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

// doBulk sends body as one bulk request and reads the response into rb,
// returning the status and rb's bytes.
func (s *Sink) doBulk(ctx context.Context, body []byte, rb *bytes.Buffer) (int, []byte, error) {
	s.record(func(st *Status) { st.InFlight++ })
	defer s.record(func(st *Status) { st.InFlight-- })
	rctx, cancel := context.WithTimeout(ctx, s.es.Timeout())
	defer cancel()
	res, err := esapi.BulkRequest{Body: bytes.NewReader(body), FilterPath: bulkFilterPath}.Do(rctx, s.es)
	if err != nil {
		return 0, nil, fmt.Errorf("bulk request: %w", err)
	}
	defer res.Body.Close()
	rb.Reset()
	if _, err := rb.ReadFrom(res.Body); err != nil {
		return 0, nil, fmt.Errorf("bulk response: %w", err)
	}
	return res.StatusCode, rb.Bytes(), nil
}

// settle records each item's outcome and returns, in order, the items to retry.
func (s *Sink) settle(ctx context.Context, items []item, br bulkResponse) ([]item, error) {
	var retry []item
	var indexed, deleted, stale uint64
	var last *bus.Doc
	for i, it := range items {
		out := bulkItemOutcome{Status: http.StatusOK}
		if br.Errors {
			out = br.Items[i].outcome()
		}
		if it.shadow {
			if out.Status == http.StatusTooManyRequests || out.Status >= 500 {
				retry = append(retry, it)
			} else if out.Status >= 300 && out.Status != http.StatusConflict && out.Status != http.StatusNotFound {
				s.shadowRejected(it, fmt.Sprintf("HTTP %d: %s", out.Status, out.Error))
			}
			continue
		}
		switch {
		case out.Status >= 200 && out.Status < 300:
			if it.doc.Op == bus.DocDelete {
				deleted++
			} else {
				indexed++
			}
		case out.Status == http.StatusConflict:
			stale++ // Elasticsearch already holds a newer version.
		case out.Status == http.StatusNotFound && it.doc.Op == bus.DocDelete:
			deleted++ // Nothing to delete; the tombstone still records the version.
		case out.Status == http.StatusTooManyRequests || out.Status >= 500:
			retry = append(retry, it)
			continue
		case out.Status == http.StatusNotFound && bytes.Contains(out.Error, []byte("index_not_found_exception")):
			// The index was deleted behind the sink's back (and automatic
			// creation is off): create it again and retry.
			s.idx.forget(it.doc.Index)
			if _, err := s.idx.ensure(ctx, it.doc); err != nil {
				return nil, err
			}
			retry = append(retry, it)
			continue
		default:
			if err := s.deadLetter(ctx, it, fmt.Sprintf("elasticsearch rejected the document (HTTP %d): %s", out.Status, out.Error)); err != nil {
				return nil, err
			}
			continue
		}
		last = it.doc
	}
	s.record(func(st *Status) {
		st.Indexed += indexed
		st.Deleted += deleted
		st.Stale += stale
		if last != nil && bus.LSN(last.Version) > st.LastVersion {
			st.LastVersion = bus.LSN(last.Version)
			st.LastCommit = last.CommitTime
		}
		if len(retry) == 0 {
			st.LastError = ""
		}
	})
	if len(retry) > 0 {
		s.transient(fmt.Sprintf("%d of %d documents must be retried (429/5xx)", len(retry), len(items)))
	}
	return retry, nil
}

// rejected handles a bulk request refused as a whole for a permanent reason:
// the request is split until the offending documents are isolated and
// dead-lettered, so one bad document never blocks the others.
func (s *Sink) rejected(ctx context.Context, items []item, status int, body []byte) error {
	if len(items) == 1 && items[0].shadow {
		s.shadowRejected(items[0], fmt.Sprintf("bulk request refused (HTTP %d): %s", status, truncate(body, 300)))
		return nil
	}
	if len(items) == 1 {
		return s.deadLetter(ctx, items[0], fmt.Sprintf("elasticsearch rejected the bulk request (HTTP %d): %s", status, truncate(body, 2000)))
	}
	return s.sendHalves(ctx, items)
}

func (s *Sink) deadLetter(ctx context.Context, it item, reason string) error {
	dl := &bus.DeadLetter{Stage: "sink", Error: reason}
	if it.msg != nil {
		dl.Subject, dl.Event = it.msg.Subject(), it.msg.Data()
		if h := it.msg.Headers(); h != nil {
			dl.MsgID = h.Get(jetstream.MsgIDHeader)
		}
	} else {
		// Handed over in process: the dead letter holds the document event
		// as it would have travelled on the bus, so that a replay publishes
		// it where the sink reads it.
		it.doc.V = bus.SchemaVersion
		event, err := json.Marshal(it.doc)
		if err != nil {
			return fmt.Errorf("dead-letter document %s/%s: %w", it.doc.Index, it.doc.ID, err)
		}
		dl.Subject, dl.MsgID, dl.Event = bus.DocSubject(it.doc.Index), it.doc.MsgID(), event
	}
	// An event too large to keep with its reason is stored without it (see
	// bus.Bus.DeadLetter).
	if err := s.dlq.DeadLetter(ctx, dl); err != nil {
		return fmt.Errorf("dead-letter document: %w", err)
	}
	s.record(func(st *Status) { st.DeadLetters++ })
	s.log.Warn("document dead-lettered", "subject", dl.Subject, "reason", reason)
	return nil
}

func (s *Sink) transient(msg string) {
	s.record(func(st *Status) { st.LastError = msg })
	s.log.Warn("elasticsearch unavailable, retrying", "error", msg)
}

func truncate(b []byte, n int) string {
	str := strings.TrimSpace(string(b))
	if len(str) > n {
		return str[:n] + "…"
	}
	return str
}
