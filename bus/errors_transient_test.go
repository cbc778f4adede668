package bus_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/walsearch/walsearch/bus"
)

func TestTransientAPIErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"jetstream 503: no meta leader yet", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{"nats 503, wrapped", fmt.Errorf("look up stream X: %w", &nats.APIError{Code: 503, ErrorCode: 10008}), true},
		{"jetstream 400: a bad request lasts", &jetstream.APIError{Code: 400, ErrorCode: 10058, Description: "stream name already in use"}, false},
		{"nats 404", &nats.APIError{Code: 404, ErrorCode: 10059}, false},
		{"other", errors.New("permission denied"), false},
	} {
		if got := bus.Transient(tc.err); got != tc.want {
			t.Errorf("%s: Transient(%v) = %t, want %t", tc.name, tc.err, got, tc.want)
		}
	}
}
