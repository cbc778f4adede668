package transform

import (
	"testing"
	"time"
)

func TestLogLimiterRefillsAndReportsSuppressed(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	l := newLogLimiter(2, 3, func() time.Time { return now })
	for i := range 3 {
		if ok, sup := l.allow(); !ok || sup != 0 {
			t.Fatalf("message %d: allowed=%v suppressed=%d", i, ok, sup)
		}
	}
	for range 4 {
		if ok, _ := l.allow(); ok {
			t.Fatal("message over the burst allowed")
		}
	}
	now = now.Add(500 * time.Millisecond) // one token at 2/s
	if ok, sup := l.allow(); !ok || sup != 4 {
		t.Fatalf("after refill: allowed=%v suppressed=%d, want true 4", ok, sup)
	}
	if ok, _ := l.allow(); ok {
		t.Fatal("only one token was refilled")
	}
	now = now.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.allow(); !ok {
			t.Fatalf("refill beyond the burst: message %d refused", i)
		}
	}
	if ok, sup := l.allow(); ok || sup != 0 {
		t.Fatal("tokens grew past the burst")
	}
}
