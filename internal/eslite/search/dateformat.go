package search

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// defaultDateFormatText is the format of a date field without "format".
const defaultDateFormatText = "strict_date_optional_time||epoch_millis"

// dateFormat is a compiled Elasticsearch date format: alternatives joined by "||".
// The first alternative is also used to print dates (value_as_string, key_as_string).
type dateFormat struct {
	text string
	alts []dateLayout
}

// dateLayout parses and prints one format alternative.
type dateLayout interface {
	parse(s string) (int64, bool)
	format(ms int64) string
}

func defaultDateFormat() *dateFormat {
	df, _ := compileDateFormat(defaultDateFormatText)
	return df
}

// compileDateFormat compiles "a||b||..." of named formats and Java-style patterns.
func compileDateFormat(text string) (*dateFormat, error) {
	df := &dateFormat{text: text}
	for _, part := range strings.Split(text, "||") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, errors.New("empty format")
		}
		l, err := compileLayout(part)
		if err != nil {
			return nil, err
		}
		df.alts = append(df.alts, l)
	}
	return df, nil
}

// parse returns epoch milliseconds, trying each alternative in order.
func (df *dateFormat) parse(s string) (int64, bool) {
	for _, a := range df.alts {
		if ms, ok := a.parse(s); ok {
			return ms, true
		}
	}
	return 0, false
}

func (df *dateFormat) format(ms int64) string { return df.alts[0].format(ms) }

// isEpochFirst reports whether numbers are printed as epoch values, which makes
// JSON numbers acceptable input for the format.
func (df *dateFormat) acceptsNumbers() bool {
	for _, a := range df.alts {
		if _, ok := a.(epochLayout); ok {
			return true
		}
	}
	return false
}

type epochLayout struct{ unit int64 } // 1 = millis, 1000 = seconds

func (e epochLayout) parse(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if e.unit != 1 && (n > math.MaxInt64/e.unit || n < math.MinInt64/e.unit) {
			return 0, false
		}
		return n * e.unit, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || strings.ContainsAny(s, "eEnN") {
		return 0, false
	}
	f *= float64(e.unit)
	if f > 9.2e18 || f < -9.2e18 {
		return 0, false
	}
	return int64(f), true
}

func (e epochLayout) format(ms int64) string {
	if e.unit == 1 {
		return strconv.FormatInt(ms, 10)
	}
	return strconv.FormatInt(ms/e.unit, 10)
}

// isoLayout is strict_date_optional_time: yyyy[-MM[-dd['T'HH[:mm[:ss[.S+]]]]]][zone].
type isoLayout struct{ strict bool }

func (isoLayout) format(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

func (l isoLayout) parse(s string) (int64, bool) {
	p := &datePos{s: s}
	year, ok := p.digits(4, 4)
	if !ok {
		return 0, false
	}
	month, day := 1, 1
	var hour, minute, sec, nanos int
	if p.eat('-') {
		if month, ok = p.digits(2, 2); !ok {
			return 0, false
		}
		if p.eat('-') {
			if day, ok = p.digits(2, 2); !ok {
				return 0, false
			}
			if p.eat('T') {
				if hour, ok = p.digits(2, 2); !ok {
					return 0, false
				}
				if p.eat(':') {
					if minute, ok = p.digits(2, 2); !ok {
						return 0, false
					}
					if p.eat(':') {
						if sec, ok = p.digits(2, 2); !ok {
							return 0, false
						}
						if p.eat('.') || p.eat(',') {
							if nanos, ok = p.fraction(); !ok {
								return 0, false
							}
						}
					}
				}
				off, ok := p.zone()
				if !ok {
					return 0, false
				}
				return p.done(year, month, day, hour, minute, sec, nanos, off)
			}
		}
	}
	off, ok := p.zone()
	if !ok {
		return 0, false
	}
	return p.done(year, month, day, hour, minute, sec, nanos, off)
}

// datePos is a cursor over a date string.
type datePos struct {
	s string
	i int
}

func (p *datePos) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *datePos) digits(min, max int) (int, bool) {
	start := p.i
	for p.i < len(p.s) && p.i-start < max && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	if p.i-start < min {
		return 0, false
	}
	n, err := strconv.Atoi(p.s[start:p.i])
	return n, err == nil
}

func (p *datePos) fraction() (int, bool) {
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' && p.i-start < 9 {
		p.i++
	}
	if p.i == start {
		return 0, false
	}
	frac := p.s[start:p.i] + strings.Repeat("0", 9-(p.i-start))
	n, err := strconv.Atoi(frac)
	return n, err == nil
}

// zone parses an optional Z, +HH, +HH:mm or +HHmm; offset in seconds.
func (p *datePos) zone() (int, bool) {
	if p.i >= len(p.s) {
		return 0, true
	}
	if p.eat('Z') {
		return 0, true
	}
	sign := 1
	switch {
	case p.eat('+'):
	case p.eat('-'):
		sign = -1
	default:
		return 0, false
	}
	h, ok := p.digits(2, 2)
	if !ok || h > 18 {
		return 0, false
	}
	m := 0
	if p.eat(':') {
		if m, ok = p.digits(2, 2); !ok {
			return 0, false
		}
	} else if p.i < len(p.s) {
		if m, ok = p.digits(2, 2); !ok {
			return 0, false
		}
	}
	if m > 59 {
		return 0, false
	}
	return sign * (h*3600 + m*60), true
}

func (p *datePos) done(year, month, day, hour, minute, sec, nanos, off int) (int64, bool) {
	if p.i != len(p.s) {
		return 0, false
	}
	return civilMillis(year, month, day, hour, minute, sec, nanos, off)
}

// civilMillis validates calendar fields strictly and converts them to epoch millis.
func civilMillis(year, month, day, hour, minute, sec, nanos, off int) (int64, bool) {
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, time.UTC)
	if t.Day() != day || t.Month() != time.Month(month) {
		return 0, false
	}
	return t.UnixMilli() - int64(off)*1000, true
}

// patternLayout is a Java DateTimeFormatter-style pattern such as "yyyy-MM-dd HH:mm:ss".
type patternLayout struct{ toks []patTok }

type patTok struct {
	letter byte // 0 for a literal
	width  int
	lit    string
}

var namedFormats = map[string]string{
	"date":                              "yyyy-MM-dd",
	"strict_date":                       "yyyy-MM-dd",
	"basic_date":                        "yyyyMMdd",
	"date_time":                         "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
	"strict_date_time":                  "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
	"date_time_no_millis":               "yyyy-MM-dd'T'HH:mm:ssXXX",
	"strict_date_time_no_millis":        "yyyy-MM-dd'T'HH:mm:ssXXX",
	"date_hour_minute_second":           "yyyy-MM-dd'T'HH:mm:ss",
	"strict_date_hour_minute_second":    "yyyy-MM-dd'T'HH:mm:ss",
	"date_hour_minute_second_millis":    "yyyy-MM-dd'T'HH:mm:ss.SSS",
	"strict_date_hour_minute_second_ms": "yyyy-MM-dd'T'HH:mm:ss.SSS",
	"date_hour_minute":                  "yyyy-MM-dd'T'HH:mm",
	"strict_date_hour_minute":           "yyyy-MM-dd'T'HH:mm",
	"date_hour":                         "yyyy-MM-dd'T'HH",
	"strict_date_hour":                  "yyyy-MM-dd'T'HH",
	"year_month_day":                    "yyyy-MM-dd",
	"strict_year_month_day":             "yyyy-MM-dd",
	"year_month":                        "yyyy-MM",
	"strict_year_month":                 "yyyy-MM",
	"year":                              "yyyy",
	"strict_year":                       "yyyy",
	"hour_minute_second":                "HH:mm:ss",
	"strict_hour_minute_second":         "HH:mm:ss",
	"hour_minute":                       "HH:mm",
	"strict_hour_minute":                "HH:mm",
}

func compileLayout(name string) (dateLayout, error) {
	switch name {
	case "strict_date_optional_time", "date_optional_time", "strict_date_optional_time_nanos":
		return isoLayout{}, nil
	case "epoch_millis":
		return epochLayout{unit: 1}, nil
	case "epoch_second":
		return epochLayout{unit: 1000}, nil
	}
	if p, ok := namedFormats[name]; ok {
		name = p
	}
	return compilePattern(name)
}

func compilePattern(p string) (dateLayout, error) {
	var toks []patTok
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '\'':
			end := strings.IndexByte(p[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("Pattern ends with an incomplete string literal: " + p)
			}
			lit := p[i+1 : i+1+end]
			if lit == "" {
				lit = "'"
			}
			toks = append(toks, patTok{lit: lit})
			i += end + 2
		case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			j := i
			for j < len(p) && p[j] == c {
				j++
			}
			switch c {
			case 'y', 'u', 'M', 'd', 'H', 'm', 's', 'S', 'X', 'Z', 'x':
			default:
				return nil, errors.New("Unknown pattern letter: " + string(c))
			}
			toks = append(toks, patTok{letter: c, width: j - i})
			i = j
		case c == '[' || c == ']' || c == '{' || c == '}' || c == '#':
			return nil, errors.New("Pattern includes reserved character: '" + string(c) + "'")
		default:
			toks = append(toks, patTok{lit: string(c)})
			i++
		}
	}
	if len(toks) == 0 {
		return nil, errors.New("empty pattern")
	}
	return patternLayout{toks: toks}, nil
}

func (l patternLayout) parse(s string) (int64, bool) {
	p := &datePos{s: s}
	year, month, day := 1970, 1, 1
	var hour, minute, sec, nanos, off int
	for _, t := range l.toks {
		if t.letter == 0 {
			if !strings.HasPrefix(s[p.i:], t.lit) {
				return 0, false
			}
			p.i += len(t.lit)
			continue
		}
		var ok bool
		maxw := t.width
		if maxw < 2 {
			maxw = 2
		}
		switch t.letter {
		case 'y', 'u':
			if t.width == 2 {
				year, ok = p.digits(2, 2)
				year += 2000
			} else {
				year, ok = p.digits(4, 9)
			}
		case 'M':
			month, ok = p.digits(t.width, 2)
		case 'd':
			day, ok = p.digits(t.width, 2)
		case 'H':
			hour, ok = p.digits(t.width, 2)
		case 'm':
			minute, ok = p.digits(t.width, 2)
		case 's':
			sec, ok = p.digits(t.width, 2)
		case 'S':
			nanos, ok = p.fraction()
		case 'X', 'Z', 'x':
			off, ok = p.zone()
		}
		if !ok {
			return 0, false
		}
	}
	return p.done(year, month, day, hour, minute, sec, nanos, off)
}

func (l patternLayout) format(ms int64) string {
	t := time.UnixMilli(ms).UTC()
	var b strings.Builder
	pad := func(n, w int) {
		s := strconv.Itoa(n)
		for len(s) < w {
			s = "0" + s
		}
		b.WriteString(s)
	}
	for _, tok := range l.toks {
		switch tok.letter {
		case 0:
			b.WriteString(tok.lit)
		case 'y', 'u':
			if tok.width == 2 {
				pad(t.Year()%100, 2)
			} else {
				pad(t.Year(), 4)
			}
		case 'M':
			pad(int(t.Month()), tok.width)
		case 'd':
			pad(t.Day(), tok.width)
		case 'H':
			pad(t.Hour(), tok.width)
		case 'm':
			pad(t.Minute(), tok.width)
		case 's':
			pad(t.Second(), tok.width)
		case 'S':
			frac := strconv.Itoa(t.Nanosecond()/1e6 + 1000)[1:]
			for len(frac) < tok.width {
				frac += "0"
			}
			b.WriteString(frac[:tok.width])
		case 'X', 'x':
			b.WriteString("Z")
		case 'Z':
			b.WriteString("+0000")
		}
	}
	return b.String()
}
