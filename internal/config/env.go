package config

import (
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/v2"
)

// EnvPrefix starts the generic environment variables: WALSEARCH_<SECTION>_<KEY>,
// e.g. WALSEARCH_ELASTICSEARCH_URL for elasticsearch.url and WALSEARCH_DATA_DIR
// for data_dir.
const EnvPrefix = "WALSEARCH_"

// fromEnv maps environment variables to configuration keys. Besides the
// generic WALSEARCH_ names it honours the names users of the original design
// already have: PG_HOST PG_PORT PG_DATABASE PG_USER PG_PASSWORD (parts of
// postgres.url), ES_HOST ES_PORT ES_USER ES_PASSWORD ES_USE_SSL (elasticsearch),
// SYNC_INTERVAL (seconds) MIN_BATCH_SIZE MAX_BATCH_SIZE RATE_LIMIT (sink) and
// POOL_SIZE (postgres.pool_size), SERVICE_TYPE (role: sync is
// capture,transform,sink; api is api). A generic variable beats a legacy one.
func fromEnv(env []string, k *koanf.Koanf) (map[string]any, error) {
	vars := map[string]string{}
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if ok {
			vars[name] = val
		}
	}
	out := map[string]any{}
	if err := legacyPostgres(vars, k.String("postgres.url"), out); err != nil {
		return nil, err
	}
	if err := legacyElasticsearch(vars, k.String("elasticsearch.url"), out); err != nil {
		return nil, err
	}
	for _, l := range legacyEnv {
		if v, ok := vars[l.name]; ok && l.plain {
			out[l.key] = v
		}
	}
	if v, ok := vars["SERVICE_TYPE"]; ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "sync":
			out["role"] = "capture,transform,sink"
		case "api":
			out["role"] = string(RoleAPI)
		case "", "all":
			out["role"] = string(RoleAll)
		default:
			return nil, fmt.Errorf("SERVICE_TYPE: want sync (capture, transform and sink) or api, got %q", v)
		}
	}
	if v, ok := vars["SYNC_INTERVAL"]; ok {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs <= 0 {
			return nil, fmt.Errorf("SYNC_INTERVAL: want a positive number of seconds, got %q", v)
		}
		out["sink.sync_interval"] = time.Duration(secs * float64(time.Second)).String()
	}
	if v, ok := vars[EnvPrefix+"API_KEYS"]; ok {
		// Comma-separated keys, each allowed every managed index.
		var list []map[string]any
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				list = append(list, map[string]any{"key": k})
			}
		}
		out["api.keys"] = list
	}
	keys := Keys()
	for name, val := range vars {
		rest, ok := strings.CutPrefix(name, EnvPrefix)
		if !ok {
			continue
		}
		if key, ok := keys[strings.ToLower(rest)]; ok {
			out[key] = val
		}
	}
	return out, nil
}

// legacyEnv lists the variables of the original design by the key each
// sets; a plain one holds the key's value as it is, the others are read by
// fromEnv's own code.
var legacyEnv = []struct {
	name, key string
	plain     bool
}{
	{"PG_HOST", "postgres.url", false}, {"PG_PORT", "postgres.url", false}, {"PG_DATABASE", "postgres.url", false},
	{"PG_USER", "postgres.url", false}, {"PG_PASSWORD", "postgres.url", false},
	{"POOL_SIZE", "postgres.pool_size", true},
	{"ES_HOST", "elasticsearch.url", false}, {"ES_PORT", "elasticsearch.url", false}, {"ES_USE_SSL", "elasticsearch.url", false},
	{"ES_USER", "elasticsearch.username", false}, {"ES_PASSWORD", "elasticsearch.password", false},
	{"MIN_BATCH_SIZE", "sink.min_batch_size", true}, {"MAX_BATCH_SIZE", "sink.max_batch_size", true},
	{"RATE_LIMIT", "sink.rate_limit", true}, {"SYNC_INTERVAL", "sink.sync_interval", false},
	{"SERVICE_TYPE", "role", false},
}

func legacyPostgres(vars map[string]string, base string, out map[string]any) error {
	host, port, db, user, pass := vars["PG_HOST"], vars["PG_PORT"], vars["PG_DATABASE"], vars["PG_USER"], vars["PG_PASSWORD"]
	if host+port+db+user+pass == "" {
		return nil
	}
	u := &url.URL{Scheme: "postgres", Host: "localhost:5432", Path: "/postgres"}
	if base != "" {
		parsed, err := url.Parse(base)
		if err != nil {
			return fmt.Errorf("postgres.url: %w", err)
		}
		u = parsed
	}
	h, p, err := net.SplitHostPort(u.Host)
	if err != nil {
		h, p = u.Host, "5432"
	}
	if host != "" {
		h = host
	}
	if port != "" {
		if _, err := strconv.Atoi(port); err != nil {
			return fmt.Errorf("PG_PORT: want a port number, got %q", port)
		}
		p = port
	}
	u.Host = net.JoinHostPort(h, p)
	if db != "" {
		u.Path = "/" + db
	}
	if user != "" || pass != "" {
		name, oldPass := "", ""
		if u.User != nil {
			name = u.User.Username()
			oldPass, _ = u.User.Password()
		}
		if user != "" {
			name = user
		}
		if pass != "" {
			oldPass = pass
		}
		u.User = url.UserPassword(name, oldPass)
		if oldPass == "" {
			u.User = url.User(name)
		}
	}
	out["postgres.url"] = u.String()
	return nil
}

func legacyElasticsearch(vars map[string]string, base string, out map[string]any) error {
	if v, ok := vars["ES_USER"]; ok {
		out["elasticsearch.username"] = v
	}
	if v, ok := vars["ES_PASSWORD"]; ok {
		out["elasticsearch.password"] = v
	}
	host, port, ssl := vars["ES_HOST"], vars["ES_PORT"], vars["ES_USE_SSL"]
	if host+port+ssl == "" {
		return nil
	}
	u := &url.URL{Scheme: "http", Host: "localhost:9200"}
	if base != "" {
		parsed, err := url.Parse(base)
		if err != nil {
			return fmt.Errorf("elasticsearch.url: %w", err)
		}
		u = parsed
	}
	h, p, err := net.SplitHostPort(u.Host)
	if err != nil {
		h, p = u.Host, "9200"
	}
	if host != "" {
		h = host
	}
	if port != "" {
		if _, err := strconv.Atoi(port); err != nil {
			return fmt.Errorf("ES_PORT: want a port number, got %q", port)
		}
		p = port
	}
	if ssl != "" {
		on, err := strconv.ParseBool(ssl)
		if err != nil {
			return fmt.Errorf("ES_USE_SSL: want true or false, got %q", ssl)
		}
		u.Scheme = map[bool]string{true: "https", false: "http"}[on]
	}
	u.Host = net.JoinHostPort(h, p)
	out["elasticsearch.url"] = u.String()
	return nil
}

// Keys maps the generic environment suffix (lower case, e.g.
// "elasticsearch_url", "data_dir") of every scalar or list key to the key.
func Keys() map[string]string {
	out := map[string]string{}
	walkKeys(reflect.TypeOf(Config{}), "", out)
	return out
}

func walkKeys(t reflect.Type, prefix string, out map[string]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("koanf")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)):
			walkKeys(f.Type, key+".", out)
		case f.Type.Kind() == reflect.Map:
			// Per-index maps are set in the file only.
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			// Lists of objects (api.keys) have their own variables.
		default:
			out[strings.ReplaceAll(key, ".", "_")] = key
		}
	}
}

// toMap turns c into the nested map, keyed by koanf tags, that koanf loads
// as the default layer.
func toMap(c Config) map[string]any {
	return normaliseValue(c).(map[string]any)
}

func normaliseValue(v any) any {
	if d, ok := v.(time.Duration); ok {
		return d.String()
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Struct {
		m := map[string]any{}
		for i := 0; i < rv.NumField(); i++ {
			tag := rv.Type().Field(i).Tag.Get("koanf")
			if tag != "" && tag != "-" {
				m[tag] = normaliseValue(rv.Field(i).Interface())
			}
		}
		return m
	}
	return v
}
