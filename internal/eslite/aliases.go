package eslite

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

func errInvalidAlias(name, why string) *search.Error {
	return esError(http.StatusBadRequest, "invalid_alias_name_exception", "Invalid alias name ["+name+"]: "+why)
}

func errAliasesMissing(names ...string) *search.Error {
	e := esError(http.StatusNotFound, "aliases_not_found_exception", "aliases ["+strings.Join(names, ",")+"] missing")
	e.Extra = map[string]any{"resource.type": "aliases", "resource.id": strings.Join(names, ",")}
	return e
}

// parseAliasSpec parses the body of one alias ({} or {"is_write_index":..}).
// Filters and routing are refused: eslite cannot honour them.
func parseAliasSpec(name string, raw json.RawMessage) (aliasMeta, *search.Error) {
	var am aliasMeta
	if p := nameProblem(name); p != "" {
		return am, esError(http.StatusBadRequest, "invalid_alias_name_exception", "Invalid alias name ["+name+"], "+p)
	}
	if len(raw) == 0 || string(raw) == "null" {
		return am, nil
	}
	var spec map[string]json.RawMessage
	if err := decodeBody(raw, &spec); err != nil {
		return am, err
	}
	for k, v := range spec {
		switch k {
		case "is_write_index":
			var b bool
			if err := json.Unmarshal(v, &b); err != nil {
				return am, errIllegalArgument("[is_write_index] must be a boolean")
			}
			am.IsWriteIndex = &b
		case "is_hidden":
		case "filter", "routing", "index_routing", "search_routing":
			return am, errIllegalArgument("alias [%s] uses [%s], which eslite does not support", name, k)
		default:
			return am, errIllegalArgument("Unknown field [%s] in alias [%s]", k, name)
		}
	}
	return am, nil
}

// aliasAction is one entry of POST /_aliases.
type aliasAction struct {
	kind      string // add, remove, remove_index
	indices   []string
	aliases   []string
	meta      aliasMeta
	mustExist *bool
}

func stringOrList(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(raw, &many)
	return many
}

func parseAliasActions(body []byte) ([]aliasAction, *search.Error) {
	var req struct {
		Actions []map[string]json.RawMessage `json:"actions"`
	}
	if err := decodeBody(body, &req); err != nil {
		return nil, err
	}
	if len(req.Actions) == 0 {
		return nil, errValidation("Must specify at least one alias action")
	}
	var out []aliasAction
	for _, a := range req.Actions {
		for kind, raw := range a {
			if kind != "add" && kind != "remove" && kind != "remove_index" {
				return nil, errIllegalArgument("Unsupported alias action [%s]", kind)
			}
			var fields map[string]json.RawMessage
			if err := decodeBody(raw, &fields); err != nil {
				return nil, err
			}
			act := aliasAction{kind: kind}
			act.indices = append(stringOrList(fields["index"]), stringOrList(fields["indices"])...)
			act.aliases = append(stringOrList(fields["alias"]), stringOrList(fields["aliases"])...)
			if len(act.indices) == 0 {
				return nil, errValidation("One of [index] or [indices] is required")
			}
			if kind != "remove_index" && len(act.aliases) == 0 {
				return nil, errValidation("One of [alias] or [aliases] is required")
			}
			if kind == "add" {
				spec := map[string]json.RawMessage{}
				for k, v := range fields {
					if k != "index" && k != "indices" && k != "alias" && k != "aliases" {
						spec[k] = v
					}
				}
				rawSpec, _ := json.Marshal(spec)
				for _, al := range act.aliases {
					m, err := parseAliasSpec(al, rawSpec)
					if err != nil {
						return nil, err
					}
					act.meta = m
				}
			}
			if kind == "remove" {
				if v, ok := fields["must_exist"]; ok {
					var b bool
					if json.Unmarshal(v, &b) == nil {
						act.mustExist = &b
					}
				}
			}
			out = append(out, act)
		}
	}
	return out, nil
}

// updateAliasesAPI serves POST /_aliases: all actions apply, or none.
func (e *Engine) updateAliasesAPI(c *call) {
	acts, perr := parseAliasActions(c.body)
	if perr != nil {
		c.fail(perr)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.applyAliasActions(acts); err != nil {
		c.fail(err)
		return
	}
	c.reply(http.StatusOK, map[string]any{"acknowledged": true, "errors": false})
}

// applyAliasActions applies actions atomically. Caller holds e.mu.
func (e *Engine) applyAliasActions(acts []aliasAction) error {
	next := map[*index]map[string]aliasMeta{}
	view := func(ix *index) map[string]aliasMeta {
		if m, ok := next[ix]; ok {
			return m
		}
		m := make(map[string]aliasMeta, len(ix.aliases))
		for k, v := range ix.aliases {
			m[k] = v
		}
		next[ix] = m
		return m
	}
	removed := map[*index]bool{}
	for _, act := range acts {
		var ixs []*index
		for _, expr := range act.indices {
			if act.kind == "remove_index" && isWildcard(expr) {
				return errIllegalArgument("Wildcard expressions or all indices are not allowed")
			}
			got, err := e.resolveRead(expr, resolveOptions{allowNoIndices: false})
			if err != nil {
				return err
			}
			for _, ix := range got {
				if _, isIndex := e.indices[expr]; !isIndex && !isWildcard(expr) && expr != "_all" {
					return errIllegalArgument("The provided expression [%s] matches an alias, specify the corresponding concrete indices instead.", expr)
				}
				ixs = append(ixs, ix)
			}
		}
		switch act.kind {
		case "remove_index":
			for _, ix := range ixs {
				removed[ix] = true
			}
		case "add":
			for _, al := range act.aliases {
				if _, clash := e.indices[al]; clash {
					return errInvalidAlias(al, "an index or data stream exists with the same name as the alias")
				}
				for _, ix := range ixs {
					view(ix)[al] = act.meta
				}
			}
		case "remove":
			for _, al := range act.aliases {
				found := false
				for _, ix := range ixs {
					m := view(ix)
					for name := range m {
						if name == al || (isWildcard(al) && match(al, name)) {
							delete(m, name)
							found = true
						}
					}
				}
				if !found && (act.mustExist == nil || *act.mustExist) {
					return errAliasesMissing(al)
				}
			}
		}
	}
	// At most one write index per alias.
	writers := map[string][]string{}
	for _, ix := range e.sortedIndices(nil) {
		if removed[ix] {
			continue
		}
		aliases := ix.aliases
		if m, ok := next[ix]; ok {
			aliases = m
		}
		for name, am := range aliases {
			if am.IsWriteIndex != nil && *am.IsWriteIndex {
				writers[name] = append(writers[name], ix.name)
			}
		}
	}
	for name, ws := range writers {
		if len(ws) > 1 {
			return esError(http.StatusBadRequest, "illegal_state_exception", "alias ["+name+"] has more than one write index ["+strings.Join(ws, ",")+"]")
		}
	}
	old := map[*index]map[string]aliasMeta{}
	var touched []*index
	for ix, m := range next {
		if removed[ix] {
			continue
		}
		old[ix] = ix.aliases
		ix.aliases = m
		touched = append(touched, ix)
	}
	if err := e.persistMeta(touched...); err != nil {
		for ix, m := range old {
			ix.aliases = m
		}
		return err
	}
	for ix := range removed {
		if err := e.deleteIndex(ix); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) putAliasAPI(c *call, expr, name string) {
	spec, perr := parseAliasSpec(name, json.RawMessage(c.body))
	if perr != nil {
		c.fail(perr)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.applyAliasActions([]aliasAction{{kind: "add", indices: splitExpr(expr), aliases: []string{name}, meta: spec}})
	if err != nil {
		c.fail(err)
		return
	}
	c.reply(http.StatusOK, map[string]any{"acknowledged": true})
}

func (e *Engine) deleteAliasAPI(c *call, expr, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.applyAliasActions([]aliasAction{{kind: "remove", indices: splitExpr(expr), aliases: splitExpr(name)}})
	if err != nil {
		c.fail(err)
		return
	}
	c.reply(http.StatusOK, map[string]any{"acknowledged": true})
}

// aliasBody renders the aliases of ix, keeping only those names matches
// (all when names is nil).
func (e *Engine) aliasBody(ix *index, names []string) map[string]any {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := map[string]any{}
	for name, am := range ix.aliases {
		if names != nil && !matchesAny(names, name) {
			continue
		}
		body := map[string]any{}
		if am.IsWriteIndex != nil {
			body["is_write_index"] = *am.IsWriteIndex
		}
		out[name] = body
	}
	return out
}

func matchesAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if p == "_all" || p == "*" || p == name || (isWildcard(p) && match(p, name)) {
			return true
		}
	}
	return false
}

// getAliasAPI serves GET and HEAD /_alias, /_alias/{name}, /{index}/_alias
// and /{index}/_alias/{name}.
func (e *Engine) getAliasAPI(c *call, expr, name string) {
	if expr == "" {
		expr = "_all"
	}
	ixs, err := e.resolveFromParams(c, expr)
	if err != nil {
		c.fail(err)
		return
	}
	var names []string
	if name != "" {
		names = splitExpr(name)
	}
	out := map[string]any{}
	seen := map[string]bool{}
	for _, ix := range ixs {
		body := e.aliasBody(ix, names)
		for a := range body {
			seen[a] = true
		}
		if names != nil && len(body) == 0 {
			continue
		}
		out[ix.name] = map[string]any{"aliases": body}
	}
	var missing []string
	for _, n := range names {
		if !isWildcard(n) && n != "_all" && !seen[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		what := "alias [" + missing[0] + "] missing"
		if len(missing) > 1 {
			what = "aliases [" + strings.Join(missing, ",") + "] missing"
		}
		out["error"] = what
		out["status"] = http.StatusNotFound
		c.reply(http.StatusNotFound, out)
		return
	}
	if c.r.Method == http.MethodHead && names != nil && len(out) == 0 {
		c.reply(http.StatusNotFound, struct{}{})
		return
	}
	c.reply(http.StatusOK, out)
}
