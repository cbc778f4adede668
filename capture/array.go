package capture

import (
	"errors"
	"strings"
)

// arrayValue is a parsed array literal: each element is either a nested
// arrayValue (another dimension), a *string (nil for NULL).
type arrayValue []any

var errArraySyntax = errors.New("malformed array literal")

// parseArray parses PostgreSQL's array output ({1,2,NULL}, {{"a b",c},{d,e}},
// [0:1]={1,2}) into nested arrayValues. delim is the element type's delimiter
// (',' for every type except box).
func parseArray(s string, delim byte) (arrayValue, error) {
	p, err := newArrayParser(s, delim)
	if err != nil {
		return nil, err
	}
	if _, err := p.next(); err != nil { // the outer '{'
		return nil, err
	}
	v, err := p.dimension()
	if err != nil {
		return nil, err
	}
	if _, err := p.next(); err != nil { // the end of the literal
		return nil, err
	}
	return v, nil
}

// dimension reads the rest of a dimension whose '{' has just been read.
func (p *arrayParser) dimension() (arrayValue, error) {
	out := arrayValue{}
	for {
		tok, err := p.next()
		if err != nil {
			return nil, err
		}
		switch tok {
		case arrayOpen:
			sub, err := p.dimension()
			if err != nil {
				return nil, err
			}
			out = append(out, sub)
		case arrayElement:
			if p.null {
				out = append(out, (*string)(nil))
			} else {
				v := p.elem
				out = append(out, &v)
			}
		case arrayClose:
			return out, nil
		}
	}
}

// maxArrayDims is PostgreSQL's MAXDIM.
const maxArrayDims = 6

// arrayToken is what arrayParser.next has read.
type arrayToken uint8

const (
	arrayOpen    arrayToken = iota // '{': a dimension starts
	arrayClose                     // '}': the innermost open dimension ends
	arrayElement                   // an element: arrayParser.elem, or NULL
	arrayEnd                       // the whole literal has been read
)

// arrayParser reads an array literal one token at a time, so that a caller
// can build a value from it or write it out as it goes. It checks the whole
// grammar: a literal it reads to arrayEnd without error is well formed.
type arrayParser struct {
	s     string
	i     int
	delim byte
	depth int  // dimensions open
	item  bool // an element or a dimension has just been read
	done  bool // the outer dimension has been closed
	elem  string
	null  bool
}

// newArrayParser starts reading the literal s, skipping a dimension
// decoration ([0:1]=) if there is one.
func newArrayParser(s string, delim byte) (arrayParser, error) {
	if strings.HasPrefix(s, "[") {
		// Dimension decoration for lower bounds other than 1: the bounds do
		// not survive in JSON, the elements do.
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return arrayParser{}, errArraySyntax
		}
		s = s[eq+1:]
	}
	return arrayParser{s: s, delim: delim}, nil
}

// next reads the next token. Once an element or dimension has been read, the
// delimiter after it is consumed with the token that follows.
func (p *arrayParser) next() (arrayToken, error) {
	p.skipSpace()
	if p.depth == 0 {
		if p.done {
			if p.i != len(p.s) {
				return 0, errArraySyntax
			}
			return arrayEnd, nil
		}
		return p.open()
	}
	if p.i >= len(p.s) {
		return 0, errArraySyntax
	}
	if p.item {
		switch p.s[p.i] {
		case p.delim: // first: a type may delimit with any byte
			p.i++
			p.skipSpace()
			if p.i >= len(p.s) {
				return 0, errArraySyntax
			}
		case '}':
			return p.close(), nil
		default:
			return 0, errArraySyntax
		}
	} else if p.s[p.i] == '}' {
		// Only right after '{': an empty dimension.
		return p.close(), nil
	}
	switch p.s[p.i] {
	case '{':
		return p.open()
	case '"':
		return arrayElement, p.quoted()
	default:
		return arrayElement, p.unquoted()
	}
}

// open reads a '{'.
func (p *arrayParser) open() (arrayToken, error) {
	if p.depth >= maxArrayDims || p.i >= len(p.s) || p.s[p.i] != '{' {
		return 0, errArraySyntax
	}
	p.i++
	p.depth++
	p.item = false
	return arrayOpen, nil
}

// close reads a '}'.
func (p *arrayParser) close() arrayToken {
	p.i++
	p.depth--
	p.item = true
	p.done = p.depth == 0
	return arrayClose
}

// skipSpace skips the whitespace PostgreSQL allows around elements.
func (p *arrayParser) skipSpace() {
	for p.i < len(p.s) && isArraySpace(p.s[p.i]) {
		p.i++
	}
}

// isArraySpace reports whether c is whitespace to array_in (scanner_isspace).
func isArraySpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// quoted reads a double-quoted element. Without backslashes, the element is
// a substring of the literal.
func (p *arrayParser) quoted() error {
	p.i++ // opening quote
	start := p.i
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case '"':
			p.setElem(p.s[start:p.i], false)
			p.i++
			return nil
		case '\\':
			return p.quotedEscaped(start)
		}
		p.i++
	}
	return errArraySyntax
}

// quotedEscaped finishes a quoted element that started at start and has a
// backslash at p.i.
func (p *arrayParser) quotedEscaped(start int) error {
	var b strings.Builder
	b.WriteString(p.s[start:p.i])
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case '\\':
			if p.i+1 >= len(p.s) {
				return errArraySyntax
			}
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		case '"':
			p.i++
			p.setElem(b.String(), false)
			return nil
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return errArraySyntax
}

// unquoted reads an element without quotes: up to the delimiter or '}',
// without trailing unescaped whitespace. NULL (any case, unescaped) is the
// NULL element. Without backslashes, the element is a substring of the
// literal.
func (p *arrayParser) unquoted() error {
	start, keep := p.i, p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == p.delim || c == '}' {
			break
		}
		switch {
		case c == '{' || c == '"':
			return errArraySyntax
		case c == '\\':
			return p.unquotedEscaped(start, keep)
		case !isArraySpace(c):
			keep = p.i + 1
		}
		p.i++
	}
	v := p.s[start:keep]
	if v == "" {
		return errArraySyntax
	}
	p.setElem(v, len(v) == 4 && strings.EqualFold(v, "NULL"))
	return nil
}

// unquotedEscaped finishes an unquoted element that started at start, has a
// backslash at p.i, and ends at keep if only whitespace follows.
func (p *arrayParser) unquotedEscaped(start, keep int) error {
	var b strings.Builder
	b.WriteString(p.s[start:p.i])
	kept := keep - start // bytes of b that are not trailing whitespace
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == p.delim || c == '}' {
			break
		}
		if c == '{' || c == '"' {
			return errArraySyntax
		}
		if c == '\\' {
			if p.i+1 >= len(p.s) {
				return errArraySyntax
			}
			b.WriteByte(p.s[p.i+1])
			p.i += 2
			kept = b.Len()
			continue
		}
		b.WriteByte(c)
		p.i++
		if !isArraySpace(c) {
			kept = b.Len()
		}
	}
	// An escaped element is never NULL, nor empty.
	p.setElem(b.String()[:kept], false)
	return nil
}

// setElem records the element just read.
func (p *arrayParser) setElem(v string, null bool) {
	p.elem, p.null, p.item = v, null, true
}

// convert maps every non-NULL element through fn, keeping the dimensions.
func (a arrayValue) convert(fn func(string) any) []any {
	out := make([]any, len(a))
	for i, el := range a {
		switch e := el.(type) {
		case arrayValue:
			out[i] = e.convert(fn)
		case *string:
			if e != nil {
				out[i] = fn(*e)
			}
		}
	}
	return out
}
