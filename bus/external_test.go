package bus_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/walsearch/walsearch/bus"
)

// startNATS runs a real nats-server with JetStream in this process, on a
// free loopback port, as an external NATS for bus.Open.
func startNATS(t *testing.T) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return s.ClientURL()
}

func openExternal(t *testing.T, url string, log *slog.Logger) (*bus.Bus, error) {
	t.Helper()
	cfg := bus.DefaultConfig()
	cfg.URL, cfg.Logger = url, log
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, cfg)
	if err == nil {
		t.Cleanup(func() { b.Close() })
	}
	return b, err
}

// An existing stream whose settings walsearch's guarantees rest on differ
// is refused with the setting named, and left as it was; a different
// replica count is a warning.
func TestExistingStreamWithOtherSettingsIsReported(t *testing.T) {
	url := startNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	// Someone created the changes stream by hand with limits retention and
	// an age limit: changes would vanish before transform read them.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: bus.ChangesStream, Subjects: []string{bus.ChangePrefix + ">"},
		Retention: jetstream.LimitsPolicy, MaxAge: time.Hour, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	_, err = openExternal(t, url, nil)
	var se *bus.SettingsError
	if !errors.As(err, &se) {
		t.Fatalf("Open = %v, want a *bus.SettingsError", err)
	}
	if got := se.Settings(); !slices.Equal(got, []string{"retention", "max_age"}) {
		t.Errorf("settings named %v, want retention and max_age", got)
	}
	for _, want := range []string{"WALSEARCH_CHANGES", "retention is Limits, walsearch needs WorkQueue", "nats stream edit WALSEARCH_CHANGES --max-age", "nats stream rm WALSEARCH_CHANGES"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	st, err := js.Stream(ctx, bus.ChangesStream)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.CachedInfo().Config; cfg.Retention != jetstream.LimitsPolicy || cfg.MaxAge != time.Hour {
		t.Errorf("the stream was changed: %+v", cfg)
	}

	// Fixed by hand, it is used; a replica count other than walsearch's is
	// only a warning.
	if err := js.DeleteStream(ctx, bus.ChangesStream); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	b, err := openExternal(t, url, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("Open on fixed streams: %v", err)
	}
	b.Close()
	cfg := bus.DefaultConfig()
	cfg.URL, cfg.Replicas, cfg.Logger = url, 3, slog.New(slog.NewTextHandler(&logs, nil))
	_, err = bus.Open(ctx, cfg) // the server has one node: the streams exist with 1 replica
	if err != nil {
		t.Fatalf("Open with nats.replicas 3 on streams of 1: %v", err)
	}
	if !strings.Contains(logs.String(), "replicas is 1, walsearch creates it with 3") {
		t.Errorf("no warning about the replica count; logs:\n%s", logs.String())
	}
}

// A state bucket with a history or TTL walsearch does not expect is refused.
func TestExistingBucketWithOtherSettingsIsReported(t *testing.T) {
	url := startNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: bus.StateBucket, TTL: time.Minute, History: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = openExternal(t, url, nil)
	var se *bus.SettingsError
	if !errors.As(err, &se) || !slices.Equal(se.Settings(), []string{"ttl"}) || !strings.Contains(err.Error(), "nats kv edit walsearch_state --ttl") {
		t.Fatalf("Open = %v, want a SettingsError naming ttl", err)
	}
}

// Open's errors say whether waiting can help: a NATS that does not answer
// may come up, a refused login will not.
func TestOpenErrorsSayWhetherToRetry(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, Authorization: "right"})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := bus.DefaultConfig()
	cfg.URL, cfg.Token = s.ClientURL(), "wrong"
	_, err = bus.Open(ctx, cfg)
	if err == nil || bus.Transient(err) {
		t.Fatalf("wrong token: %v (transient %t), want a lasting error", err, bus.Transient(err))
	}
	cfg.Token = "right"
	b, err := bus.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("right token: %v", err)
	}
	b.Close()
	cfg.URL = "nats://" + freeAddr(t) // nothing listens
	_, err = bus.Open(ctx, cfg)
	if err == nil || !bus.Transient(err) {
		t.Fatalf("no server: %v (transient %t), want a transient error", err, bus.Transient(err))
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
