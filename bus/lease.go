package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LeaseBucket is the key-value bucket of leases. Its TTL is the lease's:
// a lease its holder stops renewing disappears after it.
const LeaseBucket = "walsearch_leases"

// CaptureLease is the key of the lease that makes one capture process the
// leader: the only one that holds the replication slot and publishes changes.
const CaptureLease = "capture"

// LeaseHeader carries the fencing token of the lease under which a change
// was published.
const LeaseHeader = "Walsearch-Lease"

// ErrLeaseLost means this process no longer holds its lease: another process
// may hold it now, so nothing may be published under it.
var ErrLeaseLost = errors.New("lease lost: another process may lead now")

// LeaseRecord is the value of a lease key.
type LeaseRecord struct {
	// Holder identifies the process (host, process id and a random part).
	Holder string `json:"holder"`
	// Token is the bucket revision at which Holder acquired the lease: the
	// fencing token, which grows with every new leader.
	Token uint64 `json:"token"`
	// Renewed is when the holder last renewed the lease, by its clock.
	Renewed time.Time `json:"renewed"`
	// TTL is how long the lease lasts after a renewal.
	TTL time.Duration `json:"ttl"`
	// Revision is the bucket revision of this record (not stored).
	Revision uint64 `json:"-"`
}

// Expires is when the lease ends unless renewed, by the holder's clock.
func (r LeaseRecord) Expires() time.Time { return r.Renewed.Add(r.TTL) }

// LeaseConfig configures a Lease.
type LeaseConfig struct {
	// Key names the lease in LeaseBucket.
	Key string
	// Holder identifies this process in the lease's record.
	Holder string
	// TTL is how long the lease outlives its last renewal; a standby takes
	// over at most about TTL after the holder stopped. The bucket is
	// created with it, and every process sharing the lease must use the
	// same.
	TTL    time.Duration
	Logger *slog.Logger
}

// Lease is a lease in LeaseBucket held by at most one process at a time.
//
// Lifecycle: Acquire blocks until this process holds the lease; Hold
// renews it until ctx ends (nil) or it is lost (ErrLeaseLost); Release
// gives it up. Check is the fence: it fails once the lease may have passed
// to another process, by this process's monotonic clock, even when the
// process was stopped and has not noticed yet. Check is safe for
// concurrent use.
type Lease struct {
	kv  jetstream.KeyValue
	cfg LeaseConfig
	log *slog.Logger

	mu         sync.Mutex
	token      uint64    // fencing token while held, else 0
	rev        uint64    // revision of the last renewal
	validUntil time.Time // monotonic: the lease cannot have passed on before
}

// OpenLease opens (creating if needed) LeaseBucket with cfg.TTL. A bucket
// whose TTL differs is an error: processes that disagree on the TTL would
// not agree on who leads.
func (b *Bus) OpenLease(ctx context.Context, cfg LeaseConfig) (*Lease, error) {
	if cfg.TTL < time.Second {
		return nil, fmt.Errorf("lease %s: want a TTL of at least 1s, got %s", cfg.Key, cfg.TTL)
	}
	want := jetstream.KeyValueConfig{Bucket: LeaseBucket, Description: "walsearch leases", TTL: cfg.TTL,
		Storage: jetstream.FileStorage, Replicas: b.replicas, History: 1}
	kv, err := b.openBucket(ctx, want)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Lease{kv: kv, cfg: cfg, log: log.With("component", "lease", "lease", cfg.Key)}, nil
}

// TryAcquire takes the lease if no one holds it, and reports whether it
// did (its fencing token then is Check's).
func (l *Lease) TryAcquire(ctx context.Context) (bool, error) {
	_, err := l.create(ctx)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	return err == nil, err
}

// create takes the lease by creating its key.
func (l *Lease) create(ctx context.Context) (uint64, error) {
	start := time.Now()
	rec := LeaseRecord{Holder: l.cfg.Holder, Renewed: start.UTC(), TTL: l.cfg.TTL}
	data, _ := json.Marshal(rec)
	rev, err := l.kv.Create(ctx, l.cfg.Key, data)
	if err != nil {
		return 0, err
	}
	// The token is the revision of the create; the record says so from
	// the first renewal on.
	l.mu.Lock()
	l.token, l.rev, l.validUntil = rev, rev, start.Add(l.safeTTL())
	l.mu.Unlock()
	if err := l.renew(ctx); err != nil {
		return 0, err
	}
	l.log.Info("lease acquired", "token", rev)
	return rev, nil
}

// Acquire waits until this process holds the lease, polling at a tenth of
// the TTL, and returns its fencing token.
func (l *Lease) Acquire(ctx context.Context) (uint64, error) {
	poll := max(l.cfg.TTL/10, 50*time.Millisecond)
	waiting := false
	for {
		rev, err := l.create(ctx)
		if err == nil {
			return rev, nil
		}
		if errors.Is(err, ErrLeaseLost) {
			return 0, err
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			l.log.Warn("acquire lease", "error", err)
		} else if !waiting {
			waiting = true
			if cur, err := l.Current(ctx); err == nil {
				l.log.Info("standing by: another process holds the lease", "holder", cur.Holder, "token", cur.Token)
			}
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-t.C:
		}
	}
}

// safeTTL is how long after a renewal began this process counts the lease
// as its own: a little less than the TTL, against clock-rate drift between
// this host and the NATS servers.
func (l *Lease) safeTTL() time.Duration { return l.cfg.TTL - l.cfg.TTL/10 }

// renew updates the record under the revision this process last wrote:
// if anyone else wrote since, the lease is lost.
func (l *Lease) renew(ctx context.Context) error {
	l.mu.Lock()
	token, rev := l.token, l.rev
	l.mu.Unlock()
	if token == 0 {
		return ErrLeaseLost
	}
	start := time.Now()
	data, _ := json.Marshal(LeaseRecord{Holder: l.cfg.Holder, Token: token, Renewed: start.UTC(), TTL: l.cfg.TTL})
	next, err := l.kv.Update(ctx, l.cfg.Key, data, rev)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token != token {
		return ErrLeaseLost
	}
	switch {
	case err == nil:
		l.rev, l.validUntil = next, start.Add(l.safeTTL())
		return nil
	case errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		l.token = 0 // someone else wrote, or it expired
		return fmt.Errorf("renew lease %s: %w", l.cfg.Key, ErrLeaseLost)
	case !time.Now().Before(l.validUntil):
		l.token = 0
		return fmt.Errorf("renew lease %s: %w (last error: %w)", l.cfg.Key, ErrLeaseLost, err)
	default:
		return nil // transient: the next renewal may get through
	}
}

// Hold renews the lease at a third of its TTL until ctx ends (then it
// returns nil, still holding it) or the lease is lost (ErrLeaseLost).
func (l *Lease) Hold(ctx context.Context) error {
	t := time.NewTicker(l.cfg.TTL / 3)
	defer t.Stop()
	for {
		if _, err := l.Check(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := l.renew(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("lease lost", "error", err)
			return err
		}
	}
}

// Check returns the fencing token while this process holds the lease, and
// ErrLeaseLost once it may not.
func (l *Lease) Check() (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token == 0 {
		return 0, ErrLeaseLost
	}
	if !time.Now().Before(l.validUntil) {
		l.token = 0
		return 0, ErrLeaseLost
	}
	return l.token, nil
}

// Release gives the lease up, if this process still holds it, so that a
// standby takes over at once instead of after the TTL.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	token, rev := l.token, l.rev
	l.token = 0
	l.mu.Unlock()
	if token == 0 {
		return nil
	}
	err := l.kv.Delete(ctx, l.cfg.Key, jetstream.LastRevision(rev))
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("release lease %s: %w", l.cfg.Key, err)
	}
	l.log.Info("lease released", "token", token)
	return nil
}

// Current returns the lease's record, or a zero record when no one holds it.
func (l *Lease) Current(ctx context.Context) (LeaseRecord, error) {
	return readLease(ctx, l.kv, l.cfg.Key)
}

// ReadLease returns the record of lease key, or a zero record when no one
// holds it (or the bucket does not exist yet).
func (b *Bus) ReadLease(ctx context.Context, key string) (LeaseRecord, error) {
	kv, err := b.js.KeyValue(ctx, LeaseBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return LeaseRecord{}, nil
	}
	if err != nil {
		return LeaseRecord{}, fmt.Errorf("open lease bucket %s: %w", LeaseBucket, err)
	}
	return readLease(ctx, kv, key)
}

func readLease(ctx context.Context, kv jetstream.KeyValue, key string) (LeaseRecord, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return LeaseRecord{}, nil
	}
	if err != nil {
		return LeaseRecord{}, fmt.Errorf("read lease %s: %w", key, err)
	}
	var rec LeaseRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return LeaseRecord{}, fmt.Errorf("read lease %s: %w", key, err)
	}
	if rec.Token == 0 {
		rec.Token = e.Revision() // the first record, written at the create
	}
	rec.Revision = e.Revision()
	return rec, nil
}

// Members counts the live processes of one kind through heartbeats in
// LeaseBucket: each member puts its key (MembersPrefix, kind, id) at a
// third of the bucket's TTL, and a member that stops beating disappears
// after the TTL.
type Members struct {
	kv   jetstream.KeyValue
	kind string
	key  string
}

// MembersPrefix starts the keys of the members' heartbeats.
const MembersPrefix = "members."

// OpenMembers opens (creating if needed) LeaseBucket with ttl for the
// heartbeats of member id among the processes of kind, a KV key token.
func (b *Bus) OpenMembers(ctx context.Context, kind, id string, ttl time.Duration) (*Members, error) {
	kv, err := b.openBucket(ctx, jetstream.KeyValueConfig{Bucket: LeaseBucket, Description: "walsearch leases", TTL: ttl,
		Storage: jetstream.FileStorage, Replicas: b.replicas, History: 1})
	if err != nil {
		return nil, err
	}
	return &Members{kv: kv, kind: kind, key: MembersPrefix + kind + "." + id}, nil
}

// Beat records this member as live for another TTL.
func (m *Members) Beat(ctx context.Context) error {
	if _, err := m.kv.Put(ctx, m.key, []byte(time.Now().UTC().Format(time.RFC3339Nano))); err != nil {
		return fmt.Errorf("heartbeat %s: %w", m.key, err)
	}
	return nil
}

// Leave removes this member at once (a clean stop).
func (m *Members) Leave(ctx context.Context) error {
	if err := m.kv.Delete(ctx, m.key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("leave %s: %w", m.key, err)
	}
	return nil
}

// Count returns the live members of this kind (at least 1: this one).
func (m *Members) Count(ctx context.Context) (int, error) {
	lister, err := m.kv.ListKeysFiltered(ctx, MembersPrefix+m.kind+".*")
	if err != nil {
		return 0, fmt.Errorf("list members %s: %w", m.kind, err)
	}
	seen := map[string]bool{} // a key may be listed twice
	for k := range lister.Keys() {
		seen[k] = true
	}
	return max(1, len(seen)), nil
}
