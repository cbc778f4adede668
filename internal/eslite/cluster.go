package eslite

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Elasticsearch version eslite reports. Clients check the major version.
const (
	esVersion       = "8.19.7"
	esLuceneVersion = "9.12.2"
	esBuildHash     = "eslite"
	esBuildDate     = "2025-01-01T00:00:00.000Z"
)

// info serves GET / and HEAD /.
func (e *Engine) info(c *call) {
	c.reply(http.StatusOK, map[string]any{
		"name":         e.nodeName,
		"cluster_name": "eslite",
		"cluster_uuid": e.clusterUUID,
		"version": map[string]any{
			"number":                              esVersion,
			"build_flavor":                        "default",
			"build_type":                          "eslite",
			"build_hash":                          esBuildHash,
			"build_date":                          esBuildDate,
			"build_snapshot":                      false,
			"lucene_version":                      esLuceneVersion,
			"minimum_wire_compatibility_version":  "7.17.0",
			"minimum_index_compatibility_version": "7.0.0",
		},
		"tagline": "You Know, for Search",
	})
}

var statusRank = map[string]int{"green": 0, "yellow": 1, "red": 2}

// health computes the health of the given indices as a single node would:
// every primary is active, no replica can be assigned.
func (e *Engine) health(ixs []*index) (status string, primaries, unassigned int) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, ix := range ixs {
		s, r := ix.settings.shards(), ix.settings.replicas()
		primaries += s
		unassigned += s * r
	}
	status = "green"
	if unassigned > 0 {
		status = "yellow"
	}
	return status, primaries, unassigned
}

// indicesHealth is the "indices" section of cluster health at level
// indices (and shards, which adds each shard's health).
func (e *Engine) indicesHealth(ixs []*index, withShards bool) map[string]any {
	out := map[string]any{}
	for _, ix := range ixs {
		status, primaries, unassigned := e.health([]*index{ix})
		e.mu.RLock()
		replicas := ix.settings.replicas()
		e.mu.RUnlock()
		h := map[string]any{
			"status":                    status,
			"number_of_shards":          primaries,
			"number_of_replicas":        replicas,
			"active_primary_shards":     primaries,
			"active_shards":             primaries,
			"relocating_shards":         0,
			"initializing_shards":       0,
			"unassigned_shards":         unassigned,
			"unassigned_primary_shards": 0,
		}
		if withShards {
			shards := map[string]any{}
			for i := 0; i < primaries; i++ {
				shards[strconv.Itoa(i)] = map[string]any{
					"status": status, "primary_active": true, "active_shards": 1,
					"relocating_shards": 0, "initializing_shards": 0,
					"unassigned_shards": replicas, "unassigned_primary_shards": 0,
				}
			}
			h["shards"] = shards
		}
		out[ix.name] = h
	}
	return out
}

// healthAPI serves GET /_cluster/health[/{index}]. wait_for_status waits up
// to timeout (default 30s) as Elasticsearch does, answering 408 when the
// status was not reached.
func (e *Engine) healthAPI(c *call, expr string) {
	target := func() ([]*index, error) {
		if expr == "" {
			e.mu.RLock()
			defer e.mu.RUnlock()
			return e.sortedIndices(nil), nil
		}
		ixs, err := e.resolveFromParams(c, expr)
		if err != nil {
			return nil, err
		}
		return ixs, nil
	}
	level := c.param("level")
	switch level {
	case "", "cluster", "indices", "shards":
	default:
		c.fail(errIllegalArgument("No enum constant org.elasticsearch.action.admin.cluster.health.ClusterHealthRequest.Level.%s", strings.ToUpper(level)))
		return
	}
	want := c.param("wait_for_status")
	if want != "" {
		if _, ok := statusRank[want]; !ok {
			c.fail(errIllegalArgument("unknown cluster health status [%s]", want))
			return
		}
	}
	timeout := 30 * time.Second
	if v := c.param("timeout"); v != "" {
		d, err := parseTimeValue("timeout", v)
		if err != nil {
			c.fail(err)
			return
		}
		timeout = d
	}
	deadline := time.Now().Add(timeout)
	for {
		ixs, err := target()
		if err != nil {
			c.fail(err)
			return
		}
		status, primaries, unassigned := e.health(ixs)
		reached := want == "" || statusRank[status] <= statusRank[want]
		if reached || !time.Now().Before(deadline) {
			code := http.StatusOK
			if !reached {
				code = http.StatusRequestTimeout
			}
			active := primaries
			pct := 100.0
			if active+unassigned > 0 {
				pct = float64(active) * 100 / float64(active+unassigned)
			}
			body := map[string]any{
				"cluster_name":                     "eslite",
				"status":                           status,
				"timed_out":                        !reached,
				"number_of_nodes":                  1,
				"number_of_data_nodes":             1,
				"active_primary_shards":            primaries,
				"active_shards":                    active,
				"relocating_shards":                0,
				"initializing_shards":              0,
				"unassigned_shards":                unassigned,
				"unassigned_primary_shards":        0,
				"delayed_unassigned_shards":        0,
				"number_of_pending_tasks":          0,
				"number_of_in_flight_fetch":        0,
				"task_max_waiting_in_queue_millis": 0,
				"active_shards_percent_as_number":  pct,
			}
			if level == "indices" || level == "shards" {
				body["indices"] = e.indicesHealth(ixs, level == "shards")
			}
			c.reply(code, body)
			return
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-c.r.Context().Done():
			t.Stop()
			c.fail(c.r.Context().Err())
			return
		case <-t.C:
		}
	}
}

// catIndicesAPI serves GET /_cat/indices[/{index}] in its JSON form.
func (e *Engine) catIndicesAPI(c *call, expr string) {
	if expr == "" {
		expr = "_all"
	}
	ixs, err := e.resolveFromParams(c, expr)
	if err != nil {
		c.fail(err)
		return
	}
	rows := make([]map[string]string, 0, len(ixs))
	for _, ix := range ixs {
		status, _, _ := e.health([]*index{ix})
		e.mu.RLock()
		pri, rep := ix.settings.shards(), ix.settings.replicas()
		e.mu.RUnlock()
		ix.mu.RLock()
		live, tomb := ix.liveDocs, int64(len(ix.tombstones))
		size := ix.liveBytes
		ix.mu.RUnlock()
		rows = append(rows, map[string]string{
			"health":         status,
			"status":         "open",
			"index":          ix.name,
			"uuid":           ix.uuid,
			"pri":            strconv.Itoa(pri),
			"rep":            strconv.Itoa(rep),
			"docs.count":     strconv.FormatInt(live, 10),
			"docs.deleted":   strconv.FormatInt(tomb, 10),
			"store.size":     formatBytes(size),
			"pri.store.size": formatBytes(size),
			"dataset.size":   formatBytes(size),
		})
	}
	if c.param("format") == "json" {
		c.reply(http.StatusOK, rows)
		return
	}
	var b []byte
	for _, r := range rows {
		b = append(b, r["health"]+" "+r["status"]+" "+r["index"]+" "+r["uuid"]+" "+r["pri"]+" "+r["rep"]+" "+
			r["docs.count"]+" "+r["docs.deleted"]+" "+r["store.size"]+" "+r["pri.store.size"]+" "+r["dataset.size"]+"\n"...)
	}
	setHeaders(c.w)
	c.w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	c.w.WriteHeader(http.StatusOK)
	if c.r.Method != http.MethodHead {
		_, _ = c.w.Write(b)
	}
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + "gb"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "mb"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + "kb"
	}
	return strconv.FormatInt(n, 10) + "b"
}
