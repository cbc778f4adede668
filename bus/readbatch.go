package bus

import (
	"strconv"
)

// Message is one change message ready to publish.
type Message struct {
	Subject string
	ID      string
	Data    []byte
	Count   int // changes in Data
}

// ReadBatch builds change messages of OpRead changes of one table at one
// LSN straight from rows already encoded as JSON: a snapshot reads rows as
// text and has no use for them as Changes.
//
// Its messages use the read batch form, which states what the changes share
// once instead of in every change:
//
//	{"v":3,"op":"read","schema":"public","table":"items","key_columns":["id"],
//	 "lsn":"0/16B3748","pos":0,"rows":[{"id":1,…},{"id":2,…}]}
//
// The i-th row is the change at position pos+i; its key is the row's
// key_columns, which a read's row always holds. This halves what a snapshot
// sends through the bus. DecodeChanges expands the form into the same
// changes as the general one. A message holds at most MaxBatchEvents rows
// and MaxBatchBytes, a larger row alone, and is named like any other batch
// (see BatchMsgID), so that a message republished after a crash is dropped
// as a duplicate.
type ReadBatch struct {
	subject string
	suffix  string // of message ids: "@k" in partition k of several
	first   Change // schema, table and LSN; Key and Pos set per message
	head    []byte // the message up to `"pos":`

	buf []byte
	n   int
}

// NewReadBatch returns an empty batch for reads of schema.table at lsn whose
// key columns are keyNames, in key order.
func NewReadBatch(schema, table string, keyNames []string, lsn LSN) *ReadBatch {
	h := appendBatchHead(nil, OpRead, schema, table, keyNames, lsn)
	return &ReadBatch{
		subject: ChangeSubject(schema, table),
		first:   Change{Op: OpRead, Schema: schema, Table: table, LSN: lsn},
		head:    h,
	}
}

// Add appends the read of one row, a JSON object, at position pos, which
// must follow the previous row's. key returns the decoded key; it is called
// only for a message's first row, whose key names the message.
//
// When the row does not fit in the message being built, Add closes that
// message, returns it (full is true) for the caller to publish, and starts
// the next one with the row.
func (b *ReadBatch) Add(pos uint64, row []byte, key func() []Column) (msg Message, full bool) {
	if b.n == MaxBatchEvents || b.n > 0 && len(b.buf)+1+len(row)+len("]}") > MaxBatchBytes {
		msg, full = b.take()
	}
	if b.n == 0 {
		size := len(b.head) + 20 + len(`,"rows":[`) + len(row) + len("]}")
		b.buf = make([]byte, 0, max(MaxBatchBytes, size))
		b.buf = append(b.buf, b.head...)
		b.buf = strconv.AppendUint(b.buf, pos, 10)
		b.buf = append(b.buf, `,"rows":[`...)
		b.first.Key, b.first.Pos = key(), pos
	} else {
		b.buf = append(b.buf, ',')
	}
	b.buf = append(b.buf, row...)
	b.n++
	return msg, full
}

// Take returns the message being built, if it holds any row, and empties
// the batch.
func (b *ReadBatch) Take() (Message, bool) { return b.take() }

func (b *ReadBatch) take() (Message, bool) {
	if b.n == 0 {
		return Message{}, false
	}
	msg := Message{Subject: b.subject, ID: batchID(&b.first, b.n) + b.suffix, Data: append(b.buf, "]}"...), Count: b.n}
	b.buf, b.n = nil, 0 // the message keeps its buffer
	return msg, true
}

// ReadBatches builds the read batches of one table at one LSN in every
// partition: a row goes to the batch of its key's partition (PartitionOf),
// each with positions of its own. With one partition it is one ReadBatch.
type ReadBatches struct {
	parts []*ReadBatch
	pos   []uint64
	next  int // the next partition Take looks at
}

// NewReadBatches returns empty batches for reads of schema.table at lsn in
// partitions partitions (see NewReadBatch).
func NewReadBatches(schema, table string, keyNames []string, lsn LSN, partitions int) *ReadBatches {
	partitions = max(1, partitions)
	b := &ReadBatches{parts: make([]*ReadBatch, partitions), pos: make([]uint64, partitions)}
	for k := range b.parts {
		rb := NewReadBatch(schema, table, keyNames, lsn)
		if partitions > 1 {
			rb.subject = PartitionChangeSubject(schema, table, k, partitions)
			rb.suffix = "@" + strconv.Itoa(k)
		}
		b.parts[k] = rb
	}
	return b
}

// Add is ReadBatch.Add in the row's partition; with several partitions,
// key is called for every row, and pos is ignored: each partition numbers
// its rows itself.
func (b *ReadBatches) Add(pos uint64, row []byte, key func() []Column) (msg Message, full bool) {
	if len(b.parts) == 1 {
		return b.parts[0].Add(pos, row, key)
	}
	kv := key()
	k := PartitionOf(kv, len(b.parts))
	p := b.pos[k]
	b.pos[k]++
	return b.parts[k].Add(p, row, func() []Column { return kv })
}

// Take returns a message being built and empties its batch; call it until
// it returns false to take every partition's.
func (b *ReadBatches) Take() (Message, bool) {
	for ; b.next < len(b.parts); b.next++ {
		if m, ok := b.parts[b.next].Take(); ok {
			return m, true
		}
	}
	b.next = 0
	return Message{}, false
}
