package capture

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseCopyRow(t *testing.T) {
	tests := []struct {
		in   string
		want []copyField
	}{
		{"1\tabc\t\\N", []copyField{{text: "1"}, {text: "abc"}, {null: true}}},
		{`a\tb\nc\\d\r\b\f\v`, []copyField{{text: "a\tb\nc\\d\r\b\f\v"}}},
		{`\101\x41\x4a1\7`, []copyField{{text: "AAJ1\a"}}},
		{"\t", []copyField{{text: ""}, {text: ""}}},
		{`\\N`, []copyField{{text: `\N`}}},
		{`\N\N`, []copyField{{text: "NN"}}},
		{`\xg`, []copyField{{text: "xg"}}},
	}
	for _, tt := range tests {
		got, err := parseCopyRow([]byte(tt.in))
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseCopyRow(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	if _, err := parseCopyRow([]byte(`abc\`)); !errors.Is(err, errCopySyntax) {
		t.Errorf("trailing backslash: %v", err)
	}
}

func TestCopyRowsSplitsAcrossWrites(t *testing.T) {
	var rows [][]copyField
	w := &copyRows{onRow: func(f []copyField) error { rows = append(rows, slices.Clone(f)); return nil }} // the slice is reused
	for _, chunk := range []string{"1\ta", "\n2\t", "b\n3\t\\N\n"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.finish(); err != nil {
		t.Fatal(err)
	}
	want := [][]copyField{{{text: "1"}, {text: "a"}}, {{text: "2"}, {text: "b"}}, {{text: "3"}, {null: true}}}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("rows = %+v", rows)
	}
	if _, err := w.Write([]byte("4\tx")); err != nil {
		t.Fatal(err)
	}
	if err := w.finish(); !errors.Is(err, errCopySyntax) {
		t.Fatalf("unterminated row: %v", err)
	}
}

// TestCopyRowsKeepFieldsAcrossBlocks keeps every field of rows spanning
// several of the blocks rows are copied into, and checks them at the end.
func TestCopyRowsKeepFieldsAcrossBlocks(t *testing.T) {
	var kept []copyField
	w := &copyRows{onRow: func(f []copyField) error { kept = append(kept, f...); return nil }}
	var want []copyField
	for i := 0; len(want) < 3*lineBlock/50; i++ {
		a, b := fmt.Sprintf("row %d", i), strings.Repeat(string(rune('a'+i%26)), i%97)
		if i%500 == 0 {
			b = strings.Repeat("long", lineBlock/4) // a row larger than a block
		}
		want = append(want, copyField{text: a}, copyField{text: b})
		if _, err := w.Write([]byte(a + "\t" + b + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(kept, want) {
		t.Fatal("fields kept from earlier rows changed")
	}
}

// copyEscape writes s the way COPY's text format does.
func copyEscape(s string) []byte {
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	return b.Bytes()
}

func FuzzParseCopyRow(f *testing.F) {
	f.Add("plain", "with\ttab\nand\\back", false)
	f.Add("", `\N`, true)
	f.Fuzz(func(t *testing.T, a, b string, bNull bool) {
		line := append(copyEscape(a), '\t')
		if bNull {
			line = append(line, `\N`...)
		} else {
			line = append(line, copyEscape(b)...)
		}
		got, err := parseCopyRow(line)
		if err != nil {
			t.Fatalf("parseCopyRow(%q): %v", line, err)
		}
		want := []copyField{{text: a}, {text: b, null: bNull}}
		if bNull {
			want[1].text = ""
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseCopyRow(%q) = %+v, want %+v", line, got, want)
		}
		// Arbitrary input never panics.
		_, _ = parseCopyRow([]byte(a))
	})
}

// FuzzCopyRowsAnySplit cuts COPY output into writes at arbitrary points, and
// scribbles over each write's buffer once Write returned (as the caller may
// reuse it): the rows must be those of the whole lines.
func FuzzCopyRowsAnySplit(f *testing.F) {
	f.Add([]byte("1\ta\n22\tbb\n333\t\\N\n"), []byte{3, 1, 9})
	f.Add([]byte("x\n\ny\n"), []byte{0, 1, 0, 2})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		if len(data) == 0 || data[len(data)-1] != '\n' {
			data = append(data, '\n')
		}
		var want [][]copyField
		for _, line := range bytes.SplitAfter(data, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			fields, err := parseCopyRow(line[:len(line)-1])
			if err != nil {
				return // malformed: not this test's subject
			}
			want = append(want, fields)
		}
		var got [][]copyField
		w := &copyRows{onRow: func(f []copyField) error { got = append(got, slices.Clone(f)); return nil }}
		rest := data
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if i < len(cuts) {
				n = min(n, int(cuts[i]))
			}
			buf := bytes.Clone(rest[:n])
			if _, err := w.Write(buf); err != nil {
				t.Fatal(err)
			}
			for j := range buf {
				buf[j] = '#'
			}
			rest = rest[n:]
		}
		if err := w.finish(); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("rows = %+v, want %+v", got, want)
		}
	})
}
