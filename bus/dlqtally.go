package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// dlqReadBatch is how many dead letters are fetched per request while
// counting.
const dlqReadBatch = 512

// dlqTally counts the dead letters per table of origin ("schema.table").
//
// The table of an entry is only known by reading it, so the tally keeps its
// counts and the last sequence it read, and on each call reads only the
// entries added since. Entries also disappear (a replay removes its entry, a
// purge removes many): when the stream then holds fewer entries than were
// counted, the tally counts everything again from the first entry.
type dlqTally struct {
	js jetstream.JetStream

	mu   sync.Mutex
	last uint64 // the last stream sequence counted
	// counted holds the entries per table; "" counts the entries whose
	// table cannot be told.
	counted map[string]uint64
}

func newDLQTally(js jetstream.JetStream) *dlqTally {
	return &dlqTally{js: js, counted: map[string]uint64{}}
}

// count returns the number of dead letters and, by table, those whose table
// is known. When reading the entries fails (say, a large stream is not read
// in time), it still returns the number, without the breakdown; what was
// read is kept, and the next call goes on from there.
func (t *dlqTally) count(ctx context.Context) (uint64, map[string]uint64, error) {
	s, err := t.js.Stream(ctx, DLQStream)
	if err != nil {
		return 0, nil, fmt.Errorf("dlq stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("dlq stream info: %w", err)
	}
	st := info.State
	t.mu.Lock()
	defer t.mu.Unlock()
	if st.LastSeq < t.last {
		t.reset() // the stream was recreated
	}
	if st.LastSeq > t.last {
		if err := t.read(ctx, s, t.last+1, st.LastSeq); err != nil {
			return st.Msgs, nil, err
		}
	}
	if t.sum() != st.Msgs {
		t.reset()
		if st.Msgs > 0 {
			if err := t.read(ctx, s, st.FirstSeq, st.LastSeq); err != nil {
				return st.Msgs, nil, err
			}
		}
	}
	out := maps.Clone(t.counted)
	delete(out, "")
	return st.Msgs, out, nil
}

func (t *dlqTally) reset() {
	t.last = 0
	clear(t.counted)
}

func (t *dlqTally) sum() uint64 {
	var n uint64
	for _, c := range t.counted {
		n += c
	}
	return n
}

// read counts the entries from sequence from up to sequence to, through a
// short-lived consumer that is deleted afterwards.
func (t *dlqTally) read(ctx context.Context, s jetstream.Stream, from, to uint64) error {
	cons, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		AckPolicy: jetstream.AckNonePolicy, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
		MemoryStorage: true, InactiveThreshold: time.Minute,
	})
	if err != nil {
		return fmt.Errorf("read dead letters: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	for {
		batch, err := cons.FetchNoWait(dlqReadBatch)
		if err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		n := 0
		done := false
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("read dead letters: %w", err)
			}
			if md.Sequence.Stream > to {
				done = true
				break
			}
			n++
			t.counted[deadLetterTable(m.Data())]++
			t.last = md.Sequence.Stream
			if md.Sequence.Stream == to || md.NumPending == 0 {
				done = true
				break
			}
		}
		if err := batch.Error(); err != nil && !done {
			return fmt.Errorf("read dead letters: %w", err)
		}
		if done || n == 0 {
			// n == 0: the entries up to `to` were removed meanwhile.
			t.last = max(t.last, to)
			return nil
		}
	}
}

// deadLetterTable returns "schema.table" of the row a dead letter came from,
// or "" when it cannot be told: the event's own schema and table (a change,
// or a document, which names the table it was made from), else the table
// the change subject names.
func deadLetterTable(data []byte) string {
	var dl DeadLetter
	if json.Unmarshal(data, &dl) != nil {
		return ""
	}
	return dl.Origin()
}

// Origin returns "schema.table" of the row dl came from, or "" when it
// cannot be told: the event's own schema and table (a change, or a
// document, which names the table it was made from), else the table the
// change subject names.
func (dl *DeadLetter) Origin() string {
	var origin struct {
		Schema string `json:"schema"`
		Table  string `json:"table"`
	}
	if json.Unmarshal(dl.Event, &origin) == nil && origin.Table != "" {
		return origin.Schema + "." + origin.Table
	}
	if schema, table, ok := ParseChangeSubject(dl.Subject); ok {
		return schema + "." + table
	}
	return ""
}
