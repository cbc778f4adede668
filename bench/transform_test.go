// Package bench holds benchmarks that span packages. Nothing here asserts;
// run with go test -bench . ./bench/.
package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/transform"
)

// userChanges returns n decoded update events of public.users, shaped like
// a typical row.
func userChanges(b *testing.B, n int) []*bus.Change {
	b.Helper()
	out := make([]*bus.Change, n)
	for i := range out {
		raw := fmt.Sprintf(`{"v":1,"op":"update","schema":"public","table":"users","lsn":"1/%X","pos":0,
		  "key":[{"name":"id","value":%d}],
		  "row":{"id":%d,"first_name":"Ann","last_name":"Lee","email":"ann%d@example.com","password_hash":"$2a$10$abcdefghijklmnopqrstuv",
		         "active":true,"score":12.5,"created_at":"2024-05-01T10:00:00.123456Z","tags":["a","b"],
		         "prefs":{"lang":"en","theme":{"dark":true}},"bio":"Lorem ipsum dolor sit amet, consectetur adipiscing elit."}}`, i, i, i, i)
		var c bus.Change
		if err := bus.Decode([]byte(raw), &c); err != nil {
			b.Fatal(err)
		}
		out[i] = &c
	}
	return out
}

// mappers builds the three configurations compared: no script (Identity),
// a script that returns the row unchanged, and the PII-masking example.
func mappers(b *testing.B) map[string]func(workers int) transform.Mapper {
	identityDir := b.TempDir()
	if err := os.MkdirAll(filepath.Join(identityDir, "users"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(identityDir, "users", "transform.js"), []byte("function transform(doc) { return doc; }"), 0o644); err != nil {
		b.Fatal(err)
	}
	load := func(dir string) func(int) transform.Mapper {
		return func(workers int) transform.Mapper {
			cfg := transform.DefaultScriptConfig()
			cfg.Dir, cfg.ReloadInterval, cfg.Workers = dir, 0, workers
			s, err := transform.LoadScripts(cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}
	}
	return map[string]func(int) transform.Mapper{
		"no-script":       func(int) transform.Mapper { return transform.Identity{} },
		"identity-script": load(identityDir),
		"users-example":   load(filepath.Join("..", "scripts", "examples")),
	}
}

// BenchmarkTransformMap reports events/s through Mapper.Map on one goroutine
// and on GOMAXPROCS goroutines (as the stage's workers run it).
func BenchmarkTransformMap(b *testing.B) {
	changes := userChanges(b, 1024)
	for _, name := range []string{"no-script", "identity-script", "users-example"} {
		newMapper := mappers(b)[name]
		b.Run(name+"/serial", func(b *testing.B) {
			m := newMapper(1)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := m.Map(changes[i%len(changes)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			m := newMapper(runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := m.Map(changes[i%len(changes)]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkTransformRuntimeMemory reports the live heap held per worker
// runtime: each load of a one-script folder compiles the program and keeps
// one warmed-up runtime in its pool, which is what every transform worker
// holds per scripted table.
func BenchmarkTransformRuntimeMemory(b *testing.B) {
	dir := filepath.Join("..", "scripts", "examples")
	changes := userChanges(b, 1)
	const n = 50
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		held := make([]*transform.Scripts, n)
		for i := range held {
			cfg := transform.DefaultScriptConfig()
			cfg.Dir, cfg.ReloadInterval, cfg.Workers = dir, 0, 1
			s, err := transform.LoadScripts(cfg)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Map(changes[0]); err != nil {
				b.Fatal(err)
			}
			held[i] = s
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n/4, "heap-bytes/runtime")
		for _, s := range held {
			s.Close()
		}
		runtime.KeepAlive(held)
	}
}
