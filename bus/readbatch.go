package bus

import (
	"strconv"
)

// Message is one change message ready to publish: what
// ChangePublisher.Publish sends for a run of changes.
type Message struct {
	Subject string
	ID      string
	Data    []byte
	Count   int // changes in Data
}

// ReadBatch builds change messages of OpRead changes of one table at one
// LSN straight from rows already encoded as JSON. A snapshot reads rows as
// text and has no use for them as Changes, so it skips building them, and
// their keys are decoded once per message instead of once per row.
//
// The messages are the ones ChangePublisher.Publish would send for the same
// changes: same subject, id and bytes, cut at the same places (at most
// MaxBatchEvents changes and MaxBatchBytes, a larger change alone), so that
// a message republished after a crash is still dropped as a duplicate.
type ReadBatch struct {
	subject  string
	first    Change   // schema, table and LSN; Key set per message
	head     []byte   // `{"v":…,"op":"r","schema":…,"table":…,"key":[`
	keyHeads [][]byte // per key column: `{"name":…,"value":`
	tail     []byte   // `,"lsn":"…","pos":`

	buf []byte // '[' and the changes so far
	n   int
}

// NewReadBatch returns an empty batch for reads of schema.table at lsn whose
// key columns are keyNames, in key order.
func NewReadBatch(schema, table string, keyNames []string, lsn LSN) *ReadBatch {
	b := &ReadBatch{
		subject: ChangeSubject(schema, table),
		first:   Change{Op: OpRead, Schema: schema, Table: table, LSN: lsn},
	}
	h := append([]byte(`{"v":`), strconv.Itoa(SchemaVersion)...)
	h = append(h, `,"op":`...)
	h = appendString(h, string(OpRead))
	h = append(h, `,"schema":`...)
	h = appendString(h, schema)
	h = append(h, `,"table":`...)
	h = appendString(h, table)
	if len(keyNames) > 0 {
		h = append(h, `,"key":[`...)
	}
	b.head = h
	for i, name := range keyNames {
		var k []byte
		if i > 0 {
			k = append(k, ',')
		}
		k = append(k, `{"name":`...)
		k = appendString(k, name)
		b.keyHeads = append(b.keyHeads, append(k, `,"value":`...))
	}
	t := append([]byte(`,"lsn":"`), lsn.String()...)
	b.tail = append(t, `","pos":`...)
	return b
}

// Add appends the read of one row at position pos: keyJSON holds the JSON
// value of each key column in key order, row the row as a JSON object. key
// returns the decoded key; it is called only for a message's first change,
// whose key names the message (see BatchMsgID).
//
// When the change does not fit in the message being built, Add closes that
// message, returns it (full is true) for the caller to publish, and starts
// the next one with the change.
func (b *ReadBatch) Add(pos uint64, keyJSON [][]byte, row []byte, key func() []Column) (msg Message, full bool) {
	size := b.changeSize(pos, keyJSON, row)
	// As EncodeChanges cuts: a change that would take the closed message
	// past MaxBatchBytes opens the next one, unless it is alone.
	if b.n == MaxBatchEvents || b.n > 0 && len(b.buf)+1+size+1 > MaxBatchBytes {
		msg, full = b.take()
	}
	if b.n == 0 {
		if cap(b.buf) < 1+size {
			b.buf = make([]byte, 0, max(MaxBatchBytes, 1+size+1))
		}
		b.buf = append(b.buf, '[')
		b.first.Key = key()
	} else {
		b.buf = append(b.buf, ',')
	}
	b.buf = append(b.buf, b.head...)
	for i, v := range keyJSON {
		b.buf = append(b.buf, b.keyHeads[i]...)
		b.buf = append(b.buf, v...)
		b.buf = append(b.buf, '}')
	}
	if len(keyJSON) > 0 {
		b.buf = append(b.buf, ']')
	}
	b.buf = append(b.buf, `,"row":`...)
	b.buf = append(b.buf, row...)
	b.buf = append(b.buf, b.tail...)
	b.buf = strconv.AppendUint(b.buf, pos, 10)
	b.buf = append(b.buf, '}')
	b.n++
	return msg, full
}

// changeSize is how many bytes Add writes for a change, before its
// separator.
func (b *ReadBatch) changeSize(pos uint64, keyJSON [][]byte, row []byte) int {
	n := len(b.head) + len(`,"row":`) + len(row) + len(b.tail) + digits(pos) + 1
	for i, v := range keyJSON {
		n += len(b.keyHeads[i]) + len(v) + 1
	}
	if len(keyJSON) > 0 {
		n++
	}
	return n
}

// digits is the length of v in decimal.
func digits(v uint64) int {
	n := 1
	for ; v >= 10; v /= 10 {
		n++
	}
	return n
}

// Take returns the message being built, if it holds any change, and empties
// the batch.
func (b *ReadBatch) Take() (Message, bool) { return b.take() }

func (b *ReadBatch) take() (Message, bool) {
	if b.n == 0 {
		return Message{}, false
	}
	data := b.buf
	if b.n == 1 {
		data = data[1:]
	} else {
		data = append(data, ']')
	}
	msg := Message{Subject: b.subject, ID: batchID(&b.first, b.n), Data: data, Count: b.n}
	b.buf, b.n = nil, 0 // the message keeps its buffer
	return msg, true
}
