package capture

import (
	"testing"

	"github.com/walsearch/walsearch/bus"
)

func mustLayout(t testing.TB, page, segment, align uint64) walLayout {
	t.Helper()
	w, err := newWALLayout(page, segment, align)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestPastPageHeader(t *testing.T) {
	std := mustLayout(t, 8192, 16<<20, 8)
	small := mustLayout(t, 8192, 1<<20, 8)
	align4 := mustLayout(t, 16384, 64<<20, 4)
	for _, tc := range []struct {
		name   string
		w      walLayout
		in     string
		want   string
		header uint64
	}{
		{"page start", std, "0/192E000", "0/192E018", 24},
		{"segment start", std, "0/1000000", "0/1000028", 40},
		{"segment start at a new xlogid", std, "1/0", "1/28", 40},
		{"after a header", std, "0/192E018", "0/192E018", 0},
		{"mid page", std, "0/192DFF8", "0/192DFF8", 0},
		{"one past a page start", std, "0/192E001", "0/192E001", 0},
		{"invalid LSN", std, "0/0", "0/0", 0},
		{"page start, 1 MiB segments", small, "0/102000", "0/102018", 24},
		{"segment start, 1 MiB segments", small, "0/100000", "0/100028", 40},
		{"8 KiB into 16 KiB pages", align4, "0/2000", "0/2000", 0},
		{"page start, 4-byte alignment", align4, "0/4000", "0/4014", 20},
		{"segment start, 4-byte alignment", align4, "0/4000000", "0/4000024", 36},
		{"unknown layout", walLayout{}, "0/192E000", "0/192E000", 0},
	} {
		in, _ := bus.ParseLSN(tc.in)
		want, _ := bus.ParseLSN(tc.want)
		if got := tc.w.pastPageHeader(in); got != want || uint64(got-in) != tc.header {
			t.Errorf("%s: pastPageHeader(%s) = %s, want %s", tc.name, in, got, want)
		}
	}
}

func TestNewWALLayoutRejects(t *testing.T) {
	for _, tc := range [][3]uint64{
		{0, 16 << 20, 8},
		{8000, 16 << 20, 8},
		{512, 16 << 20, 8},
		{8192, 4096, 8},
		{8192, 3 << 20, 8},
		{8192, 16 << 20, 0},
		{8192, 16 << 20, 6},
	} {
		if _, err := newWALLayout(tc[0], tc[1], tc[2]); err == nil {
			t.Errorf("newWALLayout(%d, %d, %d) accepted", tc[0], tc[1], tc[2])
		}
	}
}

// positions models how PostgreSQL places WAL: a position counted in bytes usable
// for records (its CurrBytePos) becomes an LSN in two ways, as where the
// next record starts (what pg_current_wal_insert_lsn() shows) and as where
// the last one ended (a commit's end LSN, a keepalive's WAL end). They
// differ only at a page start, which the end keeps and the start skips.
func (w walLayout) positions(bytePos uint64) (start, end uint64) {
	usablePage := w.pageSize - w.shortHeader
	usableSegment := w.segmentSize/w.pageSize*usablePage - (w.longHeader - w.shortHeader)
	base := bytePos / usableSegment * w.segmentSize
	left := bytePos % usableSegment
	first := w.pageSize - w.longHeader
	if left < first {
		start = base + w.longHeader + left
		if left == 0 {
			return start, base
		}
		return start, start
	}
	left -= first
	start = base + w.pageSize + left/usablePage*w.pageSize + w.shortHeader + left%usablePage
	if left%usablePage == 0 {
		return start, start - w.shortHeader
	}
	return start, start
}

// FuzzPastPageHeader checks, for any WAL position, that the insert
// position read after a commit ending there is reached by moving the
// commit's end past a page header, and that no record can end in the bytes
// skipped (so no watermark claims a commit it has not seen).
func FuzzPastPageHeader(f *testing.F) {
	layouts := []walLayout{
		mustLayout(f, 8192, 16<<20, 8),
		mustLayout(f, 8192, 1<<20, 8),
		mustLayout(f, 1024, 1<<20, 8),
		mustLayout(f, 32768, 1<<30, 8),
		mustLayout(f, 16384, 64<<20, 4),
	}
	// Ends of the first and second page and of the first segment of the
	// default layout, and positions either side.
	for _, seed := range []uint64{1, 8, 8144, 8152, 8160, 8152 + 8168, 2048*8168 - 16, 2048*8168 - 8, 1 << 40} {
		for i := range layouts {
			f.Add(seed, uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, bytePos uint64, which uint8) {
		w := layouts[int(which)%len(layouts)]
		bytePos %= 1 << 50
		if bytePos == 0 {
			return // LSN 0 is invalid and stays so
		}
		start, end := w.positions(bytePos)
		if got := w.pastPageHeader(bus.LSN(end)); uint64(got) != start {
			t.Fatalf("%+v: byte position %d: pastPageHeader(%s) = %s, insert position %s", w, bytePos, bus.LSN(end), got, bus.LSN(start))
		}
		// A record ending at end, seen from any page start: end never lies
		// inside a header, so it is either before the page or after the
		// header pastPageHeader skips.
		page := end / w.pageSize * w.pageSize
		if skipped := uint64(w.pastPageHeader(bus.LSN(page))); page != 0 && end > page && end <= skipped {
			t.Fatalf("%+v: a record ends at %s, inside the header skipped from %s to %s", w, bus.LSN(end), bus.LSN(page), bus.LSN(skipped))
		}
	})
}
