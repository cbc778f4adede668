package capture

import (
	"bytes"
	"errors"
	"strings"
)

// copyField is one column of a row in COPY's text format.
type copyField struct {
	null bool
	text string
}

var errCopySyntax = errors.New("malformed COPY text row")

// parseCopyRow splits one line of COPY ... TO STDOUT text output (without its
// newline) into fields: tab separated, \N for NULL, backslash escapes undone.
func parseCopyRow(line []byte) ([]copyField, error) { return appendCopyRow(nil, string(line)) }

// appendCopyRow is parseCopyRow for a line already copied to a string,
// appending to fields (to reuse its array). Fields without an escape are
// parts of s.
func appendCopyRow(fields []copyField, s string) ([]copyField, error) {
	plain := strings.IndexByte(s, '\\') < 0 // no escape and no NULL in the row
	for {
		end := strings.IndexByte(s, '\t')
		raw := s
		if end >= 0 {
			raw = s[:end]
		}
		f := copyField{text: raw}
		if !plain {
			var err error
			if f, err = unescapeCopy(raw); err != nil {
				return nil, err
			}
		}
		fields = append(fields, f)
		if end < 0 {
			return fields, nil
		}
		s = s[end+1:]
	}
}

func unescapeCopy(raw string) (copyField, error) {
	if raw == `\N` {
		return copyField{null: true}, nil
	}
	if strings.IndexByte(raw, '\\') < 0 {
		return copyField{text: raw}, nil
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(raw) {
			return copyField{}, errCopySyntax
		}
		switch c = raw[i]; c {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, '\v')
		case 'x':
			v, n := 0, 0
			for n < 2 && i+1 < len(raw) && isHex(raw[i+1]) {
				v = v<<4 | hexVal(raw[i+1])
				i++
				n++
			}
			if n == 0 {
				out = append(out, 'x')
				continue
			}
			out = append(out, byte(v))
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for n := 1; n < 3 && i+1 < len(raw) && isOctal(raw[i+1]); n++ {
				v = v<<3 | int(raw[i+1]-'0')
				i++
			}
			out = append(out, byte(v))
		default:
			out = append(out, c)
		}
	}
	return copyField{text: string(out)}, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}

// copyRows is the io.Writer COPY output is written to: it cuts the stream
// into lines (a raw newline always ends a row; newlines in values are
// escaped) and hands each parsed row to onRow.
type copyRows struct {
	buf    []byte
	fields []copyField // reused: onRow must not keep the slice
	onRow  func([]copyField) error

	// lines holds the rows' text: each row is appended and its fields are
	// parts of the builder's string. A builder never changes what it
	// wrote, and a new one is started when it is full, so those strings stay
	// valid for as long as they are kept, while rows cost one allocation per
	// lineBlock bytes instead of one each.
	lines strings.Builder
}

// lineBlock is the size of the blocks copyRows copies rows into.
const lineBlock = 64 << 10

func (w *copyRows) Write(p []byte) (int, error) {
	rest := p
	if len(w.buf) > 0 {
		// The end of a row begun in an earlier write.
		nl := bytes.IndexByte(p, '\n')
		if nl < 0 {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		w.buf = append(w.buf, p[:nl]...)
		if err := w.row(w.buf); err != nil {
			return 0, err
		}
		w.buf = w.buf[:0:0] // let a large row's buffer go
		rest = p[nl+1:]
	}
	for {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			break
		}
		if err := w.row(rest[:nl]); err != nil {
			return 0, err
		}
		rest = rest[nl+1:]
	}
	w.buf = append(w.buf, rest...) // p is not ours to keep
	return len(p), nil
}

func (w *copyRows) row(line []byte) error {
	if w.lines.Cap()-w.lines.Len() < len(line) {
		w.lines = strings.Builder{} // the strings of the last block stay as they are
		w.lines.Grow(max(lineBlock, len(line)))
	}
	start := w.lines.Len()
	w.lines.Write(line)
	fields, err := appendCopyRow(w.fields[:0], w.lines.String()[start:])
	if err != nil {
		return err
	}
	w.fields = fields
	return w.onRow(fields)
}

// finish reports a row left without its newline.
func (w *copyRows) finish() error {
	if len(w.buf) > 0 {
		return errCopySyntax
	}
	return nil
}
