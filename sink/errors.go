package sink

import (
	"errors"
	"fmt"
)

// ErrReindexRunning is returned when a reindex of the index is already under way.
var ErrReindexRunning = errors.New("a reindex of this index is already running")

// ErrCountMismatch is returned when a new index does not hold as many
// documents as the one it replaces; the alias is left unchanged.
var ErrCountMismatch = errors.New("document counts differ between the old and the new index")

// IndexCreateError reports an index Elasticsearch refused to create for a
// reason that retrying will not cure (usually configured settings or
// mappings). The sink keeps retrying, so that nothing is lost, until the
// configuration is fixed.
type IndexCreateError struct {
	Index  string
	Status int
	Reason string
}

func (e *IndexCreateError) Error() string {
	return "create index " + e.Index + ": refused, check indices.<table>.settings and .mappings: " + e.Reason
}

// callError describes a failed call to the search engine: the transport's
// error, wrapped, or the status and body the engine refused it with.
func callError(what string, status int, body []byte, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: HTTP %d: %s", what, status, truncate(body, 200))
}
