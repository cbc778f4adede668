package eslite

import (
	"encoding/json"
	"strings"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// sourceFilter is the _source parameter of the document read APIs: off, or
// include/exclude path patterns, applied by search.SourceFilter.
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

// apply filters a stored _source with the search's filter, so that a
// document reads the same from the document APIs and from _search. The
// unfiltered source is returned as stored, byte for byte.
func (f *sourceFilter) apply(src []byte) []byte {
	if f.identity() {
		return src
	}
	return search.NewSourceFilter(true, f.includes, f.excludes).Apply(src)
}
