package eslite

import (
	"path"
	"sort"
	"strings"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// maxIndexNameBytes is Elasticsearch's MAX_INDEX_NAME_BYTES.
const maxIndexNameBytes = 255

// invalidNameChars is Elasticsearch's Strings.INVALID_FILENAME_CHARS, in the
// order Elasticsearch prints it in its error message.
const invalidNameChars = `[ , ", *, \, <, |, ,, >, /, ?]`

// nameProblem reports why name cannot name an index or alias, in
// Elasticsearch's words, or "" when it can. Lowercase is checked separately
// because Elasticsearch checks it only for index names.
func nameProblem(name string) string {
	if strings.ContainsAny(name, "\\/*?\"<>| ,") {
		return "must not contain the following characters " + invalidNameChars
	}
	if strings.Contains(name, "#") {
		return "must not contain '#'"
	}
	if strings.Contains(name, ":") {
		return "must not contain ':'"
	}
	if name != "" && strings.ContainsRune("_-+", rune(name[0])) {
		return "must not start with '_', '-', or '+'"
	}
	if len(name) > maxIndexNameBytes {
		return "index name is too long, (" + itoa(int64(len(name))) + " > " + itoa(maxIndexNameBytes) + ")"
	}
	if name == "." || name == ".." {
		return "must not be '.' or '..'"
	}
	return ""
}

// validateIndexName applies Elasticsearch's rules for a new index name.
func validateIndexName(name string) *search.Error {
	if name == "" {
		return errInvalidIndexName(name, "must not be empty")
	}
	if p := nameProblem(name); p != "" {
		return errInvalidIndexName(name, p)
	}
	if strings.ToLower(name) != name {
		return errInvalidIndexName(name, "must be lowercase")
	}
	return nil
}

func isWildcard(expr string) bool { return strings.Contains(expr, "*") }

func splitExpr(expr string) []string {
	var out []string
	for _, p := range strings.Split(expr, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// resolveOptions are Elasticsearch's IndicesOptions as far as eslite honours
// them. The zero value is not the default; use readDefaults.
type resolveOptions struct {
	ignoreUnavailable bool
	allowNoIndices    bool
}

var readDefaults = resolveOptions{ignoreUnavailable: false, allowNoIndices: true}

// resolveRead expands an index expression (names, aliases, comma lists,
// wildcards, _all, exclusions with a leading '-') to open indices, sorted by
// name. Caller holds e.mu for reading.
func (e *Engine) resolveRead(expr string, opts resolveOptions) ([]*index, *search.Error) {
	parts := splitExpr(expr)
	if len(parts) == 0 || (len(parts) == 1 && (parts[0] == "_all" || parts[0] == "*")) {
		return e.sortedIndices(nil), nil
	}
	set := map[string]*index{}
	sawWildcard := false
	for _, p := range parts {
		if strings.HasPrefix(p, "-") && sawWildcard {
			pat := p[1:]
			for name := range set {
				if match(pat, name) || e.hasAliasMatching(set[name], pat) {
					delete(set, name)
				}
			}
			continue
		}
		if p == "_all" || isWildcard(p) {
			sawWildcard = true
			for name, ix := range e.indices {
				if p == "_all" || match(p, name) || e.hasAliasMatching(ix, p) {
					set[name] = ix
				}
			}
			continue
		}
		if ix, ok := e.indices[p]; ok {
			set[p] = ix
			continue
		}
		found := false
		for name, ix := range e.indices {
			if _, ok := ix.aliases[p]; ok {
				set[name] = ix
				found = true
			}
		}
		if !found && !opts.ignoreUnavailable {
			return nil, errIndexNotFound(p)
		}
	}
	if len(set) == 0 && !opts.allowNoIndices {
		return nil, errIndexNotFound(expr)
	}
	return e.sortedIndices(set), nil
}

func (e *Engine) hasAliasMatching(ix *index, pat string) bool {
	for a := range ix.aliases {
		if match(pat, a) {
			return true
		}
	}
	return false
}

func (e *Engine) sortedIndices(set map[string]*index) []*index {
	if set == nil {
		set = e.indices
	}
	out := make([]*index, 0, len(set))
	for _, ix := range set {
		out = append(out, ix)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// match reports whether name matches an Elasticsearch wildcard pattern, in
// which only '*' is special.
func match(pattern, name string) bool {
	pattern = strings.ReplaceAll(strings.ReplaceAll(pattern, `\`, `\\`), "?", `\?`)
	pattern = strings.ReplaceAll(pattern, "[", `\[`)
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// resolveWrite finds the index a write to name goes to: the index itself, or
// the write index of the alias. It returns (nil, nil) when nothing has that
// name, which lets the caller create the index. Caller holds e.mu.
func (e *Engine) resolveWrite(name string) (*index, *search.Error) {
	if ix, ok := e.indices[name]; ok {
		return ix, nil
	}
	var members []*index
	var writer *index
	for _, ix := range e.indices {
		a, ok := ix.aliases[name]
		if !ok {
			continue
		}
		members = append(members, ix)
		if a.IsWriteIndex != nil && *a.IsWriteIndex {
			writer = ix
		}
	}
	switch {
	case writer != nil:
		return writer, nil
	case len(members) == 1 && (members[0].aliases[name].IsWriteIndex == nil):
		return members[0], nil
	case len(members) > 0:
		return nil, errNoWriteIndex(name)
	}
	return nil, nil
}
