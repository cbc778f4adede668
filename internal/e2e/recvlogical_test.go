package e2e

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
)

// msg builds a pgoutput message from its parts: strings are written as
// they are, ints as big-endian of their Go size.
func msg(parts ...any) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		switch v := p.(type) {
		case byte:
			b.WriteByte(v)
		case string:
			b.WriteString(v)
		case uint16, uint32, uint64:
			_ = binary.Write(&b, binary.BigEndian, v)
		default:
			panic("msg: unknown part")
		}
	}
	return b.Bytes()
}

// textCol is a 't' column of TupleData.
func textCol(s string) []any { return []any{byte('t'), uint32(len(s)), s} }

func cat(groups ...[]any) []any {
	var out []any
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

var pgoutputMessages = []struct {
	name string
	msg  []byte
	key  string // first column of an insert
}{
	{"begin", msg(byte('B'), uint64(0x16B3748), uint64(7), uint32(734)), ""},
	{"commit", msg(byte('C'), byte(0), uint64(0x16B3748), uint64(0x16B3790), uint64(7)), ""},
	{"origin", msg(byte('O'), uint64(1), "node\x00"), ""},
	{"type", msg(byte('Y'), uint32(16390), "public\x00", "mood\x00"), ""},
	{"relation", msg(cat([]any{byte('R'), uint32(16384), "public\x00", "items\x00", byte('d'), uint16(2)},
		[]any{byte(1), "id\x00", uint32(20), uint32(0xFFFFFFFF)}, []any{byte(0), "name\x00", uint32(25), uint32(0xFFFFFFFF)})...), ""},
	{"insert", msg(cat([]any{byte('I'), uint32(16384), byte('N'), uint16(3)}, textCol("42"), []any{byte('n')}, textCol("a\nline\x00with zero"))...), "42"},
	{"insert with an empty key", msg(cat([]any{byte('I'), uint32(16384), byte('N'), uint16(1)}, textCol(""))...), ""},
	{"update", msg(cat([]any{byte('U'), uint32(16384), byte('N'), uint16(2)}, textCol("7"), []any{byte('u')})...), ""},
	{"update with old key", msg(cat([]any{byte('U'), uint32(16384), byte('K'), uint16(1)}, textCol("7"), []any{byte('N'), uint16(1)}, textCol("8"))...), ""},
	{"delete", msg(cat([]any{byte('D'), uint32(16384), byte('O'), uint16(1)}, textCol("9"))...), ""},
	{"truncate", msg(byte('T'), uint32(2), byte(1), uint32(16384), uint32(16385)), ""},
}

func TestPgoutputFrame(t *testing.T) {
	for _, tc := range pgoutputMessages {
		t.Run(tc.name, func(t *testing.T) {
			framed := append(append([]byte{}, tc.msg...), '\n')
			stream := append(append([]byte{}, framed...), 'B', 0, 0)
			n, ok, err := pgoutputFrame(stream)
			if err != nil || !ok || n != len(framed) {
				t.Fatalf("frame = %d, %v, %v; want %d, true, nil", n, ok, err, len(framed))
			}
			for cut := range len(framed) {
				if n, ok, err := pgoutputFrame(framed[:cut]); ok || err != nil {
					t.Fatalf("first %d of %d bytes: frame = %d, %v, %v; want incomplete", cut, len(framed), n, ok, err)
				}
			}
			key, isInsert := insertedKey(tc.msg)
			if key != tc.key || isInsert != (tc.msg[0] == 'I') {
				t.Errorf("insertedKey = %q, %v; want %q", key, isInsert, tc.key)
			}
			// The messages are real pgoutput: pglogrepl reads them too.
			if _, err := pglogrepl.Parse(tc.msg); err != nil {
				t.Errorf("pglogrepl cannot read the test message: %v", err)
			}
		})
	}
}

func TestPgoutputFrameRefuses(t *testing.T) {
	for name, b := range map[string][]byte{
		"unknown type":         []byte("Zabc\n"),
		"no newline after":     append(msg(byte('B'), uint64(1), uint64(2), uint32(3)), 'x'),
		"insert without N":     msg(byte('I'), uint32(1), byte('X'), uint16(0), "\n"),
		"unknown column kind":  msg(byte('I'), uint32(1), byte('N'), uint16(1), byte('q'), "\n"),
		"delete without K/O":   msg(byte('D'), uint32(1), byte('N'), uint16(0), "\n"),
		"update with bad mark": msg(byte('U'), uint32(1), byte('Q'), uint16(0), "\n"),
		"huge column":          msg(byte('I'), uint32(1), byte('N'), uint16(1), byte('t'), uint32(0x7FFFFFFF), "\n"),
	} {
		if _, _, err := pgoutputFrame(b); !errors.Is(err, errPgoutput) {
			t.Errorf("%s: err = %v, want errPgoutput", name, err)
		}
	}
}

// TestPgoutputReader feeds a stream in every split into two writes and
// checks that each insert is recorded once, at the time of the write that
// completed it.
func TestPgoutputReader(t *testing.T) {
	var stream []byte
	end42 := 0 // where the insert of row 42 ends
	for _, tc := range pgoutputMessages {
		stream = append(append(stream, tc.msg...), '\n')
		if tc.key == "42" {
			end42 = len(stream)
		}
	}
	for cut := range len(stream) + 1 {
		a := NewArrivals(100)
		r := &pgoutputReader{arrivals: a}
		r.Write(stream[:cut])
		between := time.Now()
		r.Write(stream[cut:])
		if r.err != nil {
			t.Fatalf("split at %d: %v", cut, r.err)
		}
		rows, warm, dup, stray := a.Counts()
		// The inserts are 42 and "" (not an integer).
		if rows != 1 || warm != 0 || dup != 0 || stray != 1 {
			t.Fatalf("split at %d: rows %d, warm %d, dup %d, stray %d; want 1, 0, 0, 1", cut, rows, warm, dup, stray)
		}
		got := a.Times()[41]
		if inFirst := cut >= end42; got.IsZero() || inFirst && got.After(between) || !inFirst && got.Before(between) {
			t.Fatalf("split at %d: row 42 recorded at %v, the second write began at %v; its message ends at %d", cut, got, between, end42)
		}
		if len(r.pending) != 0 {
			t.Fatalf("split at %d: %d bytes left over", cut, len(r.pending))
		}
	}
}

func FuzzPgoutputFrame(f *testing.F) {
	for _, tc := range pgoutputMessages {
		f.Add(append(append([]byte{}, tc.msg...), '\n'))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok, err := pgoutputFrame(b)
		if err != nil || !ok {
			if n != 0 {
				t.Fatalf("n = %d without a message", n)
			}
			return
		}
		if n < 2 || n > len(b) || b[n-1] != '\n' {
			t.Fatalf("n = %d of %d bytes", n, len(b))
		}
		// A message's length depends on its own bytes only.
		if n2, ok2, err2 := pgoutputFrame(b[:n]); n2 != n || !ok2 || err2 != nil {
			t.Fatalf("alone: %d, %v, %v; in the stream: %d", n2, ok2, err2, n)
		}
		insertedKey(b[:n-1])
	})
}
