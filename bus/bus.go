// Package bus owns the message bus between Walsearch's stages: an embedded
// nats-server with JetStream on disk (or a connection to an external NATS
// cluster), the stream, consumer and key-value definitions, and the event
// types that cross stages.
//
// It never interprets events beyond their envelope: what a change means is
// the business of capture, transform and sink.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for Config.
const (
	// DefaultReplicas (0) sizes the streams and buckets to the cluster:
	// one replica per server, at most 3.
	DefaultReplicas        = 0
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultAckWait         = 15 * time.Second
)

// Config configures the bus.
type Config struct {
	// URL of an external NATS cluster: one URL or a comma-separated list of
	// the cluster's servers. Empty runs an embedded nats-server.
	// Default: "" (embedded).
	URL string `koanf:"url" help:"URL of an external NATS cluster, or a comma-separated list of its servers (nats://a:4222,nats://b:4222); empty runs an embedded server with its store under data_dir"`
	// DataDir is where the embedded server keeps JetStream files
	// (DataDir/nats). Required when URL is empty.
	DataDir string `koanf:"-"`
	// Listen makes the embedded server accept NATS clients on this address
	// (e.g. 127.0.0.1:4222) so other walsearch processes can share it.
	// Default: "" (a free loopback port for clients with the token kept in
	// DataDir/nats-access.json, mode 0600: the walsearch commands on this
	// machine).
	Listen string `koanf:"listen" help:"address where the embedded server accepts NATS clients without a token (e.g. 127.0.0.1:4222); empty means a free loopback port for clients with the token kept in data_dir/nats-access.json (mode 0600), which walsearch dlq, reindex and teardown read to reach a running instance"`
	// Token authenticates to URL. Default: "" (none).
	Token string `koanf:"token" help:"token to authenticate to nats.url"`
	// Credentials is a NATS credentials file (user JWT and seed) for URL.
	Credentials string `koanf:"credentials" help:"NATS credentials file (.creds: user JWT and nkey seed) to authenticate to nats.url"`
	// NKey is a file holding an nkey seed for URL.
	NKey string `koanf:"nkey" help:"file holding an nkey seed (SU...) to authenticate to nats.url"`
	// TLS configures TLS to URL.
	TLS TLSConfig `koanf:"tls"`
	// Replicas is the JetStream replica count of Walsearch's streams and
	// buckets; 0 sizes them to the cluster (min(3, servers)).
	// Default: 0.
	Replicas int `koanf:"replicas" help:"JetStream replicas of walsearch's streams and buckets (1 to 5); 0 means one per server of the cluster, at most 3"`
	// DuplicateWindow is how long JetStream remembers message ids to drop
	// republished events. Default: 2m.
	DuplicateWindow time.Duration `koanf:"-"`
	// AckWait is how long a delivered message may stay unacknowledged before
	// JetStream delivers it again: what a stalled (not dead) transform or
	// sink costs its messages at most. Default: 15s.
	AckWait time.Duration `koanf:"ack_wait" help:"how long a delivered change or document may stay unacknowledged before the bus delivers it again (at least 1s)"`
	// Partitions splits changes and documents into this many partitions by
	// a hash of the primary key, each read by its own consumer, so that up
	// to this many transform and sink processes share the work. Every
	// process of a deployment must use the same value (recorded in the
	// state bucket at the first start). Default: 1 (no partitioning).
	Partitions int `koanf:"partitions" help:"partitions of the change and document streams (1 to 64), by a hash of the primary key: transform and sink processes share them; every process of a deployment must use the same value"`
	// Logger receives the embedded server's warnings and errors. Default: discard.
	Logger *slog.Logger `koanf:"-"`
}

// TLSConfig configures TLS to an external NATS cluster.
type TLSConfig struct {
	CA   string `koanf:"ca" help:"PEM file of the certificate authorities that sign the NATS servers' certificates (turns TLS on)"`
	Cert string `koanf:"cert" help:"PEM client certificate for NATS servers that require one (with nats.tls.key)"`
	Key  string `koanf:"key" help:"PEM private key of nats.tls.cert"`
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{Replicas: DefaultReplicas, DuplicateWindow: DefaultDuplicateWindow, AckWait: DefaultAckWait, Partitions: DefaultPartitions}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" && c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: required for the embedded NATS server (or set nats.url)"))
	}
	if c.URL != "" && c.Listen != "" {
		errs = append(errs, errors.New("nats.listen: only applies to the embedded server; unset it or nats.url"))
	}
	if c.URL == "" && (c.Token != "" || c.Credentials != "" || c.NKey != "" || c.TLS != TLSConfig{}) {
		errs = append(errs, errors.New("nats.token, nats.credentials, nats.nkey, nats.tls: only apply to an external NATS; set nats.url or unset them"))
	}
	if n := btoi(c.Token != "") + btoi(c.Credentials != "") + btoi(c.NKey != ""); n > 1 {
		errs = append(errs, errors.New("nats.token, nats.credentials, nats.nkey: set at most one way to authenticate"))
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		errs = append(errs, errors.New("nats.tls.cert, nats.tls.key: set both or neither"))
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("nats.replicas: want 0 (one per server, at most 3) or 1 to 5, got %d", c.Replicas))
	}
	if c.DuplicateWindow <= 0 {
		errs = append(errs, fmt.Errorf("nats.duplicate_window: want a positive duration, got %s", c.DuplicateWindow))
	}
	if c.Partitions < 0 || c.Partitions > MaxPartitions { // 0: unset, one partition
		errs = append(errs, fmt.Errorf("nats.partitions: want 1 to %d, got %d", MaxPartitions, c.Partitions))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("nats.ack_wait: want at least 1s, got %s", c.AckWait))
	}
	return errors.Join(errs...)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// clientOptions are the connection options for an external NATS.
func (c Config) clientOptions() []nats.Option {
	opts := []nats.Option{nats.Name("walsearch"), nats.MaxReconnects(-1)}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.Credentials != "" {
		opts = append(opts, nats.UserCredentials(c.Credentials))
	}
	if c.NKey != "" {
		if o, err := nats.NkeyOptionFromSeed(c.NKey); err == nil {
			opts = append(opts, o)
		} else {
			opts = append(opts, func(*nats.Options) error { return fmt.Errorf("nats.nkey %s: %w", c.NKey, err) })
		}
	}
	if c.TLS.CA != "" {
		opts = append(opts, nats.RootCAs(c.TLS.CA))
	}
	if c.TLS.Cert != "" {
		opts = append(opts, nats.ClientCert(c.TLS.Cert, c.TLS.Key))
	}
	return opts
}

// Bus is a connection to JetStream with Walsearch's streams in place.
type Bus struct {
	cfg    Config
	log    *slog.Logger
	server *server.Server // nil when external
	access LocalAccess    // what LocalAccessFile says of the embedded server
	nc     *nats.Conn
	// dial opens another connection like nc (see NewPublisher).
	dial  func() (*nats.Conn, error)
	js    jetstream.JetStream
	state *KV
	// replicas of the streams and buckets this process creates.
	replicas int

	closeOnce sync.Once
}

// Open starts the embedded server (or connects to cfg.URL) and makes sure
// every stream and bucket exists.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bus{cfg: cfg, log: cfg.Logger}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("component", "bus")
	var err error
	if cfg.URL == "" {
		token := ""
		if cfg.Listen == "" {
			if token, err = newToken(); err != nil {
				return nil, err
			}
		}
		b.server, err = startEmbedded(filepath.Join(cfg.DataDir, "nats"), cfg.Listen, token, b.log)
		if err != nil {
			return nil, err
		}
		// The stages connect over the loopback listener, not through an
		// in-process pipe: a pipe has no buffer, so every write waits until
		// the server has read it, and a batch of changes held capture's
		// stream (and everything else on its connection) for as long as
		// the server took to get to it. A socket's buffer takes the batch
		// at once.
		url := "nats://" + DialAddr(b.server.Addr().String())
		opts := []nats.Option{nats.Name("walsearch")}
		if token != "" {
			opts = append(opts, nats.Token(token))
		}
		b.dial = func() (*nats.Conn, error) { return nats.Connect(url, opts...) }
		b.nc, err = b.dial()
		if err == nil {
			b.access = LocalAccess{URL: url, Token: token, PID: os.Getpid()}
			err = writeLocalAccess(cfg.DataDir, b.access)
		}
	} else {
		b.dial = func() (*nats.Conn, error) { return nats.Connect(cfg.URL, cfg.clientOptions()...) }
		b.nc, err = b.dial()
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("connect to nats %s: %w", RedactURL(cfg.URL), err)
	}
	b.js, err = jetstream.New(b.nc)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	b.replicas = cfg.Replicas
	if b.replicas == 0 {
		b.replicas = min(3, clusterSize(b.nc))
	}
	if err := b.ensureStreams(ctx); err != nil {
		b.Close()
		return nil, err
	}
	kv, err := b.openBucket(ctx, jetstream.KeyValueConfig{Bucket: StateBucket, Storage: jetstream.FileStorage, Replicas: b.replicas, History: 1})
	if err != nil {
		b.Close()
		return nil, err
	}
	b.state = &KV{kv: kv}
	return b, nil
}

// JetStream returns the underlying JetStream context.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Conn returns the underlying NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// State returns the durable key-value store for stage state.
func (b *Bus) State() *KV { return b.state }

// Embedded reports whether this bus runs its own nats-server.
func (b *Bus) Embedded() bool { return b.server != nil }

// ClientURL is the URL other processes can use to reach the embedded server,
// or "" when it does not listen.
func (b *Bus) ClientURL() string {
	if b.server == nil || b.cfg.Listen == "" {
		return ""
	}
	return b.server.ClientURL()
}

// Ping checks that the bus answers.
func (b *Bus) Ping(ctx context.Context) error {
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("ping jetstream: %w", err)
	}
	return nil
}

// Close drains the connection and stops the embedded server. It is idempotent.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		if b.access.URL != "" {
			removeLocalAccess(b.cfg.DataDir, b.access)
		}
		if b.nc != nil {
			_ = b.nc.Drain()
			b.nc.Close()
		}
		if b.server != nil {
			b.server.Shutdown()
			b.server.WaitForShutdown()
		}
	})
	return nil
}

// clusterSize counts the servers of the cluster nc is connected to: those
// configured and those the servers announced.
func clusterSize(nc *nats.Conn) int {
	return max(1, len(nc.Servers()))
}
