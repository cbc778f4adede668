package search

import (
	"bytes"
	"path"
	"strings"
)

// sourceFilter is the _source part of a request: off, or include and
// exclude patterns matched the way Elasticsearch matches them — a pattern
// names a field and everything under it, '*' matches any characters, dots
// included, and no other character is special; excludes win; objects in
// arrays are filtered like the object they are in. The document APIs (get,
// mget, bulk's fetch) filter with it too, through SourceFilter.
type sourceFilter struct {
	enabled            bool
	includes, excludes []string
}

// SourceFilter is a _source filter of the document APIs: the one the search
// applies, so that a document reads the same from _search, _doc and _mget.
type SourceFilter struct{ f sourceFilter }

// NewSourceFilter returns a filter that drops the source (enabled false),
// or keeps the fields includes names (all when empty) but those excludes
// names.
func NewSourceFilter(enabled bool, includes, excludes []string) SourceFilter {
	return SourceFilter{sourceFilter{enabled: enabled, includes: includes, excludes: excludes}}
}

// Apply returns the filtered source, keeping the key order; an unfiltered
// source is returned byte for byte. It does not look at enabled.
func (f SourceFilter) Apply(source []byte) []byte { return f.f.apply(source) }

func parseSourceNode(src []byte, v *node) (sourceFilter, *Error) {
	switch v.kind {
	case kBool:
		return sourceFilter{enabled: v.b}, nil
	case kString:
		return sourceFilter{enabled: true, includes: []string{v.str}}, nil
	case kArray:
		f := sourceFilter{enabled: true}
		for _, e := range v.vals {
			if e.kind != kString {
				return f, parsingError(src, e.off, "Unknown key for a "+e.kind.String()+" in [_source].")
			}
			f.includes = append(f.includes, e.str)
		}
		return f, nil
	case kObject:
		f := sourceFilter{enabled: true}
		for i, k := range v.keys {
			list, err := stringList(src, v.vals[i])
			if err != nil {
				return f, err
			}
			switch k {
			case "includes", "include":
				f.includes = list
			case "excludes", "exclude":
				f.excludes = list
			default:
				return f, parsingError(src, v.koffs[i], "Unknown key for a "+v.vals[i].kind.String()+" in ["+k+"].")
			}
		}
		return f, nil
	}
	return sourceFilter{}, parsingError(src, v.off, "Unknown key for a "+v.kind.String()+" in [_source].")
}

func stringList(src []byte, v *node) ([]string, *Error) {
	if v.kind == kString {
		return []string{v.str}, nil
	}
	if v.kind != kArray {
		return nil, parsingError(src, v.off, "Unknown key for a "+v.kind.String()+" in [_source].")
	}
	out := make([]string, 0, len(v.vals))
	for _, e := range v.vals {
		if e.kind != kString {
			return nil, parsingError(src, e.off, "Unknown key for a "+e.kind.String()+" in [_source].")
		}
		out = append(out, e.str)
	}
	return out, nil
}

// filtered reports whether the source must be rewritten (not returned byte-exact).
func (f sourceFilter) filtered() bool { return len(f.includes) > 0 || len(f.excludes) > 0 }

// apply returns the filtered source, keeping the original key order.
func (f sourceFilter) apply(raw []byte) []byte {
	if !f.filtered() {
		return raw
	}
	root, err := parseJSON(raw)
	if err != nil || root.kind != kObject {
		return raw
	}
	var b bytes.Buffer
	f.writeObject(&b, root, "")
	return b.Bytes()
}

func globMatch(pattern, name string) bool {
	if !strings.ContainsAny(pattern, "*?[\\") {
		return pattern == name
	}
	// Elasticsearch wildcards only know '*'; escape the rest for path.Match.
	var esc strings.Builder
	for _, r := range pattern {
		switch r {
		case '?', '[', ']', '\\':
			esc.WriteByte('\\')
		}
		esc.WriteRune(r)
	}
	ok, _ := path.Match(esc.String(), name)
	if ok {
		return true
	}
	// '*' also crosses dots in Elasticsearch's source filtering.
	return strings.Contains(pattern, "*") && wildcardAcrossDots(pattern, name)
}

func wildcardAcrossDots(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(name, p)
		}
		j := strings.Index(name, p)
		if j < 0 {
			return false
		}
		name = name[j+len(p):]
	}
	return true
}

func anyMatch(patterns []string, name string) bool {
	for _, p := range patterns {
		if globMatch(p, name) {
			return true
		}
	}
	return false
}

// mayIncludeBelow reports whether some include pattern could select a child of p.
func mayIncludeBelow(patterns []string, p string) bool {
	for _, pat := range patterns {
		if strings.HasPrefix(pat, p+".") || strings.Contains(pat, "*") && strings.HasPrefix(p, strings.SplitN(pat, "*", 2)[0]) ||
			strings.Contains(pat, "*") && strings.HasPrefix(strings.SplitN(pat, "*", 2)[0], p+".") {
			return true
		}
	}
	return false
}

// writeObject writes the kept keys of an object; included means an ancestor was
// already selected by an include pattern.
func (f sourceFilter) writeObject(b *bytes.Buffer, n *node, prefix string) {
	f.writeObjectIn(b, n, prefix, len(f.includes) == 0)
}

func (f sourceFilter) writeObjectIn(b *bytes.Buffer, n *node, prefix string, included bool) {
	b.WriteByte('{')
	first := true
	for i, k := range n.keys {
		p := prefix + k
		if anyMatch(f.excludes, p) {
			continue
		}
		v := n.vals[i]
		inc := included || anyMatch(f.includes, p)
		var vb bytes.Buffer
		switch {
		case v.kind == kObject && (inc || mayIncludeBelow(f.includes, p)):
			f.writeObjectIn(&vb, v, p+".", inc)
			if !inc && vb.Len() == 2 {
				continue
			}
		case v.kind == kArray && (inc || mayIncludeBelow(f.includes, p)):
			if !f.writeArray(&vb, v, p, inc) {
				continue
			}
		case inc:
			vb.Write(mustJSON(v.toAnyOrdered()))
		default:
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeJSONString(b, k)
		b.WriteByte(':')
		b.Write(vb.Bytes())
	}
	b.WriteByte('}')
}

func (f sourceFilter) writeArray(b *bytes.Buffer, v *node, p string, inc bool) bool {
	b.WriteByte('[')
	wrote := false
	for _, e := range v.vals {
		var eb bytes.Buffer
		switch {
		case e.kind == kObject:
			f.writeObjectIn(&eb, e, p+".", inc)
			if !inc && eb.Len() == 2 {
				continue
			}
		case inc:
			eb.Write(mustJSON(e.toAnyOrdered()))
		default:
			continue
		}
		if wrote {
			b.WriteByte(',')
		}
		wrote = true
		b.Write(eb.Bytes())
	}
	b.WriteByte(']')
	return wrote || inc
}

// rawJSON re-serialises a node keeping object key order.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

func (n *node) toAnyOrdered() any {
	var b bytes.Buffer
	n.write(&b)
	return rawJSON(b.Bytes())
}

func (n *node) write(b *bytes.Buffer) {
	switch n.kind {
	case kNull:
		b.WriteString("null")
	case kBool:
		if n.b {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case kNumber:
		b.WriteString(n.str)
	case kString:
		writeJSONString(b, n.str)
	case kArray:
		b.WriteByte('[')
		for i, v := range n.vals {
			if i > 0 {
				b.WriteByte(',')
			}
			v.write(b)
		}
		b.WriteByte(']')
	case kObject:
		b.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, k)
			b.WriteByte(':')
			n.vals[i].write(b)
		}
		b.WriteByte('}')
	}
}
