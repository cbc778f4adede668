package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/internal/config"
)

// TestStartRefusesAnotherPartitionCount: the first start records
// nats.partitions; a process started later with another count is refused
// with what to set, before it publishes or reads anything.
func TestStartRefusesAnotherPartitionCount(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.DataDir, cfg.ScriptsDir = t.TempDir(), t.TempDir()
	cfg.Postgres.URL = "postgres://walsearch@127.0.0.1:1/none" // never reached: Start does not connect
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := func(partitions int) error {
		c := cfg
		c.NATS.Partitions = partitions
		p, err := Start(ctx, c, nil)
		if err == nil {
			p.Close()
		}
		return err
	}
	if err := start(2); err != nil {
		t.Fatal(err)
	}
	if err := start(2); err != nil {
		t.Fatalf("the same count refused: %v", err)
	}
	err := start(1)
	if !errors.Is(err, bus.ErrPartitionsMismatch) || !strings.Contains(err.Error(), "set nats.partitions to 2") {
		t.Fatalf("another count: %v, want ErrPartitionsMismatch saying to set 2", err)
	}
}
