package sink

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
)

// maxAliasBytes leaves room under Elasticsearch's 255-byte limit for the
// versioned index suffix ("_v" and up to 10 digits).
const maxAliasBytes = 240

// versionedSuffix matches the suffix of a versioned index name.
var versionedSuffix = regexp.MustCompile(`_v[0-9]+$`)

// AliasName is the Elasticsearch name (an alias) the documents of index are
// written to and searched through. index is the name transform gives a
// document ("users" for public.users, "schema.table" otherwise, or whatever a
// script routes to).
//
// A name Elasticsearch accepts as it is — lower case, none of
// \ / * ? " < > | , # : or space, not starting with _ - +, not "." or "..",
// at most 240 bytes, and not ending like a versioned index (_v<digits>) — is
// used unchanged. Any other name is lower-cased, every character outside
// [a-z0-9._-] becomes "_", and a hyphen and eight hex digits of a hash of the
// original name are appended: "Users" becomes "users-<hash>", which can never
// be the name of another table, so two tables are never merged into one index.
func AliasName(index string) string {
	if usableAsIs(index) {
		return index
	}
	var b strings.Builder
	for _, r := range strings.ToLower(index) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	base := strings.TrimLeft(b.String(), "_-+.")
	if base == "" {
		base = "index"
	}
	if len(base) > maxAliasBytes-9 {
		base = base[:maxAliasBytes-9]
	}
	h := fnv.New32a()
	h.Write([]byte(index))
	return fmt.Sprintf("%s-%08x", base, h.Sum32())
}

func usableAsIs(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > maxAliasBytes {
		return false
	}
	if strings.ContainsRune("_-+", rune(name[0])) || versionedSuffix.MatchString(name) {
		return false
	}
	for _, r := range name {
		if r >= 'A' && r <= 'Z' || strings.ContainsRune("\\/*?\"<>|, #:", r) || r > 0x7e || r < 0x20 {
			return false
		}
	}
	return true
}

// versionedName is the concrete index behind alias at generation n.
func versionedName(alias string, n int) string { return alias + "_v" + strconv.Itoa(n) }

// generation parses the generation of a versioned index of alias, or 0.
func generation(alias, index string) int {
	rest, ok := strings.CutPrefix(index, alias+"_v")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 1 {
		return 0
	}
	return n
}
