package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RecvLogical is pg_recvlogical streaming a slot with pgoutput (protocol
// version 1) to its standard output, which this process reads: it records
// in Arrivals when the bytes of each inserted row arrived, the row being
// named by its first column (an integer id). It is the ceiling of capture:
// PostgreSQL decoding the same WAL for a client that does nothing with it.
type RecvLogical struct {
	*Process
	out *pgoutputReader
}

// StartRecvLogical starts bin (pg_recvlogical) on slot of the database at
// dbURL for publication. The process is killed at the end of the test.
func StartRecvLogical(tb testing.TB, bin, dbURL, slot, publication string, arrivals *Arrivals) *RecvLogical {
	tb.Helper()
	cmd := exec.Command(bin, "-d", dbURL, "--slot", slot, "--start", "--no-loop",
		"-o", "proto_version=1", "-o", "publication_names="+publication, "-f", "-")
	r := &pgoutputReader{arrivals: arrivals}
	return &RecvLogical{Process: StartPiped(tb, cmd, r), out: r}
}

// Err is the first error reading the output, if any.
func (r *RecvLogical) Err() error {
	r.out.mu.Lock()
	defer r.out.mu.Unlock()
	return r.out.err
}

// Stop asks pg_recvlogical to end (SIGTERM) and waits for it.
func (r *RecvLogical) Stop() error {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		r.Kill()
		return fmt.Errorf("stop pg_recvlogical: still running 60s after SIGTERM; killed")
	}
	if err := r.Err(); err != nil {
		return err
	}
	// pg_recvlogical exits 0 or 1 on SIGTERM depending on whether it was
	// waiting on the server when the signal came; both are a clean end.
	return nil
}

// pgoutputReader is the writer pg_recvlogical's output is copied into: it
// splits the stream into messages and records every Insert.
type pgoutputReader struct {
	arrivals *Arrivals

	mu      sync.Mutex
	pending []byte
	ids     []int64
	err     error
}

func (r *pgoutputReader) Write(p []byte) (int, error) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return len(p), nil
	}
	buf := p
	if len(r.pending) > 0 {
		r.pending = append(r.pending, p...)
		buf = r.pending
	}
	r.ids = r.ids[:0]
	for len(buf) > 0 {
		n, ok, err := pgoutputFrame(buf)
		if err != nil {
			r.err = fmt.Errorf("read pg_recvlogical output: %w", err)
			return len(p), nil
		}
		if !ok {
			break
		}
		if key, ok := insertedKey(buf[:n-1]); ok {
			id, err := strconv.ParseInt(key, 10, 64)
			if err != nil {
				r.arrivals.Stray()
			} else {
				r.ids = append(r.ids, id)
			}
		}
		buf = buf[n:]
	}
	r.arrivals.Record(now, r.ids...)
	r.pending = append(r.pending[:0], buf...)
	return len(p), nil
}

// errPgoutput says the bytes are not pgoutput messages as pg_recvlogical
// writes them.
var errPgoutput = errors.New("not a pgoutput message")

// pgoutputFrame returns the length n of the pgoutput message (protocol
// version 1) at the start of b, as pg_recvlogical writes it — the message,
// then a newline, which n includes. ok is false while b holds only part of
// it.
func pgoutputFrame(b []byte) (n int, ok bool, err error) {
	c := cursor{b: b}
	if len(b) == 0 {
		return 0, false, nil
	}
	switch t := c.byte(); t {
	case 'B': // final LSN, commit time, xid
		c.skip(20)
	case 'C': // flags, commit LSN, end LSN, commit time
		c.skip(25)
	case 'O': // origin LSN, name
		c.skip(8)
		c.cstring()
	case 'Y': // type oid, namespace, name
		c.skip(4)
		c.cstring()
		c.cstring()
	case 'R': // relation oid, namespace, name, replica identity, columns
		c.skip(4)
		c.cstring()
		c.cstring()
		c.skip(1)
		for range c.uint16() {
			c.skip(1) // flags
			c.cstring()
			c.skip(8) // type oid, type modifier
		}
	case 'I': // relation oid, 'N', new tuple
		c.skip(4)
		c.expect('N')
		c.tuple()
	case 'U': // relation oid, optional 'K'/'O' old tuple, 'N', new tuple
		c.skip(4)
		if k := c.byte(); k == 'K' || k == 'O' {
			c.tuple()
			c.expect('N')
		} else if k != 'N' && c.err == nil && !c.short {
			c.err = fmt.Errorf("%w: update with tuple marker %q", errPgoutput, k)
		}
		c.tuple()
	case 'D': // relation oid, 'K'/'O', old tuple
		c.skip(4)
		if k := c.byte(); k != 'K' && k != 'O' && c.err == nil && !c.short {
			c.err = fmt.Errorf("%w: delete with tuple marker %q", errPgoutput, k)
		}
		c.tuple()
	case 'T': // relations, options, relation oids
		nrel := c.uint32()
		c.skip(1)
		c.skip(4 * int(nrel))
	default:
		return 0, false, fmt.Errorf("%w: message type %q", errPgoutput, t)
	}
	c.expect('\n')
	if c.err != nil {
		return 0, false, c.err
	}
	if c.short {
		return 0, false, nil
	}
	return c.i, true, nil
}

// insertedKey returns the first column of an Insert message (without its
// trailing newline) when it is sent as text.
func insertedKey(msg []byte) (string, bool) {
	// 'I', relation oid, 'N', column count, kind, length, value.
	if len(msg) < 1+4+1+2+1+4 || msg[0] != 'I' || msg[5] != 'N' || binary.BigEndian.Uint16(msg[6:]) == 0 || msg[8] != 't' {
		return "", false
	}
	n := int(binary.BigEndian.Uint32(msg[9:]))
	if n < 0 || 13+n > len(msg) {
		return "", false
	}
	return string(msg[13 : 13+n]), true
}

// maxPgoutputField bounds a column value's length: PostgreSQL's own limit
// is 1 GB.
const maxPgoutputField = 1 << 30

// cursor reads a pgoutput message; short says b ended first, err that the
// bytes cannot be one.
type cursor struct {
	b     []byte
	i     int
	short bool
	err   error
}

func (c *cursor) failed() bool { return c.short || c.err != nil }

func (c *cursor) skip(n int) {
	if c.failed() {
		return
	}
	if n > len(c.b)-c.i {
		c.short, c.i = true, len(c.b)
		return
	}
	c.i += n
}

func (c *cursor) byte() byte {
	if c.failed() || c.i >= len(c.b) {
		c.short = c.short || c.err == nil
		return 0
	}
	c.i++
	return c.b[c.i-1]
}

func (c *cursor) expect(want byte) {
	if got := c.byte(); !c.failed() && got != want {
		c.err = fmt.Errorf("%w: %q where %q belongs at byte %d", errPgoutput, got, want, c.i-1)
	}
}

func (c *cursor) uint16() uint16 {
	start := c.i
	c.skip(2)
	if c.failed() {
		return 0
	}
	return binary.BigEndian.Uint16(c.b[start:])
}

func (c *cursor) uint32() uint32 {
	start := c.i
	c.skip(4)
	if c.failed() {
		return 0
	}
	return binary.BigEndian.Uint32(c.b[start:])
}

func (c *cursor) cstring() {
	if c.failed() {
		return
	}
	for j := c.i; j < len(c.b); j++ {
		if c.b[j] == 0 {
			c.i = j + 1
			return
		}
	}
	c.short, c.i = true, len(c.b)
}

// tuple skips TupleData: a column count, then per column 'n' (null), 'u'
// (unchanged TOAST value) or 't'/'b' with a length and the value.
func (c *cursor) tuple() {
	for range c.uint16() {
		switch k := c.byte(); k {
		case 'n', 'u':
		case 't', 'b':
			n := c.uint32()
			if n > maxPgoutputField && !c.failed() {
				c.err = fmt.Errorf("%w: column value of %d bytes", errPgoutput, n)
			}
			c.skip(int(n))
		default:
			if !c.failed() {
				c.err = fmt.Errorf("%w: column kind %q", errPgoutput, k)
			}
		}
		if c.failed() {
			return
		}
	}
}
