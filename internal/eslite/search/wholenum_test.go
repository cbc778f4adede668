package search

import (
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
)

func TestParseWhole(t *testing.T) {
	const lMin, lMax = math.MinInt64, math.MaxInt64
	cases := []struct {
		s        string
		lo, hi   int64
		truncate bool
		want     wholeNum
		err      error
	}{
		{"9007199254740995", lMin, lMax, true, wholeNum{n: 9007199254740995}, nil},
		{"9223372036854775807", lMin, lMax, true, wholeNum{n: lMax}, nil},
		{"-9223372036854775808", lMin, lMax, true, wholeNum{n: lMin, neg: true}, nil},
		{"9223372036854775808", lMin, lMax, true, wholeNum{}, errOutOfRange},
		{"-9223372036854775809", lMin, lMax, true, wholeNum{}, errOutOfRange},
		{"9223372036854775807.5", lMin, lMax, true, wholeNum{n: lMax, frac: true}, nil},
		{"9223372036854775807.5", lMin, lMax, false, wholeNum{}, errOutOfRange},
		{"-9223372036854775808.9", lMin, lMax, true, wholeNum{n: lMin, frac: true, neg: true}, nil},
		{"9.007199254740995e15", lMin, lMax, true, wholeNum{n: 9007199254740995}, nil},
		{"90071992547409950e-1", lMin, lMax, true, wholeNum{n: 9007199254740995}, nil},
		{"1e19", lMin, lMax, true, wholeNum{}, errOutOfRange},
		{"1e999999", lMin, lMax, true, wholeNum{}, errOutOfRange},
		{"1e-999999", lMin, lMax, true, wholeNum{frac: true}, nil},
		{"-0.5", lMin, lMax, true, wholeNum{frac: true, neg: true}, nil},
		{"+7", lMin, lMax, true, wholeNum{n: 7}, nil},
		{".5", lMin, lMax, true, wholeNum{frac: true}, nil},
		{"5.", lMin, lMax, true, wholeNum{n: 5}, nil},
		{"2147483647.5", math.MinInt32, math.MaxInt32, false, wholeNum{}, errOutOfRange},
		{"-2147483648", math.MinInt32, math.MaxInt32, false, wholeNum{n: math.MinInt32, neg: true}, nil},
		{"300", math.MinInt8, math.MaxInt8, false, wholeNum{}, errOutOfRange},
		{"", lMin, lMax, true, wholeNum{}, errNotNumber},
		{"abc", lMin, lMax, true, wholeNum{}, errNotNumber},
		{"0x10", lMin, lMax, true, wholeNum{}, errNotNumber},
		{"1_000", lMin, lMax, true, wholeNum{}, errNotNumber},
		{"Inf", lMin, lMax, true, wholeNum{}, errNotNumber},
		{"NaN", lMin, lMax, true, wholeNum{}, errNotNumber},
		{"1e", lMin, lMax, true, wholeNum{}, errNotNumber},
		{".", lMin, lMax, true, wholeNum{}, errNotNumber},
		{"1 ", lMin, lMax, true, wholeNum{}, errNotNumber},
	}
	for _, tc := range cases {
		got, err := parseWhole(tc.s, tc.lo, tc.hi, tc.truncate)
		if !errors.Is(err, tc.err) || err == nil && got != tc.want {
			t.Errorf("parseWhole(%q, %d, %d, %v) = %+v, %v; want %+v, %v", tc.s, tc.lo, tc.hi, tc.truncate, got, err, tc.want, tc.err)
		}
	}
}

// FuzzParseWhole checks parseWhole against exact rational arithmetic for
// every input of decimal shape with a modest exponent.
func FuzzParseWhole(f *testing.F) {
	for _, s := range []string{"9007199254740995", "9223372036854775807.5", "-9223372036854775808", "1e19", "-0.5", "1.25e2", "12345678901234567890123e-4", "x"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, truncate bool) {
		got, err := parseWhole(s, math.MinInt64, math.MaxInt64, truncate)
		if _, ok := splitDecimal(s); !ok {
			if !errors.Is(err, errNotNumber) {
				t.Fatalf("parseWhole(%q) = %+v, %v; want errNotNumber", s, got, err)
			}
			return
		}
		if i := strings.IndexAny(s, "eE"); i >= 0 {
			if e, perr := strconv.Atoi(s[i+1:]); perr != nil || e > 400 || e < -400 {
				return // big.Rat would build a huge number; the exact check stops here
			}
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("big.Rat refuses %q", s)
		}
		trunc := new(big.Int).Quo(r.Num(), r.Denom())
		check := r
		if truncate {
			check = new(big.Rat).SetInt(trunc)
		}
		inRange := check.Cmp(new(big.Rat).SetInt64(math.MinInt64)) >= 0 && check.Cmp(new(big.Rat).SetInt64(math.MaxInt64)) <= 0
		if !inRange {
			if !errors.Is(err, errOutOfRange) {
				t.Fatalf("parseWhole(%q, %v) = %+v, %v; want errOutOfRange", s, truncate, got, err)
			}
			return
		}
		want := wholeNum{n: trunc.Int64(), frac: !r.IsInt(), neg: r.Sign() < 0}
		if err != nil || got != want {
			t.Fatalf("parseWhole(%q, %v) = %+v, %v; want %+v", s, truncate, got, err, want)
		}
	})
}
