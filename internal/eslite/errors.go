package eslite

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// ErrNotDirectory is returned by Config.Validate when Dir names a file.
var ErrNotDirectory = errors.New("not a directory")

// ErrClosed is returned by operations on an Engine after Close.
var ErrClosed = errors.New("eslite: engine closed")

// The functions below build the Elasticsearch errors eslite answers with.
// Their types, reasons and extra fields follow Elasticsearch 8 exactly,
// because clients (and the sink) branch on them.

// errStoreRead reports a document the store failed to read back.
func errStoreRead(err error) *search.Error {
	return esError(http.StatusInternalServerError, "exception", "read stored document: "+err.Error())
}

func esError(status int, typ, reason string) *search.Error {
	return &search.Error{Status: status, Type: typ, Reason: reason}
}

func errIllegalArgument(format string, args ...any) *search.Error {
	return esError(http.StatusBadRequest, "illegal_argument_exception", fmt.Sprintf(format, args...))
}

// errValidation is Elasticsearch's ActionRequestValidationException: every
// problem numbered, each followed by a semicolon.
func errValidation(problems ...string) *search.Error {
	var b bytes.Buffer
	b.WriteString("Validation Failed: ")
	for i, p := range problems {
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString(": ")
		b.WriteString(p)
		b.WriteString(";")
	}
	return esError(http.StatusBadRequest, "action_request_validation_exception", b.String())
}

func errIndexNotFound(name string) *search.Error {
	e := esError(http.StatusNotFound, "index_not_found_exception", "no such index ["+name+"]")
	e.Index = name
	e.Extra = map[string]any{"resource.type": "index_or_alias", "resource.id": name}
	return e
}

// errRequireAlias refuses a write with require_alias=true to a name that is
// not an alias.
func errRequireAlias(name string) *search.Error {
	e := errIndexNotFound(name)
	e.Reason = "no such index [" + name + "] and [require_alias] request flag is [true] and [" + name + "] is not an alias"
	return e
}

func errInvalidIndexName(name, why string) *search.Error {
	e := esError(http.StatusBadRequest, "invalid_index_name_exception", "Invalid index name ["+name+"], "+why)
	e.Index = name
	return e
}

func errAlreadyExists(name, uuid string) *search.Error {
	e := esError(http.StatusBadRequest, "resource_already_exists_exception", "index ["+name+"/"+uuid+"] already exists")
	e.Index = name
	e.IndexUUID = uuid
	return e
}

// shardError is an error raised by a shard of index ix (version conflicts,
// missing documents): it carries index_uuid, shard and index.
func shardError(ix *index, status int, typ, reason string) *search.Error {
	e := esError(status, typ, reason)
	e.Index = ix.name
	e.IndexUUID = ix.uuid
	e.Extra = map[string]any{"shard": "0"}
	return e
}

func errVersionConflict(ix *index, id, why string) *search.Error {
	return shardError(ix, http.StatusConflict, "version_conflict_engine_exception", "["+id+"]: version conflict, "+why)
}

func errDocumentMissing(ix *index, id string) *search.Error {
	return shardError(ix, http.StatusNotFound, "document_missing_exception", "["+id+"]: document missing")
}

func errNoWriteIndex(alias string) *search.Error {
	return errIllegalArgument("no write index is defined for alias [%s]. The write index may be explicitly disabled using is_write_index=false or the alias points to multiple indices without one being designated as a write index", alias)
}

func errParse(reason string) *search.Error {
	return esError(http.StatusBadRequest, "parse_exception", reason)
}

func errXContent(reason string) *search.Error {
	return esError(http.StatusBadRequest, "x_content_parse_exception", reason)
}

// asESError turns any error into the Elasticsearch error to answer with.
func asESError(err error) *search.Error {
	var se *search.Error
	if errors.As(err, &se) {
		return se
	}
	return esError(http.StatusInternalServerError, "exception", err.Error())
}

// causeJSON renders an error the way Elasticsearch renders it inside a bulk
// item or an mget doc: the bare {"type","reason",...} object.
func causeJSON(e *search.Error) json.RawMessage { return e.ObjectJSON() }
