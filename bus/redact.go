package bus

import (
	"net/url"
	"strings"
)

// RedactURL returns raw, a PostgreSQL, Elasticsearch or NATS URL, fit for
// logs and errors: without its password and query (which may hold one),
// and with a user name that has no password shown as *** since it may be a
// token. Something that does not parse as a URL is not shown at all; an
// empty one stays empty.
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return "(unparsable url)"
	}
	u.RawQuery, u.ForceQuery = "", false
	if u.User == nil {
		return u.String()
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.User(u.User.Username())
		return u.String()
	}
	u.User = nil
	scheme, rest, _ := strings.Cut(u.String(), "://")
	return scheme + "://***@" + rest
}
