package eslite

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// settings are an index's settings as flat "index.x" keys with string
// values, the way Elasticsearch stores and prints them. Only what was set
// explicitly is kept; defaults are applied by the accessors.
type settings map[string]string

// dynamicSettings may change on an open index through PUT _settings.
var dynamicSettings = map[string]bool{
	"index.number_of_replicas": true,
	"index.refresh_interval":   true,
	"index.gc_deletes":         true,
	"index.max_result_window":  true,
}

// knownSettings are accepted at creation. Keys under passthroughPrefixes are
// accepted and echoed back but have no effect in eslite (docs/eslite.md).
var knownSettings = map[string]bool{
	"index.number_of_shards":   true,
	"index.number_of_replicas": true,
	"index.refresh_interval":   true,
	"index.gc_deletes":         true,
	"index.max_result_window":  true,
}

var passthroughPrefixes = []string{
	"index.codec", "index.hidden", "index.auto_expand_replicas", "index.translog.",
	"index.search.idle.after", "index.number_of_routing_shards", "index.mapping.",
	"index.max_inner_result_window", "index.blocks.", "index.routing.", "index.sort.",
}

// parseSettings flattens a settings object ({"index":{"x":1}}, {"index.x":1}
// or {"x":1}) to index.x keys with string values.
func parseSettings(raw json.RawMessage) (settings, *search.Error) {
	out := settings{}
	if len(raw) == 0 || string(raw) == "null" {
		return out, nil
	}
	var tree map[string]any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil, errXContent("failed to parse settings: " + err.Error())
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, c := range t {
				walk(joinKey(prefix, k), c)
			}
		case nil:
			out[prefix] = ""
		case string:
			out[prefix] = t
		case float64:
			out[prefix] = strconv.FormatFloat(t, 'f', -1, 64)
		case bool:
			out[prefix] = strconv.FormatBool(t)
		default:
			b, _ := json.Marshal(t)
			out[prefix] = string(b)
		}
	}
	walk("", tree)
	norm := settings{}
	for k, v := range out {
		if !strings.HasPrefix(k, "index.") {
			k = "index." + k
		}
		norm[k] = v
	}
	return norm, nil
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// validate checks the settings Elasticsearch would check at creation
// (create=true) or on update, with Elasticsearch's messages.
func (s settings) validate(create bool) *search.Error {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !knownSettings[k] && !passthrough(k) {
			return errIllegalArgument("unknown setting [%s] please check that any required plugins are installed, or check the breaking changes documentation for removed settings", k)
		}
	}
	if v, ok := s["index.number_of_shards"]; ok {
		if err := intSetting("index.number_of_shards", v, 1, 1024); err != nil {
			return err
		}
	}
	if v, ok := s["index.number_of_replicas"]; ok {
		if err := intSetting("index.number_of_replicas", v, 0, 1<<31-1); err != nil {
			return err
		}
	}
	if v, ok := s["index.max_result_window"]; ok {
		if err := intSetting("index.max_result_window", v, 1, 1<<31-1); err != nil {
			return err
		}
	}
	for _, k := range []string{"index.refresh_interval", "index.gc_deletes"} {
		if v, ok := s[k]; ok && v != "" {
			if _, err := parseTimeValue(k, v); err != nil {
				return err
			}
		}
	}
	_ = create
	return nil
}

func passthrough(k string) bool {
	for _, p := range passthroughPrefixes {
		if k == p || strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func intSetting(key, v string, lo, hi int64) *search.Error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return errIllegalArgument("Failed to parse value [%s] for setting [%s]", v, key)
	}
	if n < lo {
		return errIllegalArgument("Failed to parse value [%s] for setting [%s] must be >= %d", v, key, lo)
	}
	if n > hi {
		return errIllegalArgument("Failed to parse value [%s] for setting [%s] must be <= %d", v, key, hi)
	}
	return nil
}

// parseTimeValue parses an Elasticsearch time value ("1s", "500ms", "-1").
// -1 is returned as a negative duration.
func parseTimeValue(key, v string) (time.Duration, *search.Error) {
	s := strings.ToLower(strings.TrimSpace(v))
	if s == "-1" {
		return -1, nil
	}
	if s == "0" {
		return 0, nil
	}
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"nanos", time.Nanosecond}, {"micros", time.Microsecond}, {"ms", time.Millisecond},
		{"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}, {"d", 24 * time.Hour}}
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num := strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil {
				f, ferr := strconv.ParseFloat(num, 64)
				if ferr != nil {
					return 0, errIllegalArgument("failed to parse setting [%s] with value [%s] as a time value: unit is missing or unrecognized", key, v)
				}
				return time.Duration(f * float64(u.unit)), nil
			}
			if n < -1 {
				return 0, errIllegalArgument("failed to parse setting [%s] with value [%s] as a time value: negative durations are not supported", key, v)
			}
			return time.Duration(n) * u.unit, nil
		}
	}
	return 0, errIllegalArgument("failed to parse setting [%s] with value [%s] as a time value: unit is missing or unrecognized", key, v)
}

func (s settings) intOr(key string, def int) int {
	if v, ok := s[key]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func (s settings) shards() int   { return s.intOr("index.number_of_shards", DefaultNumberOfShards) }
func (s settings) replicas() int { return s.intOr("index.number_of_replicas", DefaultNumberOfReplicas) }
func (s settings) maxResultWindow() int {
	return s.intOr("index.max_result_window", DefaultMaxResultWindow)
}

func (s settings) refreshInterval() time.Duration {
	v, ok := s["index.refresh_interval"]
	if !ok || v == "" {
		v = DefaultRefreshInterval
	}
	d, err := parseTimeValue("index.refresh_interval", v)
	if err != nil {
		return time.Second
	}
	return d
}

func (s settings) gcDeletes() time.Duration {
	v, ok := s["index.gc_deletes"]
	if !ok || v == "" {
		v = DefaultGCDeletes
	}
	d, err := parseTimeValue("index.gc_deletes", v)
	if err != nil || d < 0 {
		return time.Minute
	}
	return d
}

// nested renders flat keys as Elasticsearch prints settings: nested objects
// with string leaves.
func (s settings) nested() map[string]any {
	root := map[string]any{}
	for k, v := range s {
		cur := root
		parts := strings.Split(k, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := cur[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[p] = next
			}
			cur = next
		}
		cur[parts[len(parts)-1]] = v
	}
	return root
}

func (s settings) clone() settings {
	out := make(settings, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}

func formatInt(n int) string { return fmt.Sprint(n) }
