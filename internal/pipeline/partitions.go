package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/internal/config"
	"github.com/walsearch/walsearch/sink"
	"github.com/walsearch/walsearch/transform"
)

// Partitioned transform and sink (nats.partitions above 1): each partition
// has its own consumers (transform-<k>, sink-<k>) and, on an external NATS,
// its own lease (<kind>.<k> in walsearch_leases), so that exactly one
// process works on a partition at a time and each document's changes stay
// in order. The processes of one kind share the partitions: each
// heartbeats a member key, takes free partitions up to its fair share —
// ceil(partitions / live members) — and gives up those above it; a dead
// process's leases expire after the TTL and the others take them.

// partitioned reports whether transform and sink run one pair of stages
// per partition.
func (p *Pipeline) partitioned() bool { return p.Bus.Partitions() > 1 }

// partitionSet is what this process runs of the partitions it holds.
type partitionSet struct {
	mu     sync.Mutex
	sinks  map[int]*sink.Sink
	stages map[string]*supervised // "transform-<k>", "sink-<k>"
}

func newPartitionSet() *partitionSet {
	return &partitionSet{sinks: map[int]*sink.Sink{}, stages: map[string]*supervised{}}
}

func (s *partitionSet) setSink(k int, sk *sink.Sink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sk == nil {
		delete(s.sinks, k)
		return
	}
	s.sinks[k] = sk
}

// held returns the sinks of the partitions held, by partition.
func (s *partitionSet) held() map[int]*sink.Sink {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]*sink.Sink, len(s.sinks))
	for k, sk := range s.sinks {
		out[k] = sk
	}
	return out
}

func (s *partitionSet) setStage(name string, sv *supervised) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sv == nil {
		delete(s.stages, name)
		return
	}
	s.stages[name] = sv
}

// health is the first failure of role's stages among the partitions held
// (a process holding none stands by, which is healthy).
func (s *partitionSet) health(role string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.stages))
	for name := range s.stages {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if len(name) > len(role) && name[:len(role)+1] == role+"-" {
			if err := s.stages[name].health(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return nil
}

// agreePartitions makes sure every process of the deployment uses one
// partition count (see bus.AgreePartitions). A cluster that cannot answer
// yet (the state bucket just created, electing its leader) is waited for,
// as openBus waits.
func (p *Pipeline) agreePartitions(ctx context.Context) error {
	backoff := 250 * time.Millisecond
	for {
		err := p.checkPartitions(ctx)
		if err == nil || ctx.Err() != nil || !bus.Transient(err) {
			return err
		}
		p.log.Warn("NATS does not answer yet; trying again", "bucket", bus.StateBucket, "error", err, "retry_in", backoff)
		if !sleepCtx(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, 15*time.Second)
	}
}

// checkPartitions agrees on the partition count once. A deployment that
// ran unpartitioned before the count was recorded has its unpartitioned
// consumers: it counts as one partition.
func (p *Pipeline) checkPartitions(ctx context.Context) error {
	n := p.Bus.Partitions()
	if n > 1 {
		_, found, err := p.Bus.State().Get(ctx, bus.PartitionsKey)
		if err != nil {
			return err
		}
		if !found {
			for stream, name := range map[string]string{bus.ChangesStream: TransformConsumer, bus.DocsStream: SinkConsumer} {
				if _, err := p.Bus.JetStream().Consumer(ctx, stream, name); err == nil {
					if err := p.Bus.AgreePartitions(ctx, 1); err != nil {
						return err
					}
					break
				}
			}
		}
	}
	return p.Bus.AgreePartitions(ctx, n)
}

// runPartitions runs transform and sink of the partitions this process
// holds until ctx ends: every partition with the embedded NATS (one
// process), else its fair share, rebalanced as processes come and go.
func (p *Pipeline) runPartitions(ctx context.Context) error {
	if p.Bus.Embedded() {
		g, gctx := errgroup.WithContext(ctx)
		for k := range p.Bus.Partitions() {
			g.Go(func() error { return p.runPartition(gctx, k, nil) })
		}
		return g.Wait()
	}
	return p.balance(ctx)
}

// handover lets the stages of a partition being given up finish what they
// fetched: once drain is closed they fetch nothing more, acknowledge what
// they hold, and each sends on drained.
type handover struct {
	drain   chan struct{}
	drained chan struct{} // one per stage, buffered
	stages  int
}

func newHandover(stages int) *handover {
	return &handover{drain: make(chan struct{}), drained: make(chan struct{}, stages), stages: stages}
}

// until runs run with h's drain (nil without a handover): once it returned
// having drained, it tells h so and waits for ctx, so that its supervisor
// does not start it again.
func (h *handover) until(run func(context.Context, <-chan struct{}) error) func(context.Context) error {
	if h == nil {
		return func(ctx context.Context) error { return run(ctx, nil) }
	}
	var once sync.Once
	return func(ctx context.Context) error {
		err := run(ctx, h.drain)
		if err != nil || ctx.Err() != nil {
			return err
		}
		once.Do(func() { h.drained <- struct{}{} })
		<-ctx.Done()
		return nil
	}
}

// wait waits until every stage drained, stop is closed, or within passed.
func (h *handover) wait(stop <-chan struct{}, within time.Duration) bool {
	t := time.NewTimer(within)
	defer t.Stop()
	for range h.stages {
		select {
		case <-h.drained:
		case <-stop:
			return false
		case <-t.C:
			return false
		}
	}
	return true
}

// runPartition runs this process's transform and sink stages of partition
// k, each supervised, until ctx ends or one fails for good; with a
// handover, until they drained.
func (p *Pipeline) runPartition(ctx context.Context, k int, h *handover) error {
	var sk *sink.Sink
	if p.roles.Has(config.RoleSink) {
		for {
			var err error
			if sk, err = p.newPartitionSink(ctx, k); err == nil {
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			p.log.Warn("start the sink of a partition; trying again", "partition", k, "error", err)
			if !sleepCtx(ctx, time.Second) {
				return nil
			}
		}
		p.parts.setSink(k, sk)
		defer p.parts.setSink(k, nil)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, role := range []config.Role{config.RoleTransform, config.RoleSink} {
		if !p.roles.Has(role) {
			continue
		}
		name := bus.PartitionName(string(role), "-", k, p.Bus.Partitions())
		run := h.until(func(ctx context.Context, drain <-chan struct{}) error {
			return p.runTransformPartition(ctx, k, sk, drain)
		})
		if role == config.RoleSink {
			run = h.until(func(ctx context.Context, drain <-chan struct{}) error {
				return p.runSinkPartition(ctx, k, sk, drain)
			})
		}
		sv := &supervised{name: name, log: p.log, run: run}
		p.parts.setStage(name, sv)
		defer p.parts.setStage(name, nil)
		g.Go(func() error { return sv.loop(gctx) })
	}
	return g.Wait()
}

// runTransformPartition runs the transform of partition k, handing its
// documents to sk (the same partition's sink) when not nil, else
// publishing them in partition k of the documents stream.
func (p *Pipeline) runTransformPartition(ctx context.Context, k int, sk *sink.Sink, drain <-chan struct{}) error {
	n := p.Bus.Partitions()
	src, err := p.Bus.NewReader(ctx, bus.ReaderConfig{Stream: bus.ChangesStream,
		Durable: bus.PartitionName(TransformConsumer, "-", k, n), Filter: bus.ChangeFilter(k, n)})
	if err != nil {
		return err
	}
	tc := p.cfg.TransformConfig()
	tc.Logger = p.log.With("partition", k)
	var out transform.Publisher
	if sk != nil {
		out = sink.NewHandoff(sk)
	} else {
		pub, err := p.Bus.NewPartitionDocPublisher(k)
		if err != nil {
			return err
		}
		defer pub.Close()
		out = pub
	}
	mapper, err := p.partitionMapper(k)
	if err != nil {
		return err
	}
	st, err := transform.New(tc, src, out, p.Bus, mapper)
	if err != nil {
		return err
	}
	return st.RunUntil(ctx, drain)
}

// runSinkPartition runs sk on a new reader of partition k of the
// documents stream (see runSink).
func (p *Pipeline) runSinkPartition(ctx context.Context, k int, sk *sink.Sink, drain <-chan struct{}) error {
	src, err := p.partitionDocReader(ctx, k)
	if err != nil {
		return err
	}
	sk.UseSource(src)
	return sk.RunUntil(ctx, drain)
}

func (p *Pipeline) partitionDocReader(ctx context.Context, k int) (*bus.Reader, error) {
	n := p.Bus.Partitions()
	return p.Bus.NewReader(ctx, bus.ReaderConfig{Stream: bus.DocsStream,
		Durable: bus.PartitionName(SinkConsumer, "-", k, n), Filter: bus.DocFilter(k, n)})
}

// newPartitionSink makes the sink of partition k.
func (p *Pipeline) newPartitionSink(ctx context.Context, k int) (*sink.Sink, error) {
	src, err := p.partitionDocReader(ctx, k)
	if err != nil {
		return nil, err
	}
	sc := p.cfg.SinkConfig()
	sc.Schemas, sc.Control, sc.Logger = p.Bus.State(), p.Bus.State(), p.log.With("partition", k)
	sc.Partition, sc.Partitions = k, p.Bus.Partitions()
	return sink.New(sc, src, p.ES, p.Bus)
}

// heldPartition is a partition this process holds: its lease and the
// goroutine running its stages, which ends (done) when cancel is called or
// the lease is lost.
type heldPartition struct {
	lease  *bus.Lease
	hand   *handover
	cancel context.CancelFunc
	done   chan struct{}
	err    error // a stage's error retrying cannot fix; read after done
}

// balance holds this process's fair share of the partitions until ctx
// ends, then gives them all up.
func (p *Pipeline) balance(ctx context.Context) error {
	n := p.Bus.Partitions()
	kind := workLeaseKey(p.roles)
	ttl := p.captureConfig().LeaseTTL
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	var members *bus.Members
	for backoff := 250 * time.Millisecond; ; backoff = min(2*backoff, 15*time.Second) {
		var err error
		if members, err = p.Bus.OpenMembers(ctx, kind, hex.EncodeToString(id), ttl); err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if !bus.Transient(err) {
			return err
		}
		p.log.Warn("NATS does not answer yet; trying again", "bucket", bus.LeaseBucket, "error", err, "retry_in", backoff)
		if !sleepCtx(ctx, backoff) {
			return nil
		}
	}
	holder := holderID()
	leases := make([]*bus.Lease, n)
	held := map[int]*heldPartition{}
	release := func(k int) {
		h := held[k]
		delete(held, k)
		// Its stages finish the rounds they fetched (so that the next
		// holder need not do them again), for at most the ack wait.
		close(h.hand.drain)
		if !h.hand.wait(h.done, p.Bus.AckWait()) {
			p.log.Warn("a partition given up did not finish its rounds in time; what it holds is delivered again to the next holder", "partition", k)
		}
		h.cancel()
		<-h.done // its stages stopped: nothing of it is in flight any more
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := h.lease.Release(rctx); err != nil {
			p.log.Warn("release a partition", "partition", k, "error", err)
		}
	}
	defer func() {
		for k := range held {
			release(k)
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = members.Leave(rctx)
	}()
	tick := max(ttl/10, 50*time.Millisecond)
	var lastBeat time.Time
	for ctx.Err() == nil {
		if time.Since(lastBeat) >= ttl/3 {
			if err := members.Beat(ctx); err != nil {
				p.log.Warn("partition membership heartbeat", "error", err)
			} else {
				lastBeat = time.Now()
			}
		}
		for k, h := range held {
			select {
			case <-h.done: // lost its lease, or failed for good
				delete(held, k)
				h.cancel()
				if h.err != nil {
					return h.err
				}
			default:
			}
		}
		live, err := members.Count(ctx)
		if err != nil {
			p.log.Warn("count the processes sharing the partitions", "error", err)
			live = 0
		}
		if live > 0 {
			share := (n + live - 1) / live
			for len(held) > share {
				k := slices.Max(keysOf(held))
				p.log.Info("giving up a partition for another process", "partition", k, "share", share, "processes", live)
				release(k)
			}
			for k := 0; k < n && len(held) < share; k++ {
				if held[k] != nil {
					continue
				}
				if leases[k] == nil {
					if leases[k], err = p.Bus.OpenLease(ctx, bus.LeaseConfig{Key: bus.PartitionName(kind, ".", k, n),
						Holder: holder, TTL: ttl, Logger: p.log}); err != nil {
						p.log.Warn("open a partition lease", "partition", k, "error", err)
						continue
					}
				}
				ok, err := leases[k].TryAcquire(ctx)
				if err != nil && ctx.Err() == nil {
					p.log.Warn("take a partition", "partition", k, "error", err)
				}
				if ok {
					held[k] = p.holdPartition(ctx, k, leases[k])
				}
			}
		}
		if !sleepCtx(ctx, tick) {
			break
		}
	}
	return nil
}

// holdPartition starts running partition k's stages while lease, just
// acquired, is held.
func (p *Pipeline) holdPartition(ctx context.Context, k int, lease *bus.Lease) *heldPartition {
	hctx, cancel := context.WithCancel(ctx)
	stages := 0
	for _, role := range []config.Role{config.RoleTransform, config.RoleSink} {
		if p.roles.Has(role) {
			stages++
		}
	}
	h := &heldPartition{lease: lease, hand: newHandover(stages), cancel: cancel, done: make(chan struct{})}
	p.log.Info("working on a partition", "partition", k)
	go func() {
		defer close(h.done)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := lease.Hold(hctx); err != nil {
				p.log.Warn("partition lease lost: its stages stop", "partition", k, "error", err)
			}
			cancel()
		}()
		err := p.runPartition(hctx, k, h.hand)
		cancel()
		wg.Wait()
		if err != nil && !errors.Is(err, context.Canceled) {
			h.err = err
		}
	}()
	return h
}

func keysOf(m map[int]*heldPartition) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// sleepCtx waits d, and reports false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
