package capture

import (
	"errors"
	"testing"
)

func TestAckerOnlyReturnsFlushedPositions(t *testing.T) {
	pub := &faultyPublisher{next: nopPublisher{}}
	var track tracker
	a := newAcker(pub, &track, 100)

	// Nothing new: no flush needed, the confirmed position stays.
	if lsn, err := a.flush(t.Context()); err != nil || lsn != 100 {
		t.Fatalf("flush with nothing received = %v, %v", lsn, err)
	}
	a.committed(200)
	a.committed(150) // never backwards
	if got := track.status("s", "p").ReceivedLSN; got != 200 {
		t.Fatalf("received = %s, want 0/C8", got)
	}
	pub.flushErr = errInjected
	lsn, err := a.flush(t.Context())
	var pe *PublishError
	if !errors.As(err, &pe) || lsn != 100 {
		t.Fatalf("failed flush = %v, %v; want the old position and a PublishError", lsn, err)
	}
	pub.flushErr = nil
	if lsn, err := a.flush(t.Context()); err != nil || lsn != 200 {
		t.Fatalf("flush = %v, %v; want 0/C8", lsn, err)
	}
	a.idle(300)
	if got := track.status("s", "p").ReceivedLSN; got != 300 {
		t.Fatalf("idle keepalive: received = %s", got)
	}
}
