package eslite

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// mgetAPI serves GET|POST /_mget and /{index}/_mget.
func (e *Engine) mgetAPI(c *call, defaultIndex string) {
	var body struct {
		Docs []map[string]json.RawMessage `json:"docs"`
		IDs  []json.RawMessage            `json:"ids"`
	}
	if len(strings.TrimSpace(string(c.body))) == 0 {
		c.fail(errValidation("no documents to get"))
		return
	}
	if err := decodeBody(c.body, &body); err != nil {
		c.fail(err)
		return
	}
	defFilter, ferr := sourceFilterFromParams(c)
	if ferr != nil {
		c.fail(ferr)
		return
	}
	type docReq struct {
		index, id string
		filter    *sourceFilter
	}
	var reqs []docReq
	var problems []string
	for _, d := range body.Docs {
		r := docReq{index: defaultIndex, filter: defFilter}
		for k, v := range d {
			switch k {
			case "_index":
				r.index = scalarText(v)
			case "_id":
				r.id = scalarText(v)
			case "_source":
				f, err := sourceFilterFromJSON(v)
				if err != nil {
					c.fail(err)
					return
				}
				r.filter = f
			case "routing", "stored_fields", "version", "version_type":
			default:
				c.fail(errParse("Unknown key for a VALUE_STRING in [" + k + "]."))
				return
			}
		}
		reqs = append(reqs, r)
	}
	for _, raw := range body.IDs {
		reqs = append(reqs, docReq{index: defaultIndex, id: scalarText(raw), filter: defFilter})
	}
	if len(reqs) == 0 {
		problems = append(problems, "no documents to get")
	}
	for i, r := range reqs {
		if r.index == "" {
			problems = append(problems, "index is missing for doc "+itoa(int64(i)))
		}
		if r.id == "" {
			problems = append(problems, "id is missing for doc "+itoa(int64(i)))
		}
	}
	if len(problems) > 0 {
		c.fail(errValidation(problems...))
		return
	}
	var b strings.Builder
	b.WriteString(`{"docs":[`)
	for i, r := range reqs {
		if i > 0 {
			b.WriteByte(',')
		}
		ix, err := e.readTarget(r.index)
		if err != nil {
			b.WriteString(mgetError(r.index, r.id, err))
			continue
		}
		d, gerr := ix.get(r.id)
		if gerr != nil {
			b.WriteString(mgetError(ix.name, r.id, errStoreRead(gerr)))
			continue
		}
		if d == nil {
			b.WriteString(`{"_index":` + jsonString(ix.name) + `,"_id":` + jsonString(r.id) + `,"found":false}`)
			continue
		}
		b.Write(getBody(ix.name, r.id, d, r.filter))
	}
	b.WriteString("]}")
	c.reply(http.StatusOK, json.RawMessage(b.String()))
}

func mgetError(index, id string, err *search.Error) string {
	raw, _ := err.MarshalJSON()
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	_ = json.Unmarshal(raw, &env)
	return `{"_index":` + jsonString(index) + `,"_id":` + jsonString(id) + `,"error":` + string(env.Error) + `}`
}
