package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/walsearch/walsearch/internal/esclient"
)

// fieldInfo is what the API knows of one field of an index.
type fieldInfo struct {
	Type string // Elasticsearch type: text, keyword, long, date, ...
	// Exact is the field to use for exact matches and sorting: the field
	// itself, or its keyword sub-field for a text field ("" when none).
	Exact string
}

type indexMapping struct {
	fields  map[string]fieldInfo
	fetched time.Time
}

// mappingCache keeps each index's flattened mapping for a short time, so
// new fields show up without a restart.
type mappingCache struct {
	es  *esclient.Client
	ttl time.Duration

	mu sync.Mutex
	m  map[string]indexMapping
}

func newMappingCache(es *esclient.Client, ttl time.Duration) *mappingCache {
	return &mappingCache{es: es, ttl: ttl, m: map[string]indexMapping{}}
}

// get returns the fields of index, or a not-found error.
func (c *mappingCache) get(ctx context.Context, index string) (map[string]fieldInfo, error) {
	c.mu.Lock()
	im, ok := c.m[index]
	c.mu.Unlock()
	if ok && time.Since(im.fetched) < c.ttl {
		return im.fields, nil
	}
	res, err := esapi.IndicesGetMappingRequest{Index: []string{index}}.Do(ctx, c.es)
	if err != nil {
		return nil, unavailable("the search engine is unreachable")
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	switch {
	case res.StatusCode == http.StatusNotFound:
		return nil, notFound(fmt.Sprintf("index %q does not exist", index))
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		return nil, unavailable("the search engine is unavailable")
	case res.IsError():
		return nil, fmt.Errorf("get mapping of %s: HTTP %d", index, res.StatusCode)
	}
	var byIndex map[string]struct {
		Mappings struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal(body, &byIndex); err != nil {
		return nil, fmt.Errorf("decode mapping of %s: %w", index, err)
	}
	fields := map[string]fieldInfo{}
	for _, m := range byIndex {
		flatten("", m.Mappings.Properties, fields)
	}
	c.mu.Lock()
	c.m[index] = indexMapping{fields: fields, fetched: time.Now()}
	c.mu.Unlock()
	return fields, nil
}

type property struct {
	Type       string                     `json:"type"`
	Properties map[string]json.RawMessage `json:"properties"`
	Fields     map[string]struct {
		Type string `json:"type"`
	} `json:"fields"`
}

func flatten(prefix string, props map[string]json.RawMessage, out map[string]fieldInfo) {
	for name, raw := range props {
		var p property
		if json.Unmarshal(raw, &p) != nil {
			continue
		}
		path := prefix + name
		if p.Properties != nil && (p.Type == "" || p.Type == "object") {
			flatten(path+".", p.Properties, out)
			continue
		}
		fi := fieldInfo{Type: p.Type, Exact: path}
		if p.Type == "text" {
			fi.Exact = ""
			for sub, f := range p.Fields {
				if f.Type == "keyword" {
					fi.Exact = path + "." + sub
					break
				}
			}
		}
		out[path] = fi
	}
}
