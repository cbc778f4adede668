package capture

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A user with REPLICATION that owns its tables, not a superuser: Preflight
// names each missing grant, then passes, and capture runs.
func TestPreflightForAUserWhoOwnsItsTables(t *testing.T) {
	e := newEnv(t)
	role := "r_" + e.cfg.Slot
	e.exec(`CREATE ROLE `+role+` LOGIN REPLICATION`, `CREATE TABLE t (id int PRIMARY KEY, v int)`, `CREATE TABLE other (id int PRIMARY KEY)`)
	t.Cleanup(func() {
		e.exec(`DROP PUBLICATION IF EXISTS `+e.cfg.Publication, `DROP OWNED BY `+role, `DROP ROLE IF EXISTS `+role)
	})
	e.cfg.URL = strings.Replace(e.url, "postgres@", role+"@", 1)
	preflight := func(want string) {
		t.Helper()
		err := Preflight(context.Background(), e.cfg, e.bus.State())
		switch {
		case want == "" && err != nil:
			t.Fatalf("Preflight = %v, want nil", err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || !isSetupError(err)):
			t.Fatalf("Preflight = %v, want a SetupError saying %q", err, want)
		}
	}
	preflight("list the tables to capture in postgres.tables")
	e.cfg.Tables = []string{"t"}
	preflight("GRANT SELECT ON public.t")
	e.exec(`GRANT SELECT ON t TO ` + role)
	preflight("does not own public.t")
	e.exec(`ALTER TABLE t OWNER TO ` + role)
	preflight("GRANT CREATE ON DATABASE")
	e.exec(`GRANT CREATE ON DATABASE ` + e.url[strings.LastIndexByte(e.url, '/')+1:strings.IndexByte(e.url, '?')] + ` TO ` + role)
	preflight("GRANT CREATE ON SCHEMA public")
	e.exec(`GRANT CREATE ON SCHEMA public TO ` + role)
	preflight("")
	e.exec(`INSERT INTO t VALUES (1, 1)`)
	e.start(e.bus.Changes()).waitStreaming(t)
	if got := e.readChanges(1, 30*time.Second); len(got) != 1 || got[0].Table != "t" {
		t.Fatalf("capture as the table owner read %+v, want the row of t", got)
	}
	e.stopped()
	e.cfg.Tables = []string{"t", "nosuch"}
	preflight("public.nosuch, which do not exist")
}
