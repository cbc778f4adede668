package documents

import "testing"

func TestSnapshotSees(t *testing.T) {
	cases := []struct {
		snap string
		xid  uint32
		want bool
	}{
		{"100:105:100,103", 99, true},
		{"100:105:100,103", 100, false},
		{"100:105:100,103", 101, true},
		{"100:105:100,103", 103, false},
		{"100:105:100,103", 104, true},
		{"100:105:100,103", 105, false},
		{"100:105:", 200, false},
		// 64-bit ids across an epoch: the log gives the low 32 bits.
		{"4294967290:4294967300:4294967298", 5, false}, // xmax's own epoch, past xmax
		{"4294967290:4294967300:4294967298", 3, true},  // 2^32+3, below xmax
		{"4294967290:4294967300:4294967298", 0xFFFFFFFA, true},
		{"4294967290:4294967300:4294967298", 2, false}, // 2^32+2 was running
	}
	for _, c := range cases {
		s, err := parseSnapshot(c.snap)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.sees(c.xid); got != c.want {
			t.Errorf("snapshot %s sees %d: %v, want %v", c.snap, c.xid, got, c.want)
		}
	}
	for _, bad := range []string{"", "1:2", "1:x:", "1:2:a"} {
		if _, err := parseSnapshot(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}
