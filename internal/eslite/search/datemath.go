package search

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// errDateMath reports a malformed date math expression.
var errDateMath = errors.New("invalid date math")

// resolveDate evaluates an Elasticsearch date math expression ("now-1d/d",
// "2024-01-01||+1M/d", or a plain date in df) to epoch millis. roundUp selects
// the last millisecond of a rounded unit, as gt and lte do; gte and lt round down.
func resolveDate(expr string, df *dateFormat, now time.Time, roundUp bool, loc *time.Location) (int64, error) {
	var base time.Time
	var math string
	switch {
	case strings.HasPrefix(expr, "now"):
		base, math = now.In(loc), expr[len("now"):]
	default:
		datePart, rest, has := strings.Cut(expr, "||")
		ms, ok := df.parse(datePart)
		if !ok && loc != time.UTC {
			ms, ok = parseInZone(datePart, df, loc)
		}
		if !ok {
			return 0, errDateMath
		}
		base = time.UnixMilli(ms).In(loc)
		if !has {
			return ms, nil
		}
		math = rest
	}
	t, err := applyDateMath(base, math, roundUp)
	if err != nil {
		return 0, err
	}
	return t.UnixMilli(), nil
}

// parseInZone reads a date without an explicit offset as local time in loc.
func parseInZone(s string, df *dateFormat, loc *time.Location) (int64, bool) {
	ms, ok := df.parse(s)
	if !ok {
		return 0, false
	}
	t := time.UnixMilli(ms).UTC()
	local := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc)
	return local.UnixMilli(), true
}

func applyDateMath(t time.Time, math string, roundUp bool) (time.Time, error) {
	for i := 0; i < len(math); {
		op := math[i]
		i++
		switch op {
		case '/':
			if i >= len(math) {
				return t, errDateMath
			}
			unit := math[i]
			i++
			var err error
			t, err = roundDate(t, unit, roundUp)
			if err != nil {
				return t, err
			}
		case '+', '-':
			j := i
			for j < len(math) && math[j] >= '0' && math[j] <= '9' {
				j++
			}
			n := 1
			if j > i {
				v, err := strconv.Atoi(math[i:j])
				if err != nil || v > 1_000_000 {
					return t, errDateMath
				}
				n = v
			}
			if j >= len(math) {
				return t, errDateMath
			}
			if op == '-' {
				n = -n
			}
			unit := math[j]
			i = j + 1
			switch unit {
			case 'y':
				t = t.AddDate(n, 0, 0)
			case 'M':
				t = t.AddDate(0, n, 0)
			case 'w':
				t = t.AddDate(0, 0, 7*n)
			case 'd':
				t = t.AddDate(0, 0, n)
			case 'h', 'H':
				t = t.Add(time.Duration(n) * time.Hour)
			case 'm':
				t = t.Add(time.Duration(n) * time.Minute)
			case 's':
				t = t.Add(time.Duration(n) * time.Second)
			default:
				return t, errDateMath
			}
		default:
			return t, errDateMath
		}
	}
	return t, nil
}

func roundDate(t time.Time, unit byte, roundUp bool) (time.Time, error) {
	loc := t.Location()
	var start, next time.Time
	switch unit {
	case 'y':
		start = time.Date(t.Year(), 1, 1, 0, 0, 0, 0, loc)
		next = start.AddDate(1, 0, 0)
	case 'M':
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
		next = start.AddDate(0, 1, 0)
	case 'w':
		wd := (int(t.Weekday()) + 6) % 7 // Monday first
		start = time.Date(t.Year(), t.Month(), t.Day()-wd, 0, 0, 0, 0, loc)
		next = start.AddDate(0, 0, 7)
	case 'd':
		start = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
		next = start.AddDate(0, 0, 1)
	case 'h', 'H':
		start = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, loc)
		next = start.Add(time.Hour)
	case 'm':
		start = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, loc)
		next = start.Add(time.Minute)
	case 's':
		start = t.Truncate(time.Second)
		next = start.Add(time.Second)
	default:
		return t, errDateMath
	}
	if roundUp {
		return next.Add(-time.Millisecond), nil
	}
	return start, nil
}
