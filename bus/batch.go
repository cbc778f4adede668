package bus

import (
	"fmt"
	"slices"
	"strconv"
)

// Batching: a change message holds either one change (a JSON object) or
// several consecutive changes of one table with one LSN (a JSON array, in
// order). Grouping the rows of a transaction or a snapshot chunk this way
// is what lets capture keep up with PostgreSQL: the bus's cost is mostly per
// message, not per byte. Readers decode both forms with DecodeChanges.
const (
	// MaxBatchBytes bounds an encoded batch message. A change larger than
	// this travels alone. It stays far under NATS's default max_payload
	// (1 MiB), and keeps what a reader fetches at once small: readers fetch
	// by message count.
	MaxBatchBytes = 64 << 10
	// MaxBatchEvents bounds the changes in one message.
	MaxBatchEvents = 512
)

// sameBatch is the length of the longest prefix of evs (at most
// MaxBatchEvents) that may share a message: one table, one LSN, no
// watermark.
func sameBatch(evs []*Change) int {
	first := evs[0]
	if first.Op == OpWatermark {
		return 1
	}
	n := 1
	for n < len(evs) && n < MaxBatchEvents {
		e := evs[n]
		if e.Op == OpWatermark || e.LSN != first.LSN || e.Table != first.Table || e.Schema != first.Schema {
			break
		}
		n++
	}
	return n
}

// EncodeChanges encodes the longest prefix of evs that fits in maxBytes (at
// least one change) and says how many it took. One change is encoded as an
// object, several as an array. evs must share one subject.
func EncodeChanges(evs []*Change, maxBytes int) (data []byte, used int, err error) {
	if len(evs) == 0 {
		return nil, 0, fmt.Errorf("encode changes: none given")
	}
	if len(evs) == 1 {
		b, err := encodeChange(nil, evs[0])
		return b, 1, err
	}
	buf := []byte{'['}
	for _, ev := range evs {
		if used == 1 {
			// Rows of one table are alike: size the buffer from the first.
			buf = slices.Grow(buf, max(0, min(maxBytes, len(buf)*len(evs)+len(evs))-len(buf)))
		}
		mark := len(buf)
		if used > 0 {
			buf = append(buf, ',')
		}
		if buf, err = encodeChange(buf, ev); err != nil {
			return nil, 0, err
		}
		if used > 0 && len(buf)+1 > maxBytes {
			buf = buf[:mark]
			break
		}
		used++
	}
	if used == 1 {
		return buf[1:], 1, nil
	}
	return append(buf, ']'), used, nil
}

// encodeChange appends ev, stamped with this build's schema version, to b.
func encodeChange(b []byte, ev *Change) ([]byte, error) {
	ev.V = SchemaVersion
	out, err := appendChange(b, ev)
	if err != nil {
		return nil, fmt.Errorf("encode change %s.%s: %w", ev.Schema, ev.Table, err)
	}
	return out, nil
}

// nextMessage encodes the message that starts evs: as many of them as may
// share it (see sameBatch and EncodeChanges), Count saying how many.
func nextMessage(evs []*Change) (Message, error) {
	data, used, err := EncodeChanges(evs[:sameBatch(evs)], MaxBatchBytes)
	if err != nil {
		return Message{}, err
	}
	return Message{Subject: ChangeSubject(evs[0].Schema, evs[0].Table), ID: BatchMsgID(evs[:used]), Data: data, Count: used}, nil
}

// BatchMsgID is the message id of a message holding evs: the first change's
// id, plus how many follow it. A message republished after a crash with the
// same changes gets the same id, so JetStream drops it as a duplicate.
func BatchMsgID(evs []*Change) string { return batchID(evs[0], len(evs)) }

// batchID is the id of a message of n changes, the first being first.
func batchID(first *Change, n int) string {
	id := first.MsgID()
	if n > 1 {
		id += "+" + strconv.Itoa(n-1)
	}
	return id
}
