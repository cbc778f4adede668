package search

import (
	"bytes"
	"cmp"
	"math"
	"sort"
	"strconv"
	"time"
)

// aggSpec is one named aggregation with its sub-aggregations.
type aggSpec struct {
	name, typ string
	field     string
	size      int
	ranges    []aggRange
	interval  string
	calendar  bool
	format    string
	minCount  int
	subs      []*aggSpec
}

type aggRange struct {
	key      string
	from, to *float64
}

// aggVal is one doc value of a field. A whole number (a value of an
// integer, date or boolean field) is exactly i64; num is its nearest
// float64, which past 2^53 is shared with its neighbours.
type aggVal struct {
	num   float64
	i64   int64
	isInt bool
	str   string
	isStr bool
}

// whole is the value as a whole number.
func (v aggVal) whole() int64 {
	if v.isInt {
		return v.i64
	}
	return int64(v.num)
}

// cmpNum orders two numbers, exactly when both are whole.
func cmpNum(an float64, ai int64, aInt bool, bn float64, bi int64, bInt bool) int {
	if aInt && bInt {
		return cmp.Compare(ai, bi)
	}
	switch {
	case an < bn:
		return -1
	case an > bn:
		return 1
	}
	return 0
}

// aggDoc is one matching document's values for the fields aggregations read.
type aggDoc struct{ vals map[string][]aggVal }

func parseAggs(src []byte, v *node) ([]*aggSpec, *Error) {
	if v.kind != kObject {
		return nil, parsingError(src, v.off, "Unexpected token "+v.kind.String()+" in [aggs].")
	}
	var out []*aggSpec
	for i, name := range v.keys {
		body := v.vals[i]
		if body.kind != kObject {
			return nil, parsingError(src, body.off, "Expected [START_OBJECT] under [aggs], but got a ["+body.kind.String()+"] in ["+name+"]")
		}
		a := &aggSpec{name: name, size: 10, minCount: -1}
		for j, k := range body.keys {
			def := body.vals[j]
			switch k {
			case "aggs", "aggregations":
				subs, err := parseAggs(src, def)
				if err != nil {
					return nil, err
				}
				a.subs = subs
			case "meta":
			default:
				if a.typ != "" {
					return nil, parsingError(src, body.koffs[j], "Found two aggregation type definitions in ["+name+"]: ["+a.typ+"] and ["+k+"]")
				}
				a.typ = k
				if err := a.parseBody(src, def); err != nil {
					return nil, err
				}
			}
		}
		if a.typ == "" {
			return nil, parsingError(src, body.off, "Missing definition for aggregation ["+name+"]")
		}
		out = append(out, a)
	}
	return out, nil
}

func (a *aggSpec) parseBody(src []byte, def *node) *Error {
	switch a.typ {
	case "terms", "min", "max", "avg", "sum", "value_count", "range", "date_histogram":
	default:
		return parsingError(src, def.off, "Unknown aggregation type ["+a.typ+"] did you mean [terms]?")
	}
	if def.kind != kObject {
		return parsingError(src, def.off, "Expected [START_OBJECT] under ["+a.typ+"], but got a ["+def.kind.String()+"] in ["+a.name+"]")
	}
	for i, k := range def.keys {
		v := def.vals[i]
		switch k {
		case "field":
			a.field = v.str
		case "size":
			n, ok := nodeInt(v)
			if !ok || n < 1 {
				return illegalArgument("[size] must be greater than 0. Found [" + v.str + "] in [" + a.name + "]")
			}
			a.size = int(n)
		case "format":
			a.format = v.str
		case "min_doc_count":
			n, _ := nodeInt(v)
			a.minCount = int(n)
		case "calendar_interval", "fixed_interval", "interval":
			a.interval, a.calendar = v.str, k == "calendar_interval"
		case "ranges":
			for _, r := range v.vals {
				ar := aggRange{}
				for j, rk := range r.keys {
					switch rk {
					case "key":
						ar.key = r.vals[j].str
					case "from":
						if f, ok := nodeFloat(r.vals[j]); ok {
							ar.from = &f
						}
					case "to":
						if f, ok := nodeFloat(r.vals[j]); ok {
							ar.to = &f
						}
					}
				}
				a.ranges = append(a.ranges, ar)
			}
		case "order", "shard_size", "missing", "keyed", "time_zone", "offset", "show_term_doc_count_error", "extended_bounds":
		default:
			return parsingError(src, def.koffs[i], "["+a.typ+"] unknown field ["+k+"]")
		}
	}
	if a.field == "" {
		return illegalArgument("Required one of fields [field, script], but none were specified.")
	}
	if a.typ == "date_histogram" && a.interval == "" {
		return illegalArgument("Required one of fields [fixed_interval, calendar_interval], but none were specified.")
	}
	return nil
}

func walkAggFields(aggs []*aggSpec, fn func(string)) {
	for _, a := range aggs {
		fn(a.field)
		walkAggFields(a.subs, fn)
	}
}

// computeAggs evaluates the aggregation tree over all matching documents.
func computeAggs(aggs []*aggSpec, docs []aggDoc, runs []*targetRun) ([]byte, *Error) {
	var m *Mapping
	if len(runs) > 0 {
		m = runs[0].m
	}
	var b bytes.Buffer
	if err := writeAggs(&b, aggs, docs, m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeAggs(b *bytes.Buffer, aggs []*aggSpec, docs []aggDoc, m *Mapping) *Error {
	b.WriteByte('{')
	for i, a := range aggs {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(b, a.name)
		b.WriteByte(':')
		if err := a.write(b, docs, m); err != nil {
			return err
		}
	}
	b.WriteByte('}')
	return nil
}

func (a *aggSpec) write(b *bytes.Buffer, docs []aggDoc, m *Mapping) *Error {
	f := m.lookup(a.field)
	typ := ""
	if f != nil {
		typ = f.typ
	}
	switch a.typ {
	case "min", "max", "avg", "sum", "value_count":
		var n int
		sum, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
		for _, d := range docs {
			for _, v := range d.vals[a.field] {
				n++
				sum += v.num
				lo, hi = math.Min(lo, v.num), math.Max(hi, v.num)
			}
		}
		var val *float64
		switch a.typ {
		case "min":
			if n > 0 {
				val = &lo
			}
		case "max":
			if n > 0 {
				val = &hi
			}
		case "avg":
			if n > 0 {
				avg := sum / float64(n)
				val = &avg
			}
		case "sum":
			val = &sum
		case "value_count":
			b.WriteString(`{"value":` + strconv.Itoa(n) + `}`)
			return nil
		}
		if val == nil {
			b.WriteString(`{"value":null}`)
			return nil
		}
		b.WriteString(`{"value":` + formatFloat(*val))
		if typ == typeDate {
			b.WriteString(`,"value_as_string":`)
			writeJSONString(b, a.dateFormat(f).format(int64(*val)))
		}
		b.WriteByte('}')
		return nil
	case "terms":
		return a.writeTerms(b, docs, m, f)
	case "range":
		b.WriteString(`{"buckets":[`)
		for i, r := range a.ranges {
			if i > 0 {
				b.WriteByte(',')
			}
			var sub []aggDoc
			for _, d := range docs {
				for _, v := range d.vals[a.field] {
					if (r.from == nil || v.num >= *r.from) && (r.to == nil || v.num < *r.to) {
						sub = append(sub, d)
						break
					}
				}
			}
			key := r.key
			if key == "" {
				key = rangeBound(r.from) + "-" + rangeBound(r.to)
			}
			b.WriteString(`{"key":`)
			writeJSONString(b, key)
			if r.from != nil {
				b.WriteString(`,"from":` + formatFloat(*r.from))
			}
			if r.to != nil {
				b.WriteString(`,"to":` + formatFloat(*r.to))
			}
			b.WriteString(`,"doc_count":` + strconv.Itoa(len(sub)))
			if err := a.writeSubs(b, sub, m); err != nil {
				return err
			}
			b.WriteByte('}')
		}
		b.WriteString(`]}`)
		return nil
	case "date_histogram":
		return a.writeDateHistogram(b, docs, m, f)
	}
	return illegalArgument("unsupported aggregation [" + a.typ + "]")
}

func rangeBound(f *float64) string {
	if f == nil {
		return "*"
	}
	return formatFloat(*f)
}

func (a *aggSpec) dateFormat(f *field) *dateFormat {
	if a.format != "" {
		if df, err := compileDateFormat(a.format); err == nil {
			return df
		}
	}
	if f != nil && f.dates != nil {
		return f.dates
	}
	return defaultDateFormat()
}

func (a *aggSpec) writeSubs(b *bytes.Buffer, docs []aggDoc, m *Mapping) *Error {
	for _, s := range a.subs {
		b.WriteByte(',')
		writeJSONString(b, s.name)
		b.WriteByte(':')
		if err := s.write(b, docs, m); err != nil {
			return err
		}
	}
	return nil
}

type termBucket struct {
	v    aggVal
	docs []aggDoc
}

func (a *aggSpec) writeTerms(b *bytes.Buffer, docs []aggDoc, m *Mapping, f *field) *Error {
	buckets := map[aggVal]*termBucket{}
	for _, d := range docs {
		seen := map[aggVal]bool{}
		for _, v := range d.vals[a.field] {
			if seen[v] {
				continue
			}
			seen[v] = true
			tb := buckets[v]
			if tb == nil {
				tb = &termBucket{v: v}
				buckets[v] = tb
			}
			tb.docs = append(tb.docs, d)
		}
	}
	list := make([]*termBucket, 0, len(buckets))
	for _, tb := range buckets {
		list = append(list, tb)
	}
	sort.Slice(list, func(i, j int) bool {
		if len(list[i].docs) != len(list[j].docs) {
			return len(list[i].docs) > len(list[j].docs)
		}
		if list[i].v.isStr {
			return list[i].v.str < list[j].v.str
		}
		a, b := list[i].v, list[j].v
		return cmpNum(a.num, a.i64, a.isInt, b.num, b.i64, b.isInt) < 0
	})
	other := 0
	if len(list) > a.size {
		for _, tb := range list[a.size:] {
			other += len(tb.docs)
		}
		list = list[:a.size]
	}
	b.WriteString(`{"doc_count_error_upper_bound":0,"sum_other_doc_count":` + strconv.Itoa(other) + `,"buckets":[`)
	for i, tb := range list {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"key":`)
		switch {
		case tb.v.isStr:
			writeJSONString(b, tb.v.str)
		case tb.v.isInt:
			b.WriteString(strconv.FormatInt(tb.v.i64, 10))
		case f != nil && (isIntegerType(f.typ) || f.typ == typeDate || f.typ == typeBoolean):
			b.WriteString(strconv.FormatInt(int64(tb.v.num), 10))
		default:
			b.WriteString(formatFloat(tb.v.num))
		}
		if f != nil && f.typ == typeDate {
			b.WriteString(`,"key_as_string":`)
			writeJSONString(b, a.dateFormat(f).format(tb.v.whole()))
		}
		if f != nil && f.typ == typeBoolean {
			b.WriteString(`,"key_as_string":`)
			writeJSONString(b, strconv.FormatBool(tb.v.whole() == 1))
		}
		b.WriteString(`,"doc_count":` + strconv.Itoa(len(tb.docs)))
		if err := a.writeSubs(b, tb.docs, m); err != nil {
			return err
		}
		b.WriteByte('}')
	}
	b.WriteString(`]}`)
	return nil
}

// bucketStart rounds a timestamp down to its histogram bucket.
func (a *aggSpec) bucketStart(ms int64) (int64, bool) {
	t := time.UnixMilli(ms).UTC()
	unit := a.interval
	if a.calendar {
		switch unit {
		case "minute", "1m":
			return t.Truncate(time.Minute).UnixMilli(), true
		case "hour", "1h":
			return t.Truncate(time.Hour).UnixMilli(), true
		case "day", "1d":
			return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).UnixMilli(), true
		case "week", "1w":
			r, _ := roundDate(t, 'w', false)
			return r.UnixMilli(), true
		case "month", "1M":
			return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC).UnixMilli(), true
		case "quarter", "1q":
			q := (int(t.Month())-1)/3*3 + 1
			return time.Date(t.Year(), time.Month(q), 1, 0, 0, 0, 0, time.UTC).UnixMilli(), true
		case "year", "1y":
			return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), true
		}
		return 0, false
	}
	d, ok := fixedInterval(unit)
	if !ok {
		return 0, false
	}
	return int64(math.Floor(float64(ms)/float64(d))) * d, true
}

func fixedInterval(s string) (int64, bool) {
	if len(s) < 2 {
		return 0, false
	}
	unit := map[string]int64{"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}
	for _, suf := range []string{"ms", "s", "m", "h", "d"} {
		if n, err := strconv.ParseInt(s[:len(s)-len(suf)], 10, 64); err == nil && s[len(s)-len(suf):] == suf && n > 0 {
			return n * unit[suf], true
		}
	}
	return 0, false
}

func (a *aggSpec) writeDateHistogram(b *bytes.Buffer, docs []aggDoc, m *Mapping, f *field) *Error {
	if _, ok := a.bucketStart(0); !ok {
		if a.calendar {
			return illegalArgument("The supplied interval [" + a.interval + "] could not be parsed as a calendar interval.")
		}
		return illegalArgument("failed to parse setting [date_histogram.fixedInterval] with value [" + a.interval + "] as a time value: unit is missing or unrecognized")
	}
	buckets := map[int64][]aggDoc{}
	for _, d := range docs {
		seen := map[int64]bool{}
		for _, v := range d.vals[a.field] {
			k, _ := a.bucketStart(v.whole())
			if !seen[k] {
				seen[k] = true
				buckets[k] = append(buckets[k], d)
			}
		}
	}
	keys := make([]int64, 0, len(buckets))
	for k := range buckets {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	minCount := a.minCount
	if minCount < 0 {
		minCount = 0
	}
	// With min_doc_count 0 Elasticsearch fills empty buckets between the first and last.
	if minCount == 0 && len(keys) > 1 {
		var filled []int64
		for k := keys[0]; k <= keys[len(keys)-1] && len(filled) < 100000; {
			filled = append(filled, k)
			nk, _ := a.bucketStart(a.next(k))
			if nk <= k {
				break
			}
			k = nk
		}
		keys = filled
	}
	df := a.dateFormat(f)
	b.WriteString(`{"buckets":[`)
	n := 0
	for _, k := range keys {
		sub := buckets[k]
		if len(sub) < minCount {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		b.WriteString(`{"key_as_string":`)
		writeJSONString(b, df.format(k))
		b.WriteString(`,"key":` + strconv.FormatInt(k, 10) + `,"doc_count":` + strconv.Itoa(len(sub)))
		if err := a.writeSubs(b, sub, m); err != nil {
			return err
		}
		b.WriteByte('}')
	}
	b.WriteString(`]}`)
	return nil
}

// next returns a timestamp inside the bucket after the one starting at k.
func (a *aggSpec) next(k int64) int64 {
	if a.calendar {
		t := time.UnixMilli(k).UTC()
		switch a.interval {
		case "month", "1M":
			return t.AddDate(0, 1, 0).UnixMilli()
		case "quarter", "1q":
			return t.AddDate(0, 3, 0).UnixMilli()
		case "year", "1y":
			return t.AddDate(1, 0, 0).UnixMilli()
		case "week", "1w":
			return t.AddDate(0, 0, 7).UnixMilli()
		case "day", "1d":
			return t.AddDate(0, 0, 1).UnixMilli()
		case "hour", "1h":
			return k + 3600000
		}
		return k + 60000
	}
	d, _ := fixedInterval(a.interval)
	return k + d
}
