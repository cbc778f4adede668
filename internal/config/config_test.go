package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/walsearch/walsearch/bus"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "walsearch.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsWhenNothingIsSet(t *testing.T) {
	c, err := Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.DataDir != d.DataDir || c.Postgres.Slot != "walsearch" || c.API.Listen != "127.0.0.1:8080" || c.Sink.SyncInterval != time.Second || c.Sink.MaxBatchSize != 1000 {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestFlagsBeatEnvBeatFileBeatDefaults(t *testing.T) {
	path := write(t, `
data_dir: /from/file
postgres:
  url: postgres://file@db:5432/app
  tables: [users, shop.orders]
api:
  listen: 127.0.0.1:9000
sink:
  max_batch_size: 500
`)
	env := []string{"WALSEARCH_API_LISTEN=127.0.0.1:9100", "WALSEARCH_DATA_DIR=/from/env", "MAX_BATCH_SIZE=250", "SYNC_INTERVAL=0.5"}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs, AllFlags...)
	if err := fs.Parse([]string{"--data-dir=/from/flag"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, env, fs)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/from/flag" {
		t.Errorf("data_dir = %q, want the flag's", c.DataDir)
	}
	if c.API.Listen != "127.0.0.1:9100" {
		t.Errorf("api.listen = %q, want the env's", c.API.Listen)
	}
	if c.Postgres.URL != "postgres://file@db:5432/app" || len(c.Postgres.Tables) != 2 || c.Postgres.Tables[1] != "shop.orders" {
		t.Errorf("postgres from file lost: %+v", c.Postgres)
	}
	if c.Sink.MaxBatchSize != 250 || c.Sink.SyncInterval != 500*time.Millisecond {
		t.Errorf("legacy sink env not applied: %+v", c.Sink)
	}
	if c.Postgres.Slot != "walsearch" {
		t.Errorf("default slot lost: %q", c.Postgres.Slot)
	}
}

func TestLegacyPostgresAndElasticsearchEnv(t *testing.T) {
	env := []string{"PG_HOST=db.internal", "PG_PORT=6543", "PG_DATABASE=shop", "PG_USER=sync", "PG_PASSWORD=s3cret",
		"ES_HOST=es.internal", "ES_PORT=9243", "ES_USE_SSL=true", "ES_USER=elastic", "ES_PASSWORD=pw", "POOL_SIZE=8", "RATE_LIMIT=5000"}
	c, err := Load("", env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Postgres.URL != "postgres://sync:s3cret@db.internal:6543/shop" {
		t.Errorf("postgres.url = %q", c.Postgres.URL)
	}
	if c.Elasticsearch.URL != "https://es.internal:9243" || c.Elasticsearch.Username != "elastic" || c.Elasticsearch.Password != "pw" {
		t.Errorf("elasticsearch = %+v", c.Elasticsearch)
	}
	if c.Postgres.PoolSize != 8 || c.Sink.RateLimit != 5000 {
		t.Errorf("pool/rate = %d/%g", c.Postgres.PoolSize, c.Sink.RateLimit)
	}
	if got := bus.RedactURL(c.Postgres.URL); strings.Contains(got, "s3cret") {
		t.Errorf("Redact leaked the password: %s", got)
	}
}

func TestUnknownKeyInFileIsAnError(t *testing.T) {
	path := write(t, "postgres:\n  urll: postgres://x@y/z\n")
	_, err := Load(path, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "urll") {
		t.Fatalf("want an error naming the unknown key, got %v", err)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := Default()
	c.Postgres.URL = ""
	c.Postgres.Slot = "Bad-Slot"
	c.Log.Level = "loud"
	c.Postgres.PoolSize = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, key := range []string{"postgres.url", "postgres.slot", "log.level", "postgres.pool_size"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}
}

func TestBadLegacyValuesAreErrors(t *testing.T) {
	for _, env := range [][]string{{"SYNC_INTERVAL=soon"}, {"PG_HOST=h", "PG_PORT=abc"}, {"ES_USE_SSL=maybe"}} {
		if _, err := Load("", env, nil); err == nil {
			t.Errorf("%v accepted", env)
		}
	}
}

func TestTransformSettings(t *testing.T) {
	path := write(t, "transform:\n  timeout: 250ms\n  timeout_retries: 2\n  max_timeout: 600ms\n  max_doc_bytes: 2048\n  workers: 3\n")
	c, err := Load(path, []string{"WALSEARCH_TRANSFORM_RELOAD_INTERVAL=0s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Transform.Timeout != 250*time.Millisecond || c.Transform.MaxDocBytes != 2048 || c.Transform.Workers != 3 || c.Transform.ReloadInterval != 0 ||
		c.Transform.TimeoutRetries != 2 || c.Transform.MaxTimeout != 600*time.Millisecond {
		t.Fatalf("transform = %+v", c.Transform)
	}
	if d := Default().Transform; d.Timeout != 100*time.Millisecond || d.MaxDocBytes != 10<<20 || d.TimeoutRetries != 4 || d.MaxTimeout != 0 {
		t.Fatalf("transform defaults = %+v", d)
	}
	c.Transform.Timeout = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "transform.timeout") {
		t.Fatalf("zero timeout accepted: %v", err)
	}
	c.Transform.Timeout, c.Transform.TimeoutRetries, c.Transform.MaxTimeout = time.Second, -1, time.Millisecond
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "transform.timeout_retries") || !strings.Contains(err.Error(), "transform.max_timeout") {
		t.Fatalf("negative retries and a max_timeout below the timeout accepted: %v", err)
	}
}

func TestSinkMaxContentLength(t *testing.T) {
	c, err := Load("", []string{"WALSEARCH_SINK_MAX_CONTENT_LENGTH=10485760"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Sink.MaxContentLength != 10<<20 {
		t.Fatalf("sink.max_content_length = %d, want 10 MiB from the environment", c.Sink.MaxContentLength)
	}
	if d, _ := Load("", nil, nil); d.Sink.MaxContentLength != 100<<20 {
		t.Fatalf("default sink.max_content_length = %d, want Elasticsearch's 100mb", d.Sink.MaxContentLength)
	}
	c.Postgres.URL = "postgres://u@h/db"
	c.Sink.MaxContentLength = 100
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "sink.max_content_length") {
		t.Fatalf("a 100-byte limit was not refused by name: %v", err)
	}
}

func TestElasticsearchTLSKeys(t *testing.T) {
	path := write(t, "elasticsearch:\n  url: https://es.internal:9200\n  ca_cert: /etc/walsearch/ca.pem\n")
	c, err := Load(path, []string{"WALSEARCH_ELASTICSEARCH_INSECURE_SKIP_VERIFY=true"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Elasticsearch.CACert != "/etc/walsearch/ca.pem" || !c.Elasticsearch.InsecureSkipVerify {
		t.Fatalf("elasticsearch TLS keys not loaded: %+v", c.Elasticsearch)
	}
}

func TestAPIBreakerCooldown(t *testing.T) {
	c, err := Load(write(t, "api:\n  breaker_cooldown: 750ms\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.API.BreakerCooldown != 750*time.Millisecond {
		t.Fatalf("api.breaker_cooldown = %s, want 750ms from the file", c.API.BreakerCooldown)
	}
	if c, err = Load("", []string{"WALSEARCH_API_BREAKER_COOLDOWN=5s"}, nil); err != nil || c.API.BreakerCooldown != 5*time.Second {
		t.Fatalf("api.breaker_cooldown from the environment = %s (%v)", c.API.BreakerCooldown, err)
	}
	if Default().API.BreakerCooldown != 2*time.Second {
		t.Fatalf("default api.breaker_cooldown = %s", Default().API.BreakerCooldown)
	}
	c.Postgres.URL = "postgres://u@h/db"
	c.API.BreakerCooldown = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "api.breaker_cooldown") {
		t.Fatalf("zero cooldown accepted: %v", err)
	}
}
