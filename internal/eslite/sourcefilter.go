package eslite

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// sourceFilter is the _source parameter of the document read APIs: off, or
// include/exclude path patterns in which '*' matches any characters.
type sourceFilter struct {
	off      bool
	includes []string
	excludes []string
}

func (f *sourceFilter) disabled() bool { return f != nil && f.off }

func (f *sourceFilter) identity() bool {
	return f == nil || (!f.off && len(f.includes) == 0 && len(f.excludes) == 0)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// sourceFilterFromParams reads _source, _source_includes and
// _source_excludes.
func sourceFilterFromParams(c *call) (*sourceFilter, *search.Error) {
	f := &sourceFilter{}
	if v, ok := c.q["_source"]; ok {
		switch v[0] {
		case "", "true":
		case "false":
			f.off = true
		default:
			f.includes = splitList(v[0])
		}
	}
	if v := c.param("_source_includes"); v != "" {
		f.includes = append(f.includes, splitList(v)...)
	}
	if v := c.param("_source_excludes"); v != "" {
		f.excludes = append(f.excludes, splitList(v)...)
	}
	return f, nil
}

// sourceFilterFromJSON reads an mget "_source" value: a boolean, a string, a
// list, or {"includes":[...],"excludes":[...]}.
func sourceFilterFromJSON(raw json.RawMessage) (*sourceFilter, *search.Error) {
	f := &sourceFilter{}
	if len(raw) == 0 {
		return f, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		f.off = !b
		return f, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		f.includes = splitList(s)
		return f, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		f.includes = list
		return f, nil
	}
	var obj struct {
		Includes json.RawMessage `json:"includes"`
		Excludes json.RawMessage `json:"excludes"`
		Include  json.RawMessage `json:"include"`
		Exclude  json.RawMessage `json:"exclude"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, errParse("Expected one of [TRUE, FALSE, VALUE_STRING, START_ARRAY, START_OBJECT] but found [" + strings.TrimSpace(string(raw)) + "]")
	}
	for _, p := range []struct {
		raw json.RawMessage
		dst *[]string
	}{{obj.Includes, &f.includes}, {obj.Include, &f.includes}, {obj.Excludes, &f.excludes}, {obj.Exclude, &f.excludes}} {
		if len(p.raw) == 0 {
			continue
		}
		var one string
		if json.Unmarshal(p.raw, &one) == nil {
			*p.dst = append(*p.dst, one)
			continue
		}
		var many []string
		if err := json.Unmarshal(p.raw, &many); err != nil {
			return nil, errParse("Expected a string or an array of strings in _source")
		}
		*p.dst = append(*p.dst, many...)
	}
	return f, nil
}

// apply filters a stored _source. The unfiltered source is returned as
// stored, byte for byte.
func (f *sourceFilter) apply(src []byte) []byte {
	if f.identity() {
		return src
	}
	v, err := decodeOrdered(src)
	if err != nil {
		return src
	}
	o, ok := v.(*object)
	if !ok {
		return src
	}
	out := f.filterObject(o, "")
	var buf bytes.Buffer
	encodeOrdered(&buf, out)
	return buf.Bytes()
}

func (f *sourceFilter) filterObject(o *object, prefix string) *object {
	out := &object{vals: map[string]any{}}
	for _, k := range o.keys {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		if anyMatch(f.excludes, path) {
			continue
		}
		v := o.vals[k]
		included := len(f.includes) == 0 || anyMatch(f.includes, path)
		if child, ok := v.(*object); ok {
			if included && len(f.excludes) == 0 {
				out.keys = append(out.keys, k)
				out.vals[k] = child
				continue
			}
			if !included && !f.mayInclude(path) {
				continue
			}
			sub := f.filterObject(child, path)
			if len(sub.keys) > 0 || included {
				out.keys = append(out.keys, k)
				out.vals[k] = sub
			}
			continue
		}
		if included {
			out.keys = append(out.keys, k)
			out.vals[k] = v
		}
	}
	return out
}

// mayInclude reports whether some include pattern could match below path.
func (f *sourceFilter) mayInclude(path string) bool {
	if len(f.includes) == 0 {
		return true
	}
	for _, p := range f.includes {
		if strings.HasPrefix(p, path+".") || strings.Contains(p, "*") {
			return true
		}
	}
	return false
}

// anyMatch reports whether a pattern matches path or one of its parents.
func anyMatch(patterns []string, path string) bool {
	for _, p := range patterns {
		for cur := path; ; {
			if wildMatch(p, cur) {
				return true
			}
			i := strings.LastIndexByte(cur, '.')
			if i < 0 {
				break
			}
			cur = cur[:i]
		}
	}
	return false
}

// wildMatch matches s against a pattern in which '*' matches any run of
// characters, dots included.
func wildMatch(p, s string) bool {
	if !strings.Contains(p, "*") {
		return p == s
	}
	parts := strings.Split(p, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i := 1; i < len(parts)-1; i++ {
		j := strings.Index(s, parts[i])
		if j < 0 {
			return false
		}
		s = s[j+len(parts[i]):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}
