package eslite

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// maxIDBytes is Elasticsearch's limit on a document id.
const maxIDBytes = 512

// refreshPolicy is WriteRequest.RefreshPolicy.
type refreshPolicy int

const (
	refreshNone refreshPolicy = iota
	refreshImmediate
	refreshWaitFor
)

func (c *call) refreshPolicy() (refreshPolicy, *search.Error) {
	v, ok := c.q["refresh"]
	if !ok {
		return refreshNone, nil
	}
	switch v[0] {
	case "", "true":
		return refreshImmediate, nil
	case "false":
		return refreshNone, nil
	case "wait_for":
		return refreshWaitFor, nil
	}
	return 0, errIllegalArgument("Unknown value for refresh: [%s].", v[0])
}

// versionParams reads version, version_type, if_seq_no and if_primary_term.
func (c *call) versionParams(r *writeReq) *search.Error {
	var err *search.Error
	if r.version, err = c.longParam("version", versionMatchAny); err != nil {
		return err
	}
	if r.vtype, err = parseVersionType(c.param("version_type")); err != nil {
		return err
	}
	if r.ifSeqNo, err = c.longParam("if_seq_no", seqNoUnassigned); err != nil {
		return err
	}
	if r.ifSeqNo != seqNoUnassigned && r.ifSeqNo < 0 {
		return errIllegalArgument("sequence numbers must be non negative. got [%d].", r.ifSeqNo)
	}
	if r.ifPrimaryTerm, err = c.longParam("if_primary_term", 0); err != nil {
		return err
	}
	if r.ifPrimaryTerm < 0 {
		return errIllegalArgument("primary term must be non negative. got [%d]", r.ifPrimaryTerm)
	}
	return nil
}

// validateWrite is the validation Elasticsearch applies to an index, create,
// delete or update request before executing it.
func validateWrite(r *writeReq) []string {
	var problems []string
	switch r.kind {
	case opIndex, opCreate:
		if r.source == nil {
			problems = append(problems, "source is missing", "content type is missing")
		}
		if r.kind == opCreate {
			if r.vtype != vtInternal {
				return append(problems, "create operations only support internal versioning. use index instead")
			}
			if r.version != versionMatchAny {
				problems = append(problems, "create operations do not support explicit versions. use index instead")
			}
			if r.ifSeqNo != seqNoUnassigned || r.ifPrimaryTerm != 0 {
				problems = append(problems, "create operations do not support compare and set. use index instead")
			}
			return append(problems, idProblems(r.id)...)
		}
		problems = append(problems, casProblems(r.version, r.vtype, r.ifSeqNo, r.ifPrimaryTerm)...)
	case opDelete:
		problems = append(problems, casProblems(r.version, r.vtype, r.ifSeqNo, r.ifPrimaryTerm)...)
		if r.id == "" {
			problems = append(problems, "id is missing")
		}
	case opUpdate:
		if r.id == "" {
			problems = append(problems, "id is missing")
		}
		u := r.update
		if u.doc == nil {
			problems = append(problems, "script or doc is missing")
		}
		if u.docAsUpsert && u.doc == nil {
			problems = append(problems, "doc must be specified if doc_as_upsert is enabled")
		}
		problems = append(problems, casProblems(versionMatchAny, vtInternal, r.ifSeqNo, r.ifPrimaryTerm)...)
	}
	return append(problems, idProblems(r.id)...)
}

func idProblems(id string) []string {
	if len(id) > maxIDBytes {
		return []string{"id [" + id + "] is too long, must be no longer than 512 bytes but was: " + itoa(int64(len(id)))}
	}
	return nil
}

// writeTarget resolves the index a write goes to, creating it when nothing
// has that name and create is true.
func (e *Engine) writeTarget(name string, create bool) (*index, *search.Error) {
	e.mu.RLock()
	ix, err := e.resolveWrite(name)
	e.mu.RUnlock()
	if err != nil || ix != nil {
		return ix, err
	}
	if !create {
		if verr := validateIndexName(name); verr != nil {
			return nil, verr
		}
		return nil, errIndexNotFound(name)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if ix, err := e.resolveWrite(name); err != nil || ix != nil {
		return ix, err
	}
	ix, cerr := e.createIndex(name, settings{}, nil, nil)
	if cerr != nil {
		return nil, asESError(cerr)
	}
	return ix, nil
}

// writeOne executes one document write from the document API and answers.
func (e *Engine) writeOne(c *call, name string, r *writeReq) {
	policy, perr := c.refreshPolicy()
	if perr != nil {
		c.fail(perr)
		return
	}
	if problems := validateWrite(r); len(problems) > 0 {
		c.fail(errValidation(problems...))
		return
	}
	if r.kind != opDelete {
		requireAlias, perr := c.boolParam("require_alias", false)
		if perr != nil {
			c.fail(perr)
			return
		}
		if requireAlias && !e.isAlias(name) {
			c.fail(errRequireAlias(name))
			return
		}
	}
	ix, terr := e.writeTarget(name, r.kind != opDelete)
	if terr != nil {
		c.fail(terr)
		return
	}
	results := make([]*writeResult, 1)
	maxSeq, err := e.execute(ix, []*writeReq{r}, results)
	if err != nil {
		c.fail(err)
		return
	}
	res := results[0]
	if res.err != nil {
		c.fail(res.err)
		return
	}
	forced, werr := e.afterWrite(c.r.Context(), policy, map[*index]int64{ix: maxSeq})
	if werr != nil {
		c.fail(werr)
		return
	}
	c.reply(res.status, e.writeResponse(res, forced))
}

// afterWrite honours the refresh policy for the indices written.
func (e *Engine) afterWrite(ctx context.Context, policy refreshPolicy, written map[*index]int64) (bool, error) {
	switch policy {
	case refreshImmediate:
		for ix, seq := range written {
			if seq < 0 {
				continue
			}
			if err := e.refresh(ix); err != nil {
				return false, err
			}
		}
		return true, nil
	case refreshWaitFor:
		for ix, seq := range written {
			if seq < 0 {
				continue
			}
			if err := ix.waitVisible(ctx, seq); err != nil {
				return false, err
			}
		}
	}
	return false, nil
}

// writeResponse is the body of an index, create, update or delete response
// (also a bulk item without its status).
type writeBody struct {
	Index         string          `json:"_index"`
	ID            string          `json:"_id"`
	Version       int64           `json:"_version"`
	Result        string          `json:"result"`
	ForcedRefresh bool            `json:"forced_refresh,omitempty"`
	Shards        map[string]int  `json:"_shards"`
	SeqNo         int64           `json:"_seq_no"`
	PrimaryTerm   int64           `json:"_primary_term"`
	Get           json.RawMessage `json:"get,omitempty"`
	Status        int             `json:"status,omitempty"`
	Error         json.RawMessage `json:"error,omitempty"`
}

func (e *Engine) writeResponse(res *writeResult, forced bool) *writeBody {
	e.mu.RLock()
	copies := 1 + res.index.settings.replicas()
	e.mu.RUnlock()
	shards := shardsHeader(copies, 1)
	if res.result == "noop" {
		shards = shardsHeader(0, 0)
	}
	return &writeBody{Index: res.index.name, ID: res.id, Version: res.version, Result: res.result,
		ForcedRefresh: forced, Shards: shards, SeqNo: res.seqNo, PrimaryTerm: primaryTerm, Get: updateGet(res)}
}

// updateGet is the "get" section of an update response that asked for the
// _source, as Elasticsearch's GetResult renders it embedded; nil otherwise.
func updateGet(res *writeResult) json.RawMessage {
	if res.getSource == nil {
		return nil
	}
	var b strings.Builder
	b.WriteString(`{"_seq_no":`)
	b.WriteString(itoa(res.seqNo))
	b.WriteString(`,"_primary_term":`)
	b.WriteString(itoa(primaryTerm))
	b.WriteString(`,"found":true,"_source":`)
	b.Write(res.getSource)
	b.WriteString("}")
	return json.RawMessage(b.String())
}

func (e *Engine) indexDocAPI(c *call, name, id string, kind opKind) {
	r := &writeReq{kind: kind, id: id, source: c.body}
	if err := c.versionParams(r); err != nil {
		c.fail(err)
		return
	}
	switch c.param("op_type") {
	case "":
	case "create":
		r.kind = opCreate
	case "index":
		if kind == opCreate {
			c.fail(errIllegalArgument("opType must be 'create', found: [index]"))
			return
		}
	default:
		c.fail(errIllegalArgument("opType must be 'create' or 'index', found: [%s]", c.param("op_type")))
		return
	}
	if id == "" {
		r.id = newDocID()
	}
	if r.source != nil && len(strings.TrimSpace(string(r.source))) == 0 {
		r.source = nil
	}
	e.writeOne(c, name, r)
}

func (e *Engine) deleteDocAPI(c *call, name, id string) {
	r := &writeReq{kind: opDelete, id: id}
	if err := c.versionParams(r); err != nil {
		c.fail(err)
		return
	}
	e.writeOne(c, name, r)
}

func (e *Engine) updateDocAPI(c *call, name, id string) {
	if c.hasParam("version") || c.hasParam("version_type") {
		c.fail(errValidation("internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and `if_primary_term` instead"))
		return
	}
	r := &writeReq{kind: opUpdate, id: id, version: versionMatchAny}
	if err := c.versionParams(r); err != nil {
		c.fail(err)
		return
	}
	fetch, ferr := fetchFromParams(c)
	if ferr != nil {
		c.fail(ferr)
		return
	}
	u, err := parseUpdateBody(c.body)
	if err != nil {
		c.fail(err)
		return
	}
	if u.fetch == nil {
		u.fetch = fetch // a _source in the body wins, as in Elasticsearch
	}
	r.update = u
	e.writeOne(c, name, r)
}

// parseUpdateBody parses an update request body (also a bulk update line).
func parseUpdateBody(body []byte) (*updateSpec, *search.Error) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, errValidation("script or doc is missing")
	}
	var raw map[string]json.RawMessage
	if err := decodeBody(body, &raw); err != nil {
		return nil, err
	}
	u := &updateSpec{detectNoop: true}
	for k, v := range raw {
		switch k {
		case "doc":
			if !isJSONObject(v) {
				return nil, errParse("Failed to derive xcontent")
			}
			u.doc = v
		case "upsert":
			if !isJSONObject(v) {
				return nil, errParse("Failed to derive xcontent")
			}
			u.upsert = v
		case "doc_as_upsert", "detect_noop", "scripted_upsert":
			var b bool
			if err := json.Unmarshal(v, &b); err != nil {
				return nil, errXContent("[1:1] [UpdateRequest] failed to parse field [" + k + "]")
			}
			if k == "doc_as_upsert" {
				u.docAsUpsert = b
			} else if k == "detect_noop" {
				u.detectNoop = b
			}
		case "script":
			return nil, &search.Error{Status: http.StatusBadRequest, Type: "illegal_argument_exception",
				Reason: "scripts are not supported by eslite"}
		case "_source":
			f, ferr := sourceFilterFromJSON(v)
			if ferr != nil {
				return nil, ferr
			}
			u.fetch = f
		case "lang", "params":
		default:
			return nil, errXContent("[1:2] [UpdateRequest] unknown field [" + k + "]")
		}
	}
	return u, nil
}

// fetchFromParams reads _source, _source_includes and _source_excludes of
// an update: nil when none is given (the response then has no "get").
func fetchFromParams(c *call) (*sourceFilter, *search.Error) {
	if !c.hasParam("_source") && !c.hasParam("_source_includes") && !c.hasParam("_source_excludes") {
		return nil, nil
	}
	return sourceFilterFromParams(c)
}

func isJSONObject(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return strings.HasPrefix(s, "{")
}

// readTarget resolves an index or an alias with exactly one index, as the
// single-document read APIs require.
func (e *Engine) readTarget(name string) (*index, *search.Error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if ix, ok := e.indices[name]; ok {
		return ix, nil
	}
	var members []string
	var found *index
	for _, ix := range e.sortedIndices(nil) {
		if _, ok := ix.aliases[name]; ok {
			members = append(members, ix.name)
			found = ix
		}
	}
	switch len(members) {
	case 0:
		return nil, errIndexNotFound(name)
	case 1:
		return found, nil
	}
	return nil, errIllegalArgument("alias [%s] has more than one index associated with it [%s], can't execute a single index op", name, "["+strings.Join(members, ", ")+"]")
}

func (e *Engine) getDocAPI(c *call, name, id string, sourceOnly bool) {
	ix, err := e.readTarget(name)
	if err != nil {
		c.fail(err)
		return
	}
	filter, ferr := sourceFilterFromParams(c)
	if ferr != nil {
		c.fail(ferr)
		return
	}
	version, verr := c.longParam("version", versionMatchAny)
	if verr != nil {
		c.fail(verr)
		return
	}
	if _, verr := parseVersionType(c.param("version_type")); verr != nil {
		c.fail(verr)
		return
	}
	d, gerr := ix.get(id)
	if gerr != nil {
		c.fail(errStoreRead(gerr))
		return
	}
	if d != nil && version != versionMatchAny && d.version != version {
		// Every version type conflicts on reads when the versions differ.
		c.fail(errVersionConflict(ix, id, "current version ["+itoa(d.version)+"] is different than the one provided ["+itoa(version)+"]"))
		return
	}
	if sourceOnly {
		if d == nil {
			c.fail(esError(http.StatusNotFound, "resource_not_found_exception", "Document not found ["+ix.name+"]/["+id+"]"))
			return
		}
		c.reply(http.StatusOK, json.RawMessage(filter.apply(d.source)))
		return
	}
	if d == nil {
		c.reply(http.StatusNotFound, map[string]any{"_index": ix.name, "_id": id, "found": false})
		return
	}
	c.reply(http.StatusOK, getBody(ix.name, id, d, filter))
}

// getBody is a found document as GET and _mget return it.
func getBody(index, id string, d *docEntry, filter *sourceFilter) json.RawMessage {
	var b strings.Builder
	b.WriteString(`{"_index":`)
	b.WriteString(jsonString(index))
	b.WriteString(`,"_id":`)
	b.WriteString(jsonString(id))
	b.WriteString(`,"_version":`)
	b.WriteString(itoa(d.version))
	b.WriteString(`,"_seq_no":`)
	b.WriteString(itoa(d.seqNo))
	b.WriteString(`,"_primary_term":`)
	b.WriteString(itoa(primaryTerm))
	b.WriteString(`,"found":true`)
	if !filter.disabled() {
		b.WriteString(`,"_source":`)
		b.Write(filter.apply(d.source))
	}
	b.WriteString("}")
	return json.RawMessage(b.String())
}
