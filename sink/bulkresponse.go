package sink

// summarizeBulk reads what the sink needs of most bulk responses — the
// top-level "errors" flag and how many items there are — in one pass over
// the bytes, building nothing. ok is false when body is not a JSON object
// with both members in the form Elasticsearch writes them; the caller then
// reads it with encoding/json, which also says what is wrong. Profiled under
// a bulk load, decoding every response's items with encoding/json only to
// count them was about a tenth of walsearch's CPU.
func summarizeBulk(body []byte) (errors bool, items int, ok bool) {
	s := bulkScanner{b: body}
	if !s.expect('{') {
		return false, 0, false
	}
	sawErrors, sawItems := false, false
	if s.peek() == '}' {
		return false, 0, false
	}
	for {
		key, good := s.str()
		if !good || !s.expect(':') {
			return false, 0, false
		}
		switch string(key) {
		case "errors":
			s.space()
			switch {
			case s.literal("true"):
				errors = true
			case s.literal("false"):
				errors = false
			default:
				return false, 0, false
			}
			sawErrors = true
		case "items":
			if items, good = s.count(); !good {
				return false, 0, false
			}
			sawItems = true
		default:
			if !s.skip(0) {
				return false, 0, false
			}
		}
		switch s.next() {
		case ',':
			continue
		case '}':
			s.space()
			return errors, items, sawErrors && sawItems && s.i == len(s.b)
		default:
			return false, 0, false
		}
	}
}

// bulkScanner walks JSON bytes; every method skips leading white space.
type bulkScanner struct {
	b []byte
	i int
}

func (s *bulkScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, 0 at the end.
func (s *bulkScanner) peek() byte {
	s.space()
	if s.i == len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// next consumes and returns the next byte after white space, 0 at the end.
func (s *bulkScanner) next() byte {
	c := s.peek()
	if c != 0 {
		s.i++
	}
	return c
}

func (s *bulkScanner) expect(c byte) bool { return s.next() == c }

func (s *bulkScanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// str consumes a string and returns its raw contents (escapes left as
// they are: the keys compared against have none).
func (s *bulkScanner) str() ([]byte, bool) {
	if !s.expect('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c == '\\':
			s.i += 2
		case c < 0x20:
			return nil, false
		default:
			s.i++
		}
	}
	return nil, false
}

// count consumes an array and returns how many elements it has.
func (s *bulkScanner) count() (int, bool) {
	if !s.expect('[') {
		return 0, false
	}
	if s.peek() == ']' {
		s.i++
		return 0, true
	}
	n := 0
	for {
		if !s.skip(0) {
			return 0, false
		}
		n++
		switch s.next() {
		case ',':
		case ']':
			return n, true
		default:
			return 0, false
		}
	}
}

// maxBulkDepth bounds the nesting skip follows, as encoding/json bounds
// its own.
const maxBulkDepth = 1000

// skip consumes one value.
func (s *bulkScanner) skip(depth int) bool {
	if depth > maxBulkDepth {
		return false
	}
	switch c := s.peek(); {
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '{':
		s.i++
		if s.peek() == '}' {
			s.i++
			return true
		}
		for {
			if _, ok := s.str(); !ok || !s.expect(':') || !s.skip(depth+1) {
				return false
			}
			switch s.next() {
			case ',':
			case '}':
				return true
			default:
				return false
			}
		}
	case c == '[':
		s.i++
		if s.peek() == ']' {
			s.i++
			return true
		}
		for {
			if !s.skip(depth + 1) {
				return false
			}
			switch s.next() {
			case ',':
			case ']':
				return true
			default:
				return false
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		start := s.i
		for s.i < len(s.b) && numberByte(s.b[s.i]) {
			s.i++
		}
		return s.i > start
	}
	return false
}

func numberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}
