package sink

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestCallErrorWraps: a failed call keeps its cause for errors.Is (reindex
// wrapped it with %v), and a refusal says the status and body.
func TestCallErrorWraps(t *testing.T) {
	if err := callError("count users_v2", 0, nil, context.DeadlineExceeded); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v does not wrap its cause", err)
	}
	err := callError("count users_v2", 503, []byte(`{"error":"unavailable"}`), nil)
	if !strings.Contains(err.Error(), "count users_v2: HTTP 503") || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("refusal: %v", err)
	}
}
