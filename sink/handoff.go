package sink

import (
	"context"

	"github.com/walsearch/walsearch/bus"
)

// Handoff takes the documents of a transform stage that runs in the same
// process as the sink and writes them through the sink, without a trip
// through the bus: Publish collects, Flush writes what was collected with
// Sink.Write and returns once Elasticsearch confirmed every document (or it
// was dead-lettered). The transform stage acknowledges its changes only
// after Flush, so the delivery guarantees are those of the docs stream,
// minus one disk write and one acknowledgement per document.
//
// A Handoff is used by one goroutine at a time (transform.Publisher's
// contract).
type Handoff struct {
	sink *Sink
	docs []*bus.Doc
}

// NewHandoff returns a Handoff writing through s.
func NewHandoff(s *Sink) *Handoff { return &Handoff{sink: s} }

// Publish queues d for the next Flush.
func (h *Handoff) Publish(_ context.Context, d *bus.Doc) error {
	h.docs = append(h.docs, d)
	return nil
}

// Flush writes the queued documents and waits for them to be confirmed.
// On error the documents are dropped from the queue: the caller does not
// acknowledge their changes, which the bus delivers again.
func (h *Handoff) Flush(ctx context.Context) error {
	if len(h.docs) == 0 {
		return nil
	}
	err := h.sink.Write(ctx, h.docs)
	clear(h.docs) // the sink holds none of them past Write
	h.docs = h.docs[:0]
	return err
}
