package eslite

import (
	"strconv"

	"github.com/walsearch/walsearch/internal/eslite/search"
)

// Elasticsearch's sentinel versions and sequence numbers.
const (
	versionMatchAny     int64 = -3 // Versions.MATCH_ANY: no version given
	versionNotFound     int64 = -1 // Versions.NOT_FOUND: no document, no live tombstone
	versionMatchDeleted int64 = -4 // Versions.MATCH_DELETED: create
	seqNoUnassigned     int64 = -2 // SequenceNumbers.UNASSIGNED_SEQ_NO
	primaryTerm         int64 = 1  // eslite never changes primaries
)

// versionType is Elasticsearch's VersionType.
type versionType int

const (
	vtInternal versionType = iota
	vtExternal
	vtExternalGTE
)

func parseVersionType(s string) (versionType, *search.Error) {
	switch s {
	case "", "internal":
		return vtInternal, nil
	case "external", "external_gt":
		return vtExternal, nil
	case "external_gte":
		return vtExternalGTE, nil
	}
	return 0, errIllegalArgument("No version type match [%s]", s)
}

func (vt versionType) name() string {
	switch vt {
	case vtExternal:
		return "EXTERNAL"
	case vtExternalGTE:
		return "EXTERNAL_GTE"
	}
	return "INTERNAL"
}

// validForWrites is VersionType.validateVersionForWrites.
func (vt versionType) validForWrites(v int64) bool {
	if vt == vtInternal {
		return v > 0 || v == versionMatchAny || v == versionMatchDeleted
	}
	return v >= 0
}

// conflict is VersionType.isVersionConflictForWrites plus its explanation.
// current is the stored version (or a live tombstone's), versionNotFound
// when there is neither.
func (vt versionType) conflict(current, expected int64, deleted bool) (string, bool) {
	switch vt {
	case vtExternal:
		if current == versionNotFound {
			return "", false
		}
		if expected == versionMatchAny || current >= expected {
			return "current version [" + itoa(current) + "] is higher or equal to the one provided [" + itoa(expected) + "]", true
		}
	case vtExternalGTE:
		if current == versionNotFound {
			return "", false
		}
		if expected == versionMatchAny || current > expected {
			return "current version [" + itoa(current) + "] is higher than the one provided [" + itoa(expected) + "]", true
		}
	default:
		switch {
		case expected == versionMatchAny:
			return "", false
		case expected == versionMatchDeleted:
			if !deleted {
				return "document already exists (current version [" + itoa(current) + "])", true
			}
		case current != expected:
			if current == versionNotFound {
				return "document does not exist (expected version [" + itoa(expected) + "])", true
			}
			return "current version [" + itoa(current) + "] is different than the one provided [" + itoa(expected) + "]", true
		}
	}
	return "", false
}

// next is VersionType.updateVersion.
func (vt versionType) next(current, expected int64) int64 {
	if vt == vtInternal {
		if current == versionNotFound {
			return 1
		}
		return current + 1
	}
	return expected
}

// casProblems is DocWriteRequest.validateSeqNoBasedCASParams: the
// validation errors for a write's version, version_type, if_seq_no and
// if_primary_term.
func casProblems(version int64, vt versionType, ifSeqNo, ifPrimaryTerm int64) []string {
	var out []string
	if !vt.validForWrites(version) {
		out = append(out, "illegal version value ["+itoa(version)+"] for version type ["+vt.name()+"]")
	}
	if vt == vtInternal && version != versionMatchAny && version != versionMatchDeleted {
		out = append(out, "internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and `if_primary_term` instead")
	}
	if ifSeqNo != seqNoUnassigned && (vt != vtInternal || version != versionMatchAny) {
		out = append(out, "compare and write operations can not use versioning")
	}
	if ifPrimaryTerm == 0 && ifSeqNo != seqNoUnassigned {
		out = append(out, "ifSeqNo is set, but primary term is [0]")
	}
	if ifPrimaryTerm != 0 && ifSeqNo == seqNoUnassigned {
		out = append(out, "ifSeqNo is unassigned, but primary term is ["+itoa(ifPrimaryTerm)+"]")
	}
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
