package documents

import (
	"os"
	"sync"
	"testing"

	"github.com/walsearch/walsearch/internal/pgtest"
)

// The package's PostgreSQL cluster starts with the first test that needs
// one, so that the pure tests and fuzzing do not start servers.
var (
	clusterOnce sync.Once
	cluster     *pgtest.Cluster
	clusterErr  error
)

func requirePG(t *testing.T) *pgtest.Cluster {
	t.Helper()
	clusterOnce.Do(func() { cluster, clusterErr = pgtest.Start() })
	if clusterErr != nil {
		if os.Getenv(pgtest.RequireEnv) == "" {
			t.Skip("PostgreSQL: ", clusterErr)
		}
		t.Fatal(clusterErr)
	}
	return cluster
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		cluster.Stop()
	}
	os.Exit(code)
}
