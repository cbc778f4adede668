package bus_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/walsearch/walsearch/bus"
)

func openLease(t *testing.T, b *bus.Bus, holder string, ttl time.Duration) *bus.Lease {
	t.Helper()
	l, err := b.OpenLease(context.Background(), bus.LeaseConfig{Key: bus.CaptureLease, Holder: holder, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// One holder at a time; a standby takes over once the holder stops
// renewing (its TTL passed); the stopped holder's fence fails by its own
// clock, so its publisher refuses to publish, and its renewal finds the
// lease lost. The takeover's token is higher.
func TestLeaseTakeoverAndFence(t *testing.T) {
	url := startNATS(t)
	a, err := openExternal(t, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := openExternal(t, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	const ttl = 2 * time.Second
	la, lb := openLease(t, a, "a", ttl), openLease(t, b, "b", ttl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tokA, err := la.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := la.Check(); err != nil || tok != tokA {
		t.Fatalf("Check = %d, %v; want %d", tok, err, tokA)
	}
	pub, err := a.NewChangePublisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pub.SetFence(la)
	// Every change published carries the token.
	sub, err := a.Conn().SubscribeSync(bus.ChangePrefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	// The publisher has a connection of its own: the subscription must
	// have reached the server before it publishes.
	if err := a.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishRaw(ctx, bus.ChangeSubject("public", "t"), "c:1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get(bus.LeaseHeader); got != itoa(tokA) {
		t.Fatalf("%s header = %q, want %d", bus.LeaseHeader, got, tokA)
	}

	// While a holds (renewing), b stands by.
	holdCtx, stopHold := context.WithCancel(ctx)
	held := make(chan error, 1)
	go func() { held <- la.Hold(holdCtx) }()
	waitCtx, waitCancel := context.WithTimeout(ctx, 2*ttl)
	if _, err := lb.Acquire(waitCtx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("b acquired while a renews: %v", err)
	}
	waitCancel()
	if cur, err := lb.Current(ctx); err != nil || cur.Holder != "a" || cur.Token != tokA {
		t.Fatalf("Current = %+v, %v; want holder a, token %d", cur, err, tokA)
	}

	// a stops renewing, like a process stopped by SIGSTOP: b takes over
	// after the TTL, and a's fence fails before b can hold it.
	stopHold()
	if err := <-held; err != nil {
		t.Fatalf("Hold on cancel = %v, want nil", err)
	}
	stopped := time.Now()
	tokB, err := lb.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(stopped)
	t.Logf("b took over %s after a stopped renewing (ttl %s)", took.Round(time.Millisecond), ttl)
	if tokB <= tokA {
		t.Errorf("token went from %d to %d, want it to grow", tokA, tokB)
	}
	if _, err := la.Check(); !errors.Is(err, bus.ErrLeaseLost) {
		t.Fatalf("a's fence after b took over: %v, want ErrLeaseLost", err)
	}
	err = pub.PublishRaw(ctx, bus.ChangeSubject("public", "t"), "c:2", []byte(`{}`))
	if !errors.Is(err, bus.ErrLeaseLost) {
		t.Fatalf("stale publish = %v, want ErrLeaseLost", err)
	}
	if m, err := sub.NextMsg(200 * time.Millisecond); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("the stale holder published %q (%v)", m.Header.Get(bus.LeaseHeader), err)
	}
	if err := la.Hold(ctx); !errors.Is(err, bus.ErrLeaseLost) {
		t.Fatalf("a's Hold after losing = %v, want ErrLeaseLost", err)
	}
	// b releases on a clean stop; a standby gets it at once.
	if err := lb.Release(ctx); err != nil {
		t.Fatal(err)
	}
	quick, cancelQuick := context.WithTimeout(ctx, ttl)
	defer cancelQuick()
	if _, err := la.Acquire(quick); err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
}

// Processes that disagree on the lease TTL are refused: they would not
// agree on when a leader is gone.
func TestLeaseTTLMismatch(t *testing.T) {
	url := startNATS(t)
	b, err := openExternal(t, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	openLease(t, b, "a", 5*time.Second)
	_, err = b.OpenLease(context.Background(), bus.LeaseConfig{Key: bus.CaptureLease, Holder: "b", TTL: 10 * time.Second})
	var se *bus.SettingsError
	if !errors.As(err, &se) || se.Settings()[0] != "ttl" {
		t.Fatalf("OpenLease with another TTL = %v, want a SettingsError naming ttl", err)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
