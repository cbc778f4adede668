package capture

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/walsearch/walsearch/bus"
)

// walLayout says where the server's WAL has page headers: every page of
// pageSize bytes starts with one, and the first page of each segment with a
// longer one. No record starts or ends inside a page header.
//
// This matters to read-your-writes: when a commit record ends exactly where
// a page starts, PostgreSQL reports that end as the page's first byte (the
// commit's end LSN, a keepalive's WAL end), but pg_current_wal_insert_lsn()
// read after the commit points past the next page's header. On an idle
// server no later record moves the stream on, so a watermark at the page
// start would never reach what the client asks for.
type walLayout struct {
	pageSize    uint64 // wal_block_size
	segmentSize uint64 // wal_segment_size
	shortHeader uint64 // SizeOfXLogShortPHD
	longHeader  uint64 // SizeOfXLogLongPHD, on a segment's first page
}

// Sizes of the page header structs before alignment (XLogPageHeaderData,
// and XLogLongPageHeaderData's fields after it).
const (
	pageHeaderFields     = 20
	longPageHeaderFields = 16
)

// newWALLayout returns the layout of a server with the given
// wal_block_size, wal_segment_size and maximum data alignment (the
// server's MAXALIGN, which pads its headers).
func newWALLayout(pageSize, segmentSize, maxAlign uint64) (walLayout, error) {
	pow2 := func(n uint64) bool { return n > 0 && n&(n-1) == 0 }
	if !pow2(pageSize) || pageSize < 1024 || !pow2(segmentSize) || segmentSize < pageSize || !pow2(maxAlign) || maxAlign > 64 {
		return walLayout{}, fmt.Errorf("read wal layout: wal_block_size %d, wal_segment_size %d, max_data_alignment %d: want powers of two with a segment of whole pages",
			pageSize, segmentSize, maxAlign)
	}
	short := alignUp(pageHeaderFields, maxAlign)
	return walLayout{pageSize: pageSize, segmentSize: segmentSize,
		shortHeader: short, longHeader: alignUp(short+longPageHeaderFields, maxAlign)}, nil
}

func alignUp(n, align uint64) uint64 { return (n + align - 1) &^ (align - 1) }

// pastPageHeader returns lsn, or, when lsn is the first byte of a page, the
// first byte after that page's header. Every transaction that committed
// before lsn also committed before the result, since no record ends inside
// a header. The zero layout (unknown) and the invalid LSN 0 change nothing.
func (w walLayout) pastPageHeader(lsn bus.LSN) bus.LSN {
	p := uint64(lsn)
	switch {
	case w.pageSize == 0 || p == 0 || p%w.pageSize != 0:
		return lsn
	case p%w.segmentSize == 0:
		return lsn + bus.LSN(w.longHeader)
	default:
		return lsn + bus.LSN(w.shortHeader)
	}
}

// readWALLayout reads the server's WAL layout from its control data, which
// any role may read.
func readWALLayout(ctx context.Context, conn *pgx.Conn) (walLayout, error) {
	var page, segment, align int64
	err := conn.QueryRow(ctx, `SELECT wal_block_size, bytes_per_wal_segment, max_data_alignment FROM pg_catalog.pg_control_init()`).
		Scan(&page, &segment, &align)
	if err != nil {
		return walLayout{}, fmt.Errorf("read wal layout: %w", err)
	}
	if page <= 0 || segment <= 0 || align <= 0 {
		return walLayout{}, fmt.Errorf("read wal layout: wal_block_size %d, wal_segment_size %d, max_data_alignment %d: want positive sizes", page, segment, align)
	}
	return newWALLayout(uint64(page), uint64(segment), uint64(align))
}
