package config

import (
	"fmt"
	"slices"
	"strings"
)

// Role is one part of the pipeline a walsearch run process can run.
type Role string

// The roles. RoleAll runs every stage in one process.
const (
	RoleCapture   Role = "capture"
	RoleTransform Role = "transform"
	RoleSink      Role = "sink"
	RoleAPI       Role = "api"
	RoleAll       Role = "all"
)

// stageRoles lists the roles other than all, in pipeline order.
var stageRoles = []Role{RoleCapture, RoleTransform, RoleSink, RoleAPI}

// Roles is the set of roles one process runs.
type Roles map[Role]bool

// ParseRoles reads a comma-separated list of roles ("capture,transform",
// "api", "all"). An empty string is all.
func ParseRoles(s string) (Roles, error) {
	out := Roles{}
	for _, part := range strings.Split(s, ",") {
		r := Role(strings.ToLower(strings.TrimSpace(part)))
		switch {
		case r == "" && strings.TrimSpace(s) == "", r == RoleAll:
			for _, sr := range stageRoles {
				out[sr] = true
			}
		case slices.Contains(stageRoles, r):
			out[r] = true
		default:
			return nil, fmt.Errorf("role: want all or a comma-separated list of capture, transform, sink and api, got %q", s)
		}
	}
	return out, nil
}

// Has reports whether r is in the set.
func (rs Roles) Has(r Role) bool { return rs[r] }

// All reports whether the set holds every role: the single-process pipeline.
func (rs Roles) All() bool {
	for _, r := range stageRoles {
		if !rs[r] {
			return false
		}
	}
	return true
}

// String lists the roles in pipeline order, or "all".
func (rs Roles) String() string {
	if rs.All() {
		return string(RoleAll)
	}
	var names []string
	for _, r := range stageRoles {
		if rs[r] {
			names = append(names, string(r))
		}
	}
	return strings.Join(names, ",")
}

// Roles returns the parsed role setting (all when it does not parse;
// Validate reports that).
func (c Config) Roles() Roles {
	rs, err := ParseRoles(c.Role)
	if err != nil {
		rs, _ = ParseRoles(string(RoleAll))
	}
	return rs
}

// validateRoles checks what a split of the stages over processes needs:
// a shared NATS, and a search engine both the sink and the API reach.
func (c Config) validateRoles() error {
	rs, err := ParseRoles(c.Role)
	if err != nil {
		return err
	}
	if rs.All() {
		return nil
	}
	var errs []string
	if c.NATS.URL == "" {
		errs = append(errs, fmt.Sprintf("role %s: set nats.url to the NATS cluster every walsearch process shares; the embedded NATS server serves one process only (or run role all)", rs))
	}
	if c.Elasticsearch.URL == "" && rs.Has(RoleSink) != rs.Has(RoleAPI) {
		errs = append(errs, fmt.Sprintf("role %s: set elasticsearch.url; the embedded engine lives in one process's data_dir, so the sink and the api share it only when they run in the same process", rs))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}
