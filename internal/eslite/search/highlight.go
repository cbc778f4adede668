package search

import (
	"bytes"
	"sort"
	"strings"
)

// highlightSpec is the "highlight" part of a request.
type highlightSpec struct {
	fields []string
	pre    string
	post   string
}

func parseHighlight(src []byte, v *node) (*highlightSpec, *Error) {
	if v.kind != kObject {
		return nil, parsingError(src, v.off, "[highlight] unknown token ["+v.kind.String()+"]")
	}
	h := &highlightSpec{pre: "<em>", post: "</em>"}
	for i, k := range v.keys {
		val := v.vals[i]
		switch k {
		case "fields":
			switch val.kind {
			case kObject:
				h.fields = append(h.fields, val.keys...)
			case kArray:
				for _, e := range val.vals {
					if e.kind == kObject {
						h.fields = append(h.fields, e.keys...)
					}
				}
			}
		case "pre_tags", "post_tags":
			list, err := stringList(src, val)
			if err != nil {
				return nil, err
			}
			if len(list) > 0 {
				if k == "pre_tags" {
					h.pre = list[0]
				} else {
					h.post = list[0]
				}
			}
		case "require_field_match", "type", "fragment_size", "number_of_fragments", "order", "encoder", "tags_schema", "no_match_size", "boundary_scanner":
		default:
			return nil, parsingError(src, v.koffs[i], "[highlight] unknown field ["+k+"]")
		}
	}
	return h, nil
}

// queryTerms collects the analyzed terms a query searches for, per field.
func queryTerms(q dslQuery, m *Mapping, out map[string]map[string]bool) {
	add := func(field, text string) {
		f := m.lookup(field)
		if f == nil || f.typ != typeText {
			return
		}
		if out[field] == nil {
			out[field] = map[string]bool{}
		}
		for _, t := range analyze(f.san, text) {
			out[field][t] = true
		}
	}
	switch q := q.(type) {
	case qMatch:
		add(q.field, q.text)
	case qMultiMatch:
		c := &compiler{m: m}
		fields := q.fields
		if len(fields) == 0 {
			fields = c.defaultFields()
		}
		for _, f := range c.expandFields(fields) {
			add(f.name, q.text)
		}
	case qTerm:
		if out[q.field] == nil {
			out[q.field] = map[string]bool{}
		}
		out[q.field][scalarText(q.value)] = true
	case qSimple:
		c := &compiler{m: m}
		fields := q.fields
		if len(fields) == 0 {
			fields = c.defaultFields()
		}
		for _, f := range c.expandFields(fields) {
			add(f.name, q.text)
		}
	case qBool:
		for _, group := range [][]dslQuery{q.must, q.should, q.filter} {
			for _, sq := range group {
				queryTerms(sq, m, out)
			}
		}
	case qConstantScore:
		queryTerms(q.filter, m, out)
	}
}

// render returns the "highlight" object of one hit, or nil when nothing matched.
func (h *highlightSpec) render(source []byte, m *Mapping, q dslQuery) []byte {
	terms := map[string]map[string]bool{}
	queryTerms(q, m, terms)
	root, err := parseJSON(source)
	if err != nil {
		return nil
	}
	fields := h.fields
	var expanded []string
	for _, f := range fields {
		if strings.Contains(f, "*") {
			for p, lf := range m.leafPaths() {
				if lf.typ == typeText && globMatch(f, p) {
					expanded = append(expanded, p)
				}
			}
		} else {
			expanded = append(expanded, f)
		}
	}
	sort.Strings(expanded)
	var b bytes.Buffer
	b.WriteByte('{')
	n := 0
	for _, name := range expanded {
		f := m.lookup(name)
		want := terms[name]
		if f == nil || f.typ != typeText || len(want) == 0 {
			continue
		}
		var frags []string
		for _, text := range sourceStrings(root, name) {
			if frag, ok := h.mark(text, f, want); ok {
				frags = append(frags, frag)
			}
		}
		if len(frags) == 0 {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		writeJSONString(&b, name)
		b.WriteByte(':')
		b.Write(mustJSON(frags))
	}
	if n == 0 {
		return nil
	}
	b.WriteByte('}')
	return b.Bytes()
}

// mark wraps every token of text whose term is wanted in the tags.
func (h *highlightSpec) mark(text string, f *field, want map[string]bool) (string, bool) {
	toks := f.an.Analyze([]byte(text))
	var b strings.Builder
	last, hit := 0, false
	for _, t := range toks {
		if !want[string(t.Term)] {
			continue
		}
		b.WriteString(text[last:t.Start])
		b.WriteString(h.pre)
		b.WriteString(text[t.Start:t.End])
		b.WriteString(h.post)
		last, hit = t.End, true
	}
	b.WriteString(text[last:])
	return b.String(), hit
}

// sourceStrings returns the string values at a dotted path of a source document.
func sourceStrings(n *node, path string) []string {
	switch n.kind {
	case kArray:
		var out []string
		for _, e := range n.vals {
			out = append(out, sourceStrings(e, path)...)
		}
		return out
	case kString:
		if path == "" {
			return []string{n.str}
		}
		return nil
	case kObject:
		var out []string
		for i, k := range n.keys {
			if k == path {
				out = append(out, sourceStrings(n.vals[i], "")...)
			} else if strings.HasPrefix(path, k+".") {
				out = append(out, sourceStrings(n.vals[i], path[len(k)+1:])...)
			}
		}
		return out
	}
	return nil
}
