package transform

import (
	"maps"
	"time"
)

// Hot reload polls the scripts folder instead of using file-system
// notifications: polling sees new table folders without adding watches,
// works on network and container-mounted volumes (where editors and config
// maps replace files through renames and symlink swaps), and costs a few
// small reads every interval.

// watch reloads the scripts every ReloadInterval until Close.
func (s *Scripts) watch() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Reload()
		}
	}
}

// Reload picks up added, changed and removed scripts now. A script that does
// not load is rejected with an error log line, and the version already
// running (or Identity, for a new script) keeps serving its table. It reports
// whether anything changed.
func (s *Scripts) Reload() bool {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	files, err := discover(s.cfg.Dir)
	if err != nil {
		s.log.Error("scripts not reloaded", "dir", s.cfg.Dir, "error", err)
		return false
	}
	old := *s.current.Load()
	next := make(map[string]*script, len(files))
	seen := make(map[string]bool, len(files))
	changed := false
	for _, f := range files {
		name := f.schema + "." + f.table
		seen[name] = true
		prev := old[name]
		src, sum, err := readScript(f.path)
		if err != nil {
			// Removed or unreadable between listing and reading: next round decides.
			if prev != nil {
				next[name] = prev
			}
			continue
		}
		if prev != nil && prev.sum == sum {
			next[name] = prev
			continue
		}
		if bad, ok := s.rejected[name]; ok && bad == sum {
			if prev != nil {
				next[name] = prev
			}
			continue
		}
		sc, err := s.compile(f, src, sum)
		if err != nil {
			s.rejected[name] = sum
			if prev != nil {
				next[name] = prev
				s.log.Error("script rejected; the previous version keeps running", "table", name, "error", err)
			} else {
				s.log.Error("script rejected; the table is indexed as is until it loads", "table", name, "error", err)
			}
			continue
		}
		delete(s.rejected, name)
		next[name] = sc
		changed = true
		if prev != nil {
			s.log.Info("script reloaded", "table", name, "script", f.path)
		} else {
			s.log.Info("script loaded", "table", name, "script", f.path)
		}
	}
	for name := range old {
		if !seen[name] {
			changed = true
			delete(s.rejected, name)
			s.log.Info("script removed; the table is indexed as is", "table", name)
		}
	}
	for name := range s.rejected {
		if !seen[name] {
			delete(s.rejected, name)
		}
	}
	if changed || !maps.Equal(old, next) {
		s.current.Store(&next)
	}
	return changed
}
