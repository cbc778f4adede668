package eslite

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// indexVersionCreated is what index.version.created shows.
const indexVersionCreated = "8536000"

// createIndexAPI serves PUT /{index}.
func (e *Engine) createIndexAPI(c *call, name string) {
	var body map[string]json.RawMessage
	if len(strings.TrimSpace(string(c.body))) > 0 {
		if err := decodeBody(c.body, &body); err != nil {
			c.fail(err)
			return
		}
	}
	var s settings
	var mapping *search.Mapping
	aliases := map[string]aliasMeta{}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := body[k]
		switch k {
		case "settings":
			var perr *search.Error
			if s, perr = parseSettings(v); perr != nil {
				c.fail(perr)
				return
			}
		case "mappings":
			m, err := search.ParseMapping(v)
			if err != nil {
				c.fail(err)
				return
			}
			mapping = m
		case "aliases":
			var raw map[string]json.RawMessage
			if err := decodeBody(v, &raw); err != nil {
				c.fail(err)
				return
			}
			for a, spec := range raw {
				am, aerr := parseAliasSpec(a, spec)
				if aerr != nil {
					c.fail(aerr)
					return
				}
				aliases[a] = am
			}
		default:
			c.fail(errParse("unknown key [" + k + "] for create index"))
			return
		}
	}
	if s == nil {
		s = settings{}
	}
	if err := validateIndexName(name); err != nil {
		c.fail(err)
		return
	}
	if err := s.validate(true); err != nil {
		c.fail(err)
		return
	}
	e.mu.Lock()
	for a := range aliases {
		if a == name {
			e.mu.Unlock()
			c.fail(errInvalidAlias(a, "an index or data stream exists with the same name as the alias"))
			return
		}
		if _, ok := e.indices[a]; ok {
			e.mu.Unlock()
			c.fail(errInvalidAlias(a, "an index or data stream exists with the same name as the alias"))
			return
		}
	}
	_, err := e.createIndex(name, s, mapping, aliases)
	e.mu.Unlock()
	if err != nil {
		c.fail(err)
		return
	}
	c.reply(http.StatusOK, map[string]any{"acknowledged": true, "shards_acknowledged": true, "index": name})
}

// resolveFromParams resolves an expression with the ignore_unavailable and
// allow_no_indices parameters.
func (e *Engine) resolveFromParams(c *call, expr string) ([]*index, *search.Error) {
	opts := readDefaults
	var err *search.Error
	if opts.ignoreUnavailable, err = c.boolParam("ignore_unavailable", opts.ignoreUnavailable); err != nil {
		return nil, err
	}
	if opts.allowNoIndices, err = c.boolParam("allow_no_indices", opts.allowNoIndices); err != nil {
		return nil, err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.resolveRead(expr, opts)
}

// getIndexAPI serves GET and HEAD /{index}.
func (e *Engine) getIndexAPI(c *call, expr string) {
	ixs, err := e.resolveFromParams(c, expr)
	if err != nil {
		c.fail(err)
		return
	}
	if c.r.Method == http.MethodHead {
		if len(ixs) == 0 {
			c.reply(http.StatusNotFound, struct{}{})
			return
		}
		c.reply(http.StatusOK, struct{}{})
		return
	}
	out := map[string]any{}
	for _, ix := range ixs {
		out[ix.name] = map[string]any{
			"aliases":  e.aliasBody(ix, nil),
			"mappings": mappingJSON(ix),
			"settings": e.settingsBody(ix),
		}
	}
	c.reply(http.StatusOK, out)
}

func mappingJSON(ix *index) json.RawMessage {
	ix.mu.RLock()
	m := ix.mapping
	ix.mu.RUnlock()
	raw, err := m.MarshalJSON()
	if err != nil {
		return json.RawMessage("{}")
	}
	return raw
}

// settingsBody renders an index's settings as GET _settings shows them.
func (e *Engine) settingsBody(ix *index) map[string]any {
	e.mu.RLock()
	flat := ix.settings.clone()
	e.mu.RUnlock()
	if _, ok := flat["index.number_of_shards"]; !ok {
		flat["index.number_of_shards"] = strconv.Itoa(DefaultNumberOfShards)
	}
	if _, ok := flat["index.number_of_replicas"]; !ok {
		flat["index.number_of_replicas"] = strconv.Itoa(DefaultNumberOfReplicas)
	}
	flat["index.provided_name"] = ix.name
	flat["index.creation_date"] = strconv.FormatInt(ix.created.UnixMilli(), 10)
	flat["index.uuid"] = ix.uuid
	flat["index.version.created"] = indexVersionCreated
	flat["index.routing.allocation.include._tier_preference"] = "data_content"
	return flat.nested()
}

// deleteIndexAPI serves DELETE /{index}; like Elasticsearch with
// action.destructive_requires_name=true it refuses wildcards and _all.
func (e *Engine) deleteIndexAPI(c *call, expr string) {
	ignore, perr := c.boolParam("ignore_unavailable", false)
	if perr != nil {
		c.fail(perr)
		return
	}
	parts := splitExpr(expr)
	for _, p := range parts {
		if p == "_all" || isWildcard(p) {
			c.fail(errIllegalArgument("Wildcard expressions or all indices are not allowed"))
			return
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var victims []*index
	for _, p := range parts {
		ix, ok := e.indices[p]
		if !ok {
			for _, other := range e.indices {
				if _, isAlias := other.aliases[p]; isAlias {
					c.fail(errIllegalArgument("The provided expression [%s] matches an alias, specify the corresponding concrete indices instead.", p))
					return
				}
			}
			if ignore {
				continue
			}
			c.fail(errIndexNotFound(p))
			return
		}
		victims = append(victims, ix)
	}
	for _, ix := range victims {
		if _, still := e.indices[ix.name]; !still {
			continue
		}
		if err := e.deleteIndex(ix); err != nil {
			c.fail(err)
			return
		}
	}
	c.reply(http.StatusOK, map[string]any{"acknowledged": true})
}

func (e *Engine) getMappingAPI(c *call, expr string) {
	e.replyPerIndex(c, expr, "mappings", func(ix *index) any { return mappingJSON(ix) })
}

// replyPerIndex answers the GET /{index}/_mapping family: one entry per
// resolved index, holding key with body(ix).
func (e *Engine) replyPerIndex(c *call, expr, key string, body func(*index) any) {
	ixs, err := e.resolveFromParams(c, expr)
	if err != nil {
		c.fail(err)
		return
	}
	out := map[string]any{}
	for _, ix := range ixs {
		out[ix.name] = map[string]any{key: body(ix)}
	}
	c.reply(http.StatusOK, out)
}

// putMappingAPI serves PUT /{index}/_mapping: the update is merged into
// every target, or into none when any target rejects it.
func (e *Engine) putMappingAPI(c *call, expr string) {
	if len(strings.TrimSpace(string(c.body))) == 0 {
		c.fail(errValidation("mapping source is required"))
		return
	}
	update, err := search.ParseMapping(c.body)
	if err != nil {
		c.fail(err)
		return
	}
	ixs, rerr := e.resolveFromParams(c, expr)
	if rerr != nil {
		c.fail(rerr)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	merged := make([]*search.Mapping, len(ixs))
	for i, ix := range ixs {
		ix.mu.Lock()
		m := ix.mapping.Clone()
		ix.mu.Unlock()
		if err := m.Merge(update); err != nil {
			c.fail(err)
			return
		}
		merged[i] = m
	}
	for i, ix := range ixs {
		ix.mu.Lock()
		ix.mapping = merged[i]
		ix.search.SetMapping(merged[i])
		ix.mu.Unlock()
	}
	if err := e.persistMeta(ixs...); err != nil {
		c.fail(err)
		return
	}
	c.reply(http.StatusOK, map[string]any{"acknowledged": true})
}

func (e *Engine) getSettingsAPI(c *call, expr string) {
	e.replyPerIndex(c, expr, "settings", func(ix *index) any { return e.settingsBody(ix) })
}

// putSettingsAPI serves PUT /{index}/_settings for the dynamic settings.
func (e *Engine) putSettingsAPI(c *call, expr string) {
	raw := json.RawMessage(c.body)
	var wrapper map[string]json.RawMessage
	if err := decodeBody(c.body, &wrapper); err != nil {
		c.fail(err)
		return
	}
	if inner, ok := wrapper["settings"]; ok && len(wrapper) == 1 {
		raw = inner
	}
	update, perr := parseSettings(raw)
	if perr != nil {
		c.fail(perr)
		return
	}
	if len(update) == 0 {
		c.fail(errValidation("no settings to update"))
		return
	}
	ixs, rerr := e.resolveFromParams(c, expr)
	if rerr != nil {
		c.fail(rerr)
		return
	}
	var static []string
	for k := range update {
		if !knownSettings[k] && !passthrough(k) {
			c.fail(errIllegalArgument("unknown setting [%s] please check that any required plugins are installed, or check the breaking changes documentation for removed settings", k))
			return
		}
		if !dynamicSettings[k] {
			static = append(static, k)
		}
	}
	if len(static) > 0 {
		sort.Strings(static)
		var names []string
		for _, ix := range ixs {
			names = append(names, ix.name+"/"+ix.uuid)
		}
		c.fail(errIllegalArgument("Can't update non dynamic settings [[%s]] for open indices [[%s]]", strings.Join(static, ", "), strings.Join(names, ", ")))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	next := make([]settings, len(ixs))
	for i, ix := range ixs {
		s := ix.settings.clone()
		for k, v := range update {
			if v == "" {
				delete(s, k)
			} else {
				s[k] = v
			}
		}
		if err := s.validate(false); err != nil {
			c.fail(err)
			return
		}
		next[i] = s
	}
	old := make([]settings, len(ixs))
	for i, ix := range ixs {
		old[i] = ix.settings
		ix.settings = next[i]
	}
	if err := e.persistMeta(ixs...); err != nil {
		for i, ix := range ixs {
			ix.settings = old[i]
		}
		c.fail(err)
		return
	}
	c.reply(http.StatusOK, map[string]any{"acknowledged": true})
}

// refreshAPI serves POST /{index}/_refresh.
func (e *Engine) refreshAPI(c *call, expr string) {
	ixs, err := e.resolveFromParams(c, expr)
	if err != nil {
		c.fail(err)
		return
	}
	total, ok := 0, 0
	for _, ix := range ixs {
		if err := e.refresh(ix); err != nil {
			c.fail(err)
			return
		}
		e.mu.RLock()
		shards, replicas := ix.settings.shards(), ix.settings.replicas()
		e.mu.RUnlock()
		total += shards * (1 + replicas)
		ok += shards
	}
	c.reply(http.StatusOK, map[string]any{"_shards": shardsHeader(total, ok)})
}
