package storetest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
	"github.com/odometer-dev/odometer/storetest"
)

// The meters' property test: random events with metadata, random meters
// of every op over them (grouped, filtered), and a reference computed
// directly from the event list, with no code of the package under test.

// metaOps are the ops a meter may have.
var metaOps = []odometer.Op{
	odometer.OpSum, odometer.OpAvg, odometer.OpMin, odometer.OpMax, odometer.OpCount, odometer.OpFirst, odometer.OpLast,
	odometer.OpUnique, odometer.OpP50, odometer.OpP90, odometer.OpP95, odometer.OpP99,
}

// quantilePct is the percentile of each quantile op.
var quantilePct = map[odometer.Op]int64{odometer.OpP50: 50, odometer.OpP90: 90, odometer.OpP95: 95, odometer.OpP99: 99}

// metaTypes are the event types of the meters' test.
var metaTypes = []string{"llm.request", "job.run"}

// jv is one generated metadata value: the JSON text written into the
// event, and what the reference knows of it by construction.
type jv struct {
	raw   string // as written in the event's metadata
	canon string // its canonical JSON text (strings without HTML escaping)
	// num is the decimal text of a numeric value (a JSON number, or a
	// string holding one); "" if it is not numeric.
	num      string
	tooLarge bool // numeric in syntax, beyond ±1e300
	scalar   bool // a string, number or boolean
}

// canonString is a string's JSON text with no HTML escaping.
func canonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// rawString writes s in one of the ways a client may: HTML-escaped (as Go
// does), plain, or with every non-ASCII rune escaped as \uXXXX.
func rawString(rng *rand.Rand, s string) string {
	switch rng.IntN(3) {
	case 0:
		b, _ := json.Marshal(s)
		return string(b)
	case 1:
		return canonString(s)
	default:
		var b strings.Builder
		for _, r := range canonString(s) {
			if r < utf8.RuneSelf {
				b.WriteRune(r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		}
		return b.String()
	}
}

func strV(rng *rand.Rand, s string) jv {
	return jv{raw: rawString(rng, s), canon: canonString(s), scalar: true}
}

// numStrV is a string holding the number text.
func numStrV(rng *rand.Rand, text string) jv {
	v := strV(rng, text)
	v.num = text
	return v
}

func numV(text string) jv { return jv{raw: text, canon: text, num: text, scalar: true} }

func litV(text string, scalar bool) jv { return jv{raw: text, canon: text, scalar: scalar} }

var metaModels = []string{"gpt-4o", "claude-3.5", "<&>", "mistral-ü", "模型", ""}

// tokensV draws a tokens value: numbers with and without decimals and
// exponents, strings holding numbers, and values that are no numbers.
func tokensV(rng *rand.Rand) jv {
	switch rng.IntN(16) {
	case 0, 1:
		return numV(strconv.Itoa(rng.IntN(5000)))
	case 2:
		return numV([]string{"0.1", "0.2", "0.3", "0.01", "0.7"}[rng.IntN(5)])
	case 3:
		return numV(fmt.Sprintf("%d.%02d", rng.IntN(200)-100, rng.IntN(100)))
	case 4:
		return numV([]string{"1e2", "2.5E-3", "1.5e+3", "-4e0", "12.50", "0.0"}[rng.IntN(6)])
	case 5:
		return numStrV(rng, []string{"12.5", "0.1", "-7", "1e3", "3.25", "0.2"}[rng.IntN(6)])
	case 6:
		return numV([]string{"1e300", "-1e300", "1e-300", "123456789012345678901234567890.123456789"}[rng.IntN(4)])
	case 7:
		v := numV([]string{"1e301", "-2e305"}[rng.IntN(2)])
		v.tooLarge = true
		return v
	case 8:
		v := numStrV(rng, "5e400")
		v.tooLarge = true
		return v
	case 9:
		return strV(rng, []string{"abc", "", "12,5", " 1", "NaN", "0x10", "1e", "ü"}[rng.IntN(8)])
	case 10:
		x := []string{"true", "false", "null", `{"n":1}`, "[1,2]"}[rng.IntN(5)]
		return litV(x, x == "true" || x == "false")
	case 11:
		return jv{} // missing
	default:
		return numV(strconv.Itoa(rng.IntN(100) + 1))
	}
}

// latencyV draws a positive latency across magnitudes, sometimes missing
// or not a number.
func latencyV(rng *rand.Rand) jv {
	switch rng.IntN(12) {
	case 0:
		return jv{}
	case 1:
		return strV(rng, "slow")
	case 2:
		return numStrV(rng, strconv.FormatFloat(math.Pow(10, rng.Float64()*6-2), 'f', 3, 64))
	default:
		x := math.Pow(10, rng.Float64()*12-4) // 1e-4 to 1e8
		switch rng.IntN(3) {
		case 0:
			return numV(strconv.FormatFloat(x, 'g', 6, 64))
		case 1:
			return numV(strconv.FormatFloat(x, 'g', -1, 64))
		default:
			return numV(strconv.FormatFloat(x, 'e', 3, 64))
		}
	}
}

// userV draws a user id: strings, numbers (7 and 7.0 differ), booleans.
func userV(rng *rand.Rand) jv {
	switch rng.IntN(10) {
	case 0:
		return numV([]string{"7", "7.0", "42", "-1"}[rng.IntN(4)])
	case 1:
		return litV([]string{"true", "false"}[rng.IntN(2)], true)
	case 2:
		return jv{}
	case 3:
		return litV([]string{"null", `{"id":"u_1"}`}[rng.IntN(2)], false)
	case 4:
		return strV(rng, []string{"é", "<u&1>", "u_\"q\""}[rng.IntN(3)])
	default:
		return strV(rng, fmt.Sprintf("u_%d", rng.IntN(25)))
	}
}

// metaEvent is a generated event and its metadata values by path.
type metaEvent struct {
	odometer.Event
	md map[string]jv // by dotted path; absent when missing
}

// metaDraw draws the metadata of one event.
func metaDraw(rng *rand.Rand) (string, map[string]jv) {
	md := map[string]jv{}
	if rng.IntN(10) > 0 {
		md["model"] = strV(rng, metaModels[rng.IntN(len(metaModels))])
	}
	md["tokens"] = tokensV(rng)
	md["userId"] = userV(rng)
	if rng.IntN(8) > 0 {
		md["status"] = strV(rng, []string{"ok", "ok", "err"}[rng.IntN(3)])
	}
	md["latency"] = latencyV(rng)
	if rng.IntN(3) > 0 {
		md["geo.region"] = strV(rng, []string{"eu", "us", "ap"}[rng.IntN(3)])
	}
	var b strings.Builder
	b.WriteByte('{')
	n := 0
	for _, k := range []string{"model", "tokens", "userId", "status", "latency"} {
		v, ok := md[k]
		if !ok || v.raw == "" {
			delete(md, k)
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		fmt.Fprintf(&b, "%q:%s", k, v.raw)
	}
	if v, ok := md["geo.region"]; ok {
		if n > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"geo":{"region":%s}`, v.raw)
	}
	b.WriteByte('}')
	return b.String(), md
}

// metaEvents draws n events over 2024 to 2026 with propEvents' times and
// values, of the meters' event types, with metadata.
func metaEvents(rng *rand.Rand, n int, loc *time.Location, prefix string) []metaEvent {
	base := propEvents(rng, n, loc, prefix)
	out := make([]metaEvent, len(base))
	for i, e := range base {
		e.EventType = metaTypes[rng.IntN(len(metaTypes))]
		raw, md := metaDraw(rng)
		e.Metadata = []byte(raw)
		out[i] = metaEvent{Event: e, md: md}
	}
	return out
}

// refMeter is a meter as the reference sees it.
type refMeter struct {
	name      string
	eventType string
	op        odometer.Op
	value     string   // dotted path, "" for the event's value
	groupBy   []string // dotted paths
	groupKeys []string // the names of the output's group object
	filter    map[string]map[string]bool
}

// meterJSON is a meter's configuration.
type meterJSON struct {
	EventType string                       `json:"eventType"`
	Op        odometer.Op                  `json:"op"`
	Value     string                       `json:"value,omitempty"`
	GroupBy   []string                     `json:"groupBy,omitempty"`
	Filter    map[string][]json.RawMessage `json:"filter,omitempty"`
}

// metaMeters draws a configuration: each event type's own op, and
// meters of every op at least once, with random values, groupBy and
// filters.
func metaMeters(tb testing.TB, rng *rand.Rand, zone string) (*odometer.Config, []*refMeter) {
	tb.Helper()
	var refs []*refMeter
	events := map[string]map[string]string{}
	for _, typ := range metaTypes {
		op := metaOps[rng.IntN(len(metaOps))]
		events[typ] = map[string]string{"op": string(op)}
		refs = append(refs, &refMeter{name: typ, eventType: typ, op: op})
	}
	meters := map[string]meterJSON{}
	var order []string
	ops := append([]odometer.Op(nil), metaOps...)
	for i := 0; i < 6; i++ {
		ops = append(ops, metaOps[rng.IntN(len(metaOps))])
	}
	path := func(p string) string {
		if rng.IntN(2) == 0 {
			return "$." + p
		}
		return p
	}
	for i, op := range ops {
		name := fmt.Sprintf("m.%s.%d", op, i)
		m := meterJSON{EventType: metaTypes[rng.IntN(len(metaTypes))], Op: op}
		r := &refMeter{name: name, eventType: m.EventType, op: op, filter: map[string]map[string]bool{}}
		switch {
		case op == odometer.OpCount:
		case op == odometer.OpUnique:
			r.value = []string{"userId", "model", "tokens", "", "geo.region"}[rng.IntN(5)]
		default:
			r.value = []string{"tokens", "tokens", "latency", ""}[rng.IntN(4)]
		}
		if r.value != "" {
			m.Value = "$." + r.value
		}
		dims := []string{"model", "status", "userId", "geo.region"}
		rng.Shuffle(len(dims), func(i, j int) { dims[i], dims[j] = dims[j], dims[i] })
		for _, d := range dims[:rng.IntN(3)] {
			m.GroupBy = append(m.GroupBy, path(d))
			r.groupBy = append(r.groupBy, d)
			r.groupKeys = append(r.groupKeys, d)
		}
		if rng.IntN(3) == 0 {
			type f struct {
				path  string
				allow []jv
			}
			fs := []f{
				{"status", []jv{strV(rng, "ok")}},
				{"model", []jv{strV(rng, "<&>"), strV(rng, "gpt-4o"), strV(rng, "模型")}},
				{"geo.region", []jv{strV(rng, "eu")}},
				{"userId", []jv{numV("7"), strV(rng, "u_3"), litV("true", true), strV(rng, "é")}},
			}
			for _, x := range fs[:1+rng.IntN(2)] {
				if m.Filter == nil {
					m.Filter = map[string][]json.RawMessage{}
				}
				allowed := map[string]bool{}
				var raws []json.RawMessage
				for _, a := range x.allow {
					raws = append(raws, json.RawMessage(a.raw))
					allowed[a.canon] = true
				}
				m.Filter[path(x.path)] = raws
				r.filter[x.path] = allowed
			}
		}
		meters[name] = m
		order = append(order, name)
		refs = append(refs, r)
	}
	// The meters section in file order.
	var b bytes.Buffer
	b.WriteByte('{')
	for i, name := range order {
		if i > 0 {
			b.WriteByte(',')
		}
		mb, err := json.Marshal(meters[name])
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&b, "%q:%s", name, mb)
	}
	b.WriteByte('}')
	eb, _ := json.Marshal(events)
	text := fmt.Sprintf(`{"events":%s,"meters":%s,"timezone":%q,"maxEventAge":"0"}`, eb, b.String(), zone)
	cfg, err := odometer.ParseConfig("systemconfig.json", []byte(text))
	if err != nil {
		tb.Fatalf("config %s: %v", text, err)
	}
	return cfg, refs
}

// refSample is what one event gives one meter in the reference.
type refSample struct {
	e     *metaEvent
	num   *big.Rat // numeric ops
	text  string   // unique
	group string   // the JSON array of the group's values
	obj   string   // the group's object
}

// refOutcome decides what e gives m: a sample, a skip reason, or nothing
// (filtered out).
func refOutcome(tb testing.TB, m *refMeter, e *metaEvent) (s *refSample, skip string) {
	tb.Helper()
	for p, allowed := range m.filter {
		v, ok := e.md[p]
		if !ok || !allowed[v.canon] {
			return nil, ""
		}
	}
	s = &refSample{e: e}
	var key, obj []string
	for i, p := range m.groupBy {
		c := `""`
		if v, ok := e.md[p]; ok {
			c = v.canon
		}
		key = append(key, c)
		kb, _ := json.Marshal(m.groupKeys[i])
		obj = append(obj, string(kb)+":"+c)
	}
	s.group = "[" + strings.Join(key, ",") + "]"
	s.obj = "{" + strings.Join(obj, ",") + "}"
	switch {
	case m.op == odometer.OpCount:
	case m.op == odometer.OpUnique:
		if m.value == "" {
			s.text = strconv.FormatFloat(e.Value, 'g', -1, 64)
			break
		}
		v, ok := e.md[m.value]
		switch {
		case !ok:
			return nil, odometer.SkipMissing
		case !v.scalar:
			return nil, odometer.SkipNotScalar
		}
		s.text = v.canon
	default:
		text := strconv.FormatFloat(e.Value, 'g', -1, 64)
		if m.value != "" {
			v, ok := e.md[m.value]
			switch {
			case !ok:
				return nil, odometer.SkipMissing
			case v.tooLarge:
				return nil, odometer.SkipOutOfRange
			case v.num == "":
				return nil, odometer.SkipNotNumber
			}
			text = v.num
		}
		r, ok := new(big.Rat).SetString(text)
		if !ok {
			tb.Fatalf("reference: %q is not a decimal", text)
		}
		s.num = r
	}
	return s, ""
}

// quantileStats tracks the worst relative error of the quantile ops.
type quantileStats struct {
	worst float64
	where string
	n     int
}

func (q *quantileStats) add(rel float64, where string) {
	q.n++
	if rel > q.worst {
		q.worst, q.where = rel, where
	}
}

func ratFloat(r *big.Rat) float64 {
	f, _ := r.Float64()
	return f
}

// refMeterValue applies the meter's op to its samples, as the reference
// does: sums and averages exact, rounded once; quantiles the exact value
// of rank floor(q·(n−1)). ok is false for a quantile, which is compared
// within 1% by the caller with the exact value returned.
func refMeterValue(m *refMeter, ss []*refSample) (v float64, exact bool) {
	if len(ss) == 0 {
		return 0, true
	}
	earlier := func(a, b *metaEvent) bool {
		ta, tb := a.Time.UnixMilli(), b.Time.UnixMilli()
		return ta < tb || (ta == tb && a.Seq < b.Seq)
	}
	switch m.op {
	case odometer.OpCount:
		return float64(len(ss)), true
	case odometer.OpSum, odometer.OpAvg:
		acc := new(big.Rat)
		for _, s := range ss {
			acc.Add(acc, s.num)
		}
		if m.op == odometer.OpAvg {
			acc.Quo(acc, new(big.Rat).SetInt64(int64(len(ss))))
		}
		return ratFloat(acc), true
	case odometer.OpMin, odometer.OpMax:
		w := ss[0].num
		for _, s := range ss[1:] {
			if c := s.num.Cmp(w); (m.op == odometer.OpMin && c < 0) || (m.op == odometer.OpMax && c > 0) {
				w = s.num
			}
		}
		return ratFloat(w), true
	case odometer.OpFirst, odometer.OpLast:
		w := ss[0]
		for _, s := range ss[1:] {
			if (m.op == odometer.OpFirst && earlier(s.e, w.e)) || (m.op == odometer.OpLast && earlier(w.e, s.e)) {
				w = s
			}
		}
		return ratFloat(w.num), true
	case odometer.OpUnique:
		set := map[string]bool{}
		for _, s := range ss {
			set[s.text] = true
		}
		return float64(len(set)), true
	case odometer.OpP50, odometer.OpP90, odometer.OpP95, odometer.OpP99:
		vals := make([]*big.Rat, len(ss))
		for i, s := range ss {
			vals[i] = s.num
		}
		sort.Slice(vals, func(i, j int) bool { return vals[i].Cmp(vals[j]) < 0 })
		rank := quantilePct[m.op] * int64(len(vals)-1) / 100
		return ratFloat(vals[rank]), false
	}
	panic("unknown op " + m.op)
}

// checkMeterValue compares got with the reference value of ss.
func checkMeterValue(m *refMeter, ss []*refSample, got float64, qs *quantileStats, where string) string {
	want, exact := refMeterValue(m, ss)
	if exact {
		if got != want {
			return fmt.Sprintf("%s: %s (%s) = %v, want %v", where, m.name, m.op, got, want)
		}
		return ""
	}
	if want == 0 {
		if got != 0 {
			return fmt.Sprintf("%s: %s (%s) = %v, want 0", where, m.name, m.op, got)
		}
		qs.add(0, where)
		return ""
	}
	rel := math.Abs(got-want) / math.Abs(want)
	qs.add(rel, fmt.Sprintf("%s: %s (%s) = %v, exact %v", where, m.name, m.op, got, want))
	if !(rel <= 0.01) {
		return fmt.Sprintf("%s: %s (%s) = %v, want %v within 1%% (relative error %.4g)", where, m.name, m.op, got, want, rel)
	}
	return ""
}

// metaRef is the reference over a list of events.
type metaRef struct {
	meters []*refMeter
	byName map[string]*refMeter
	// periods: aggregation id → meter → samples; types: aggregation id →
	// the event types it holds.
	periods map[string]map[string][]*refSample
	skipped map[odometer.MeterSkip]int64
	samples map[string][]*refSample // by meter
}

func newMetaRef(tb testing.TB, cfg *odometer.Config, meters []*refMeter, events []metaEvent) *metaRef {
	tb.Helper()
	r := &metaRef{meters: meters, byName: map[string]*refMeter{}, periods: map[string]map[string][]*refSample{},
		skipped: map[odometer.MeterSkip]int64{}, samples: map[string][]*refSample{}}
	for _, m := range meters {
		r.byName[m.name] = m
	}
	for i := range events {
		e := &events[i]
		local := e.Time.In(cfg.Location)
		ids := make([]string, 0, len(cfg.Periods))
		for _, p := range cfg.Periods {
			id := odometer.AggregationID(e.CustomerID, p, refKey(p, local))
			ids = append(ids, id)
			if r.periods[id] == nil {
				r.periods[id] = map[string][]*refSample{}
			}
		}
		for _, m := range meters {
			if m.eventType != e.EventType {
				continue
			}
			s, skip := refOutcome(tb, m, e)
			if skip != "" {
				r.skipped[odometer.MeterSkip{Meter: m.name, Reason: skip}]++
			}
			if s == nil {
				continue
			}
			r.samples[m.name] = append(r.samples[m.name], s)
			for _, id := range ids {
				r.periods[id][m.name] = append(r.periods[id][m.name], s)
			}
		}
	}
	return r
}

// refGroups splits samples by group, keyed by the group's JSON array.
func refGroups(ss []*refSample, project func(*refSample) (key, obj string)) (keys []string, byKey map[string][]*refSample, objs map[string]string) {
	byKey, objs = map[string][]*refSample{}, map[string]string{}
	for _, s := range ss {
		k, o := project(s)
		if byKey[k] == nil {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], s)
		objs[k] = o
	}
	sort.Strings(keys)
	return keys, byKey, objs
}

func wholeGroup(s *refSample) (string, string) { return s.group, s.obj }

// checkGroups compares a meter's groups with the reference.
func checkGroups(m *refMeter, ss []*refSample, got []odometer.GroupValue, project func(*refSample) (string, string), qs *quantileStats, where string) []string {
	var errs []string
	keys, byKey, objs := refGroups(ss, project)
	if len(got) != len(keys) {
		errs = append(errs, fmt.Sprintf("%s: %s has %d groups, want %d: %v", where, m.name, len(got), len(keys), keys))
		return errs
	}
	for i, k := range keys {
		g := got[i]
		if string(g.Group) != objs[k] {
			errs = append(errs, fmt.Sprintf("%s: %s group %d = %s, want %s", where, m.name, i, g.Group, objs[k]))
			continue
		}
		if g.Count != int64(len(byKey[k])) {
			errs = append(errs, fmt.Sprintf("%s: %s group %s count = %d, want %d", where, m.name, objs[k], g.Count, len(byKey[k])))
		}
		if msg := checkMeterValue(m, byKey[k], g.Value, qs, where+" group "+objs[k]); msg != "" {
			errs = append(errs, msg)
		}
	}
	return errs
}

// checkMetaAggregations compares every stored aggregation's meters with
// the reference.
func checkMetaAggregations(tb testing.TB, s odometer.AggregationStore, cfg *odometer.Config, ref *metaRef, qs *quantileStats) []*odometer.Aggregation {
	tb.Helper()
	aggs := findAll(tb, s, odometer.AggregationFilter{})
	if got, want := len(aggs), len(ref.periods); got != want {
		tb.Errorf("%d aggregations, want %d", got, want)
	}
	var errs []string
	for _, a := range aggs {
		byMeter, ok := ref.periods[a.ID()]
		if !ok {
			tb.Errorf("aggregation %s has no events in the reference", a.ID())
			continue
		}
		v := a.Values(cfg)
		for name := range v.Events {
			if ref.byName[name] == nil {
				errs = append(errs, fmt.Sprintf("%s: unknown meter %s", a.ID(), name))
			}
		}
		for _, m := range ref.meters {
			ss := byMeter[m.name]
			got, has := v.Events[m.name]
			if len(ss) == 0 {
				// A meter that counted nothing shows nothing, or 0 of 0.
				if has && (got != 0 || v.EventCounts[m.name] != 0 || len(v.Groups[m.name]) != 0) {
					errs = append(errs, fmt.Sprintf("%s: %s = %v of %d events, want nothing", a.ID(), m.name, got, v.EventCounts[m.name]))
				}
				continue
			}
			if !has {
				errs = append(errs, fmt.Sprintf("%s: %s missing, want %d events", a.ID(), m.name, len(ss)))
				continue
			}
			if c := v.EventCounts[m.name]; c != int64(len(ss)) {
				errs = append(errs, fmt.Sprintf("%s: eventCounts[%s] = %d, want %d", a.ID(), m.name, c, len(ss)))
			}
			if msg := checkMeterValue(m, ss, got, qs, a.ID()); msg != "" {
				errs = append(errs, msg)
			}
			gs, grouped := v.Groups[m.name]
			switch {
			case len(m.groupBy) == 0 && grouped:
				errs = append(errs, fmt.Sprintf("%s: %s has no groupBy but groups %v", a.ID(), m.name, gs))
			case len(m.groupBy) > 0:
				errs = append(errs, checkGroups(m, ss, gs, wholeGroup, qs, a.ID())...)
			}
		}
	}
	reportErrs(tb, errs)
	return aggs
}

func reportErrs(tb testing.TB, errs []string) {
	tb.Helper()
	for i, e := range errs {
		if i == 15 {
			tb.Errorf("... %d wrong values in all", len(errs))
			break
		}
		tb.Error(e)
	}
}

// checkMetaUsage compares odometer.Usage of meter m, grouped by dims
// (indexes into its groupBy), with the reference over [from, to).
func checkMetaUsage(tb testing.TB, s odometer.AggregationStore, cfg *odometer.Config, ref *metaRef, m *refMeter, dims []int, customer string, window odometer.Period, from, to time.Time, qs *quantileStats) {
	tb.Helper()
	var groupBy []string
	for _, d := range dims {
		groupBy = append(groupBy, m.groupBy[d])
	}
	where := fmt.Sprintf("usage %s %s by %v %s [%s, %s)", customer, m.name, groupBy, window, from.Format(time.RFC3339), to.Format(time.RFC3339))
	points, err := odometer.Usage(context.Background(), s, cfg, odometer.UsageQuery{
		CustomerID: customer, Meter: m.name, From: from, To: to, Window: window, Location: cfg.Location, GroupBy: groupBy,
	})
	if err != nil {
		tb.Fatalf("%s: %v", where, err)
	}
	want := map[string][]*refSample{}
	for _, smp := range ref.samples[m.name] {
		e := smp.e
		if e.CustomerID == customer && !e.Time.Before(from) && e.Time.Before(to) {
			k := refKey(window, e.Time.In(cfg.Location))
			want[k] = append(want[k], smp)
		}
	}
	var errs []string
	if got, w := len(points), len(want); got != w {
		errs = append(errs, fmt.Sprintf("%s: %d windows, want %d", where, got, w))
	}
	project := func(smp *refSample) (string, string) {
		var vals []json.RawMessage
		if err := json.Unmarshal([]byte(smp.group), &vals); err != nil {
			panic(err)
		}
		var key, obj []string
		for _, d := range dims {
			key = append(key, string(vals[d]))
			kb, _ := json.Marshal(m.groupKeys[d])
			obj = append(obj, string(kb)+":"+string(vals[d]))
		}
		return "[" + strings.Join(key, ",") + "]", "{" + strings.Join(obj, ",") + "}"
	}
	for i, p := range points {
		if i > 0 && !points[i-1].Start.Before(p.Start) {
			errs = append(errs, fmt.Sprintf("%s: windows out of order: %s before %s", where, points[i-1].Key, p.Key))
		}
		ss := want[p.Key]
		w := where + " window " + p.Key
		if got, n := p.Count, int64(len(ss)); got != n {
			errs = append(errs, fmt.Sprintf("%s: count %d, want %d", w, got, n))
		}
		if msg := checkMeterValue(m, ss, p.Value, qs, w); msg != "" {
			errs = append(errs, msg)
		}
		if len(dims) > 0 {
			errs = append(errs, checkGroups(m, ss, p.Groups, project, qs, w)...)
		} else if p.Groups != nil {
			errs = append(errs, fmt.Sprintf("%s: groups %v without groupBy", w, p.Groups))
		}
	}
	reportErrs(tb, errs)
}

// usageChecks runs checkMetaUsage for every meter over a few windows,
// each grouped meter by all its dimensions and by each one alone.
func usageChecks(tb testing.TB, s odometer.AggregationStore, cfg *odometer.Config, ref *metaRef, rng *rand.Rand, qs *quantileStats) {
	tb.Helper()
	loc := cfg.Location
	windows := []struct {
		window   odometer.Period
		from, to time.Time
	}{
		{odometer.Hourly, time.Date(2025, 11, 1, 0, 0, 0, 0, loc), time.Date(2025, 11, 3, 12, 0, 0, 0, loc)},
		{odometer.Daily, time.Date(2024, 12, 20, 0, 0, 0, 0, loc), time.Date(2025, 4, 20, 0, 0, 0, 0, loc)},
		{odometer.Weekly, time.Date(2024, 1, 1, 0, 0, 0, 0, loc), time.Date(2027, 1, 1, 0, 0, 0, 0, loc)},
		{odometer.Monthly, time.Date(2024, 2, 15, 6, 0, 0, 0, loc), time.Date(2026, 12, 31, 23, 30, 0, 0, loc)},
		{odometer.Yearly, time.Date(2023, 1, 1, 0, 0, 0, 0, loc), time.Date(2028, 1, 1, 0, 0, 0, 0, loc)},
	}
	customers := []string{"cust_a", "cust_b", "cust_ü"}
	for _, m := range ref.meters {
		w := windows[rng.IntN(len(windows))]
		c := customers[rng.IntN(len(customers))]
		checkMetaUsage(tb, s, cfg, ref, m, nil, c, w.window, w.from, w.to, qs)
		if len(m.groupBy) == 0 {
			continue
		}
		all := make([]int, len(m.groupBy))
		for i := range all {
			all[i] = i
		}
		checkMetaUsage(tb, s, cfg, ref, m, all, c, w.window, w.from, w.to, qs)
		if len(m.groupBy) > 1 {
			checkMetaUsage(tb, s, cfg, ref, m, []int{1}, c, w.window, w.from, w.to, qs)
			checkMetaUsage(tb, s, cfg, ref, m, []int{1, 0}, c, w.window, w.from, w.to, qs)
		}
	}
}

// TestMeters_MatchReference ingests random events with metadata in random
// requests, aggregates after random splits while the clock moves on (so
// many events arrive after their period completed), and compares every
// meter of every aggregation, the usage with groupBy and the skipped
// counts with a reference computed from the event list. A second store
// given the same events and aggregated once holds the same bytes.
func TestMeters_MatchReference(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		zones := []string{"UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"}
		n := 600
		if testing.Short() {
			n = 300
		}
		var mu sync.Mutex
		var worst quantileStats
		t.Cleanup(func() {
			t.Logf("quantiles: %d compared, worst relative error %.5f (%s)", worst.n, worst.worst, worst.where)
		})
		for zi, zone := range zones {
			t.Run(zone, func(t *testing.T) {
				t.Parallel()
				var qs quantileStats
				defer func() {
					mu.Lock()
					defer mu.Unlock()
					if qs.worst >= worst.worst {
						worst.worst, worst.where = qs.worst, zone+": "+qs.where
					}
					worst.n += qs.n
				}()
				seed := uint64(1300 + zi)
				rng := rand.New(rand.NewPCG(seed, 13))
				t.Logf("seed %d", seed)
				cfg, meters := metaMeters(t, rng, zone)
				store := open(t)
				rec := &recorder{AggregationStore: store}
				clk := &clock{now: at(t, "2024-01-01T00:00:00Z")}
				agg := &odometer.Aggregator{Store: rec, Config: func() *odometer.Config { return cfg }, Now: clk.Now, ChunkSize: 11, FlushEvents: 4}
				ctx := context.Background()

				events := metaEvents(rng, n, cfg.Location, "mev")
				var stored []metaEvent
				skipped := map[odometer.MeterSkip]int64{}
				run := func() {
					t.Helper()
					res, err := agg.Run(ctx)
					if err != nil {
						t.Fatal(err)
					}
					for k, n := range res.Skipped {
						skipped[k] += n
					}
				}
				// feed ingests evs in random requests, running the aggregator
				// after random ones; with moveClock, the clock moves on first.
				usageChecked := false
				feed := func(evs []metaEvent, moveClock bool) {
					t.Helper()
					for rest := evs; len(rest) > 0; {
						size := min(1+rng.IntN(80), len(rest))
						if rng.IntN(5) == 0 {
							size = 1
						}
						req := make([]odometer.Event, size)
						for i := range req {
							req[i] = rest[i].Event
						}
						ingest(t, store, req)
						for i := range req {
							rest[i].Seq = req[i].Seq
						}
						stored = append(stored, rest[:size]...)
						rest = rest[size:]

						// Usage answers from buckets and the events not yet folded in.
						if !usageChecked && len(stored) > n/2 {
							usageChecked = true
							ref := newMetaRef(t, cfg, meters, stored)
							usageChecks(t, store, cfg, ref, rng, &qs)
						}
						if rng.IntN(3) == 0 {
							if moveClock {
								clk.Set(clk.Now().Add(time.Duration(rng.Int64N(int64(20 * 24 * time.Hour)))))
							}
							run()
						}
					}
				}
				// Most events while the clock moves on; the last tenth after
				// every period has ended, each one late.
				main, late := events[:len(events)*9/10], events[len(events)*9/10:]
				feed(main, true)
				run()
				ref := newMetaRef(t, cfg, meters, stored)
				checkMetaAggregations(t, store, cfg, ref, &qs)

				clk.Set(at(t, "2029-01-01T00:00:00Z"))
				run()
				for _, a := range findAll(t, store, odometer.AggregationFilter{}) {
					if !a.Complete || a.Dirty || a.Revision < 1 {
						t.Errorf("%s: complete %v, dirty %v, revision %d after every period ended", a.ID(), a.Complete, a.Dirty, a.Revision)
					}
				}
				lateIDs := map[string]bool{}
				for _, e := range late {
					for _, p := range cfg.Periods {
						lateIDs[odometer.AggregationID(e.CustomerID, p, refKey(p, e.Time.In(cfg.Location)))] = true
					}
				}
				existed := map[string]bool{}
				for id := range ref.periods {
					existed[id] = true
				}
				feed(late, false)
				run()

				// The late events revised the periods they fell in; every
				// value equals the reference.
				ref = newMetaRef(t, cfg, meters, stored)
				aggs := checkMetaAggregations(t, store, cfg, ref, &qs)
				revised := 0
				for _, a := range aggs {
					if !a.Complete || a.Dirty || a.Revision < 1 {
						t.Errorf("%s: complete %v, dirty %v, revision %d after every period ended", a.ID(), a.Complete, a.Dirty, a.Revision)
					}
					if lateIDs[a.ID()] && existed[a.ID()] && a.Revision < 2 {
						t.Errorf("%s: revision %d, though late events changed it after it completed", a.ID(), a.Revision)
					}
					if a.Revision > 1 {
						revised++
					}
				}
				if revised == 0 {
					t.Errorf("no late events revised a completed period: the test does not exercise revisions")
				}
				usageChecks(t, store, cfg, ref, rng, &qs)

				// Every skip is counted, under its meter and reason.
				for k, n := range ref.skipped {
					if skipped[k] != n {
						t.Errorf("skipped %s/%s = %d, want %d", k.Meter, k.Reason, skipped[k], n)
					}
				}
				for k, n := range skipped {
					if _, ok := ref.skipped[k]; !ok {
						t.Errorf("skipped %s/%s = %d, want 0", k.Meter, k.Reason, n)
					}
				}
				if len(ref.skipped) == 0 {
					t.Errorf("no event skipped: the test does not exercise skips")
				}

				// From scratch: the same events into a fresh store, one run,
				// the same bytes.
				fresh := open(t)
				for i := 0; i < len(stored); i += odometer.MaxBatch {
					batch := stored[i:min(i+odometer.MaxBatch, len(stored))]
					req := make([]odometer.Event, len(batch))
					for j := range batch {
						req[j] = batch[j].Event
						req[j].Seq = 0
					}
					ingest(t, fresh, req)
					for j := range req {
						if req[j].Seq != batch[j].Seq {
							t.Fatalf("event %s: seq %d in the fresh store, %d in the first", req[j].ID, req[j].Seq, batch[j].Seq)
						}
					}
				}
				full := &odometer.Aggregator{Store: fresh, Config: func() *odometer.Config { return cfg }, Now: clk.Now}
				if _, err := full.Run(ctx); err != nil {
					t.Fatal(err)
				}
				scratch := map[string][]byte{}
				for _, a := range findAll(t, fresh, odometer.AggregationFilter{}) {
					scratch[a.ID()] = odometer.EncodeStates(a.States)
				}
				if got, want := len(scratch), len(aggs); got != want {
					t.Errorf("from scratch: %d aggregations, incrementally %d", got, want)
				}
				diff := 0
				for _, a := range aggs {
					inc := odometer.EncodeStates(a.States)
					if b, ok := scratch[a.ID()]; !ok || !bytes.Equal(b, inc) {
						if diff++; diff <= 5 {
							t.Errorf("%s: incremental states differ from a run from scratch:\n incremental %x\n from scratch %x", a.ID(), inc, b)
						}
					}
				}
				if diff > 5 {
					t.Errorf("%d aggregations differ from a run from scratch", diff)
				}
				t.Logf("%s: %d events, %d meters, %d aggregations (%d revised), %d quantiles compared, worst relative error %.5f",
					zone, len(stored), len(meters), len(aggs), revised, qs.n, qs.worst)
			})
		}
	})
}

// decimalCase is one customer of the decimal test: the values it sends
// (each as an event's value, and as the text of its metadata amount) and
// the sum and average every output must show, as the shortest decimal
// that reads back as the double.
type decimalCase struct {
	customer string
	values   []string
	sum, avg string
}

// TestMeters_Decimal: sums and averages are exact in decimal through the
// aggregator, the stored aggregations, the webhook payload, GET
// /aggregations and GET /usage, over the event's value and over a
// metadata amount (a JSON number or a string holding one).
func TestMeters_Decimal(t *testing.T) {
	const hundredths = 10_000 // through the store; a million is folded below
	cases := []decimalCase{
		{"c_ten", strings.Split(strings.Repeat("0.1,", 10)[:39], ","), "1", "0.1"},
		{"c_pair", []string{"0.1", "0.2"}, "0.3", "0.15"},
		{"c_cent", strings.Split(strings.Repeat("0.01,", hundredths)[:5*hundredths-1], ","), "100", "0.01"},
		{"c_big", []string{"1e300", "1e-300"}, "1e+300", "5e+299"},
		{"c_tiny", []string{"1e-300", "2e-300"}, "3e-300", "1.5e-300"},
		{"c_cancel", []string{"1e300", "0.1", "-1e300"}, "0.1", "0.03333333333333333"},
		{"c_sub", []string{"5e-324", "5e-324"}, "1e-323", "5e-324"},
	}
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		cfg, err := odometer.ParseConfig("systemconfig.json", []byte(`{
			"events": {"pay": {"op": "sum"}, "pay.mean": {"op": "avg"}},
			"meters": {
				"pay.amount": {"eventType": "pay", "op": "sum", "value": "$.amount"},
				"pay.amountAvg": {"eventType": "pay", "op": "avg", "value": "amount"},
				"pay.byCurrency": {"eventType": "pay", "op": "sum", "value": "$.amount", "groupBy": ["currency"]},
				"mean.amount": {"eventType": "pay.mean", "op": "avg", "value": "$.amount"}
			},
			"periods": ["daily", "monthly"],
			"maxEventAge": "0",
			"webhooks": [{"url": "https://billing.example.com/hooks", "secret": "whsec_dec"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{AggregationStore: store}
		clk := &clock{now: at(t, "2026-03-10T00:00:00Z")}
		agg := &odometer.Aggregator{Store: rec, Config: func() *odometer.Config { return cfg }, Now: clk.Now}
		day := at(t, "2026-03-10T00:00:00Z")
		var batch []odometer.Event
		flush := func() {
			t.Helper()
			if len(batch) == 0 {
				return
			}
			ingest(t, store, batch)
			batch = nil
			if _, err := agg.Run(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range cases {
			for i, text := range c.values {
				v, err := strconv.ParseFloat(text, 64)
				if err != nil {
					t.Fatal(err)
				}
				// Spread over the day's slots; half the amounts as strings.
				when := day.Add(time.Duration(i) * 24 * time.Hour / time.Duration(len(c.values)))
				amount := text
				if i%2 == 1 {
					amount = strconv.Quote(text)
				}
				for _, typ := range []string{"pay", "pay.mean"} {
					e := event(fmt.Sprintf("%s-%s-%d", c.customer, typ, i), c.customer, typ, v, when)
					e.Metadata = []byte(fmt.Sprintf(`{"amount":%s,"currency":"EUR"}`, amount))
					batch = append(batch, e)
				}
				if len(batch) >= 997 {
					flush()
				}
			}
			flush()
		}
		clk.Set(at(t, "2026-04-02T00:00:00Z"))
		if _, err := agg.Run(ctx); err != nil {
			t.Fatal(err)
		}

		// want is each meter's value as text.
		want := func(c decimalCase) map[string]string {
			return map[string]string{"pay": c.sum, "pay.mean": c.avg, "pay.amount": c.sum, "pay.amountAvg": c.avg, "pay.byCurrency": c.sum, "mean.amount": c.avg}
		}
		num := func(f float64) string {
			b, _ := json.Marshal(f)
			return string(b)
		}

		// The stored aggregations, and the webhook payloads of their completion.
		payloads := map[string]odometer.WebhookPayload{}
		for _, n := range rec.take() {
			var p odometer.WebhookPayload
			if err := json.Unmarshal(n.Payload, &p); err != nil {
				t.Fatal(err)
			}
			payloads[n.AggregationID] = p
			// The body's text, not only its parsed value.
			if n.AggregationID == "c_pair_daily_20260310" && !bytes.Contains(n.Payload, []byte(`"pay.amount":0.3`)) {
				t.Errorf("webhook body %s does not show 0.3", n.Payload)
			}
		}
		for _, c := range cases {
			for _, p := range []string{"daily_20260310", "monthly_202603"} {
				id := c.customer + "_" + p
				aggs := findAll(t, store, odometer.AggregationFilter{CustomerID: c.customer, Period: odometer.Period(strings.Split(p, "_")[0])})
				if len(aggs) != 1 || aggs[0].ID() != id {
					t.Fatalf("%s: %d aggregations, want %s", c.customer, len(aggs), id)
				}
				v := aggs[0].Values(cfg)
				pl, ok := payloads[id]
				if !ok {
					t.Errorf("%s: no completion notification", id)
				}
				for meter, w := range want(c) {
					if got := num(v.Events[meter]); got != w {
						t.Errorf("%s: %s = %s, want %s", id, meter, got, w)
					}
					if got := v.EventCounts[meter]; got != int64(len(c.values)) {
						t.Errorf("%s: eventCounts[%s] = %d, want %d", id, meter, got, len(c.values))
					}
					if got := num(pl.Data.Events[meter]); ok && got != w {
						t.Errorf("%s: webhook %s = %s, want %s", id, meter, got, w)
					}
				}
				if g := v.Groups["pay.byCurrency"]; len(g) != 1 || string(g[0].Group) != `{"currency":"EUR"}` || num(g[0].Value) != c.sum || g[0].Count != int64(len(c.values)) {
					t.Errorf("%s: groups of pay.byCurrency = %+v, want EUR %s of %d", id, g, c.sum, len(c.values))
				}
			}
		}

		// The API: GET /aggregations and GET /usage, as bodies.
		const key = "odo_test_decimal_admin"
		h := odometer.HashKey(key)
		api := &odohttp.Server{Events: store, Keys: store, Aggs: store, Deliveries: store,
			Config: func() *odometer.Config { return cfg }, Now: clk.Now,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AdminKeyHash: &h, Ready: store.Ping}
		srv := httptest.NewServer(api.Handler())
		defer srv.Close()
		get := func(path string) []byte {
			t.Helper()
			req, _ := http.NewRequest("GET", srv.URL+path, nil)
			req.Header.Set("x-apikey", key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s = %d %s", path, resp.StatusCode, b)
			}
			return b
		}
		for _, c := range cases {
			body := get("/aggregations?customerId=" + url.QueryEscape(c.customer) + "&period=daily")
			var list []struct {
				Events map[string]json.Number `json:"events"`
			}
			if err := json.Unmarshal(body, &list); err != nil || len(list) != 1 {
				t.Fatalf("GET /aggregations for %s: %v %s", c.customer, err, body)
			}
			for meter, w := range want(c) {
				if got := list[0].Events[meter].String(); got != w {
					t.Errorf("GET /aggregations %s: %s = %s, want %s", c.customer, meter, got, w)
				}
			}
			for meter, w := range want(c) {
				q := "/usage?customerId=" + url.QueryEscape(c.customer) + "&meter=" + url.QueryEscape(meter) + "&window=day&from=2026-03-10T00:00:00Z&to=2026-03-11T00:00:00Z"
				if meter == "pay.byCurrency" {
					q += "&groupBy=currency"
				}
				body := get(q)
				var u struct {
					Usage []struct {
						Key    string      `json:"key"`
						Value  json.Number `json:"value"`
						Count  int64       `json:"count"`
						Groups []struct {
							Group json.RawMessage `json:"group"`
							Value json.Number     `json:"value"`
						} `json:"groups"`
					} `json:"usage"`
				}
				if err := json.Unmarshal(body, &u); err != nil {
					t.Fatalf("GET %s: %v %s", q, err, body)
				}
				if len(u.Usage) != 1 || u.Usage[0].Value.String() != w || u.Usage[0].Count != int64(len(c.values)) {
					t.Errorf("GET %s = %s, want one day of %s over %d events", q, body, w, len(c.values))
					continue
				}
				if meter == "pay.byCurrency" && (len(u.Usage[0].Groups) != 1 || u.Usage[0].Groups[0].Value.String() != w) {
					t.Errorf("GET %s = %s, want the group EUR at %s", q, body, w)
				}
			}
		}
	})
}

// TestMeters_DecimalMillion: a million 0.01 make 10000, folded as the
// aggregator folds them (samples into slot states, states merged), and
// through the states' encoding; the store test above sends ten thousand.
func TestMeters_DecimalMillion(t *testing.T) {
	const states, per = 1000, 1000
	d := odometer.DecimalOf(0.01)
	total := map[string]odometer.State{"sum": odometer.NewState(odometer.OpSum)}
	for i := 0; i < states; i++ {
		st := odometer.NewState(odometer.OpSum)
		for j := 0; j < per; j++ {
			st.Add(&odometer.Sample{Time: int64(i*per + j), Seq: int64(i*per + j + 1), Num: 0.01, Dec: d})
		}
		b := odometer.EncodeStates(map[string]odometer.State{"sum": st})
		back, err := odometer.DecodeStates(b)
		if err != nil {
			t.Fatal(err)
		}
		total["sum"].Merge(back["sum"])
	}
	back, err := odometer.DecodeStates(odometer.EncodeStates(total))
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []odometer.Op{odometer.OpSum, odometer.OpAvg, odometer.OpCount} {
		want := map[odometer.Op]float64{odometer.OpSum: 10000, odometer.OpAvg: 0.01, odometer.OpCount: states * per}[op]
		if got := odometer.Value(op, back["sum"]); got != want {
			t.Errorf("%s of a million 0.01 = %v, want %v", op, got, want)
		}
	}
	// In binary, the same sum drifts: the test would catch a float sum.
	f := 0.0
	for i := 0; i < states*per; i++ {
		f += 0.01
	}
	if f == 10000 {
		t.Fatalf("a float64 sum of a million 0.01 is exactly 10000: the check above proves nothing")
	}
}

// TestMeters_UsageOfAMeter: the usage of a meter of the meters section is
// its own, not its event type's, before and after a run.
func TestMeters_UsageOfAMeter(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(tb testing.TB) odometer.Store) {
		ctx := context.Background()
		store := open(t)
		cfg, err := odometer.ParseConfig("systemconfig.json", []byte(`{
			"events": {"llm.request": {"op": "sum"}},
			"meters": {"llm.tokens": {"eventType": "llm.request", "op": "sum", "value": "$.tokens", "groupBy": ["model"]}}}`))
		if err != nil {
			t.Fatal(err)
		}
		e := event("u-1", "cust_u", "llm.request", 1, at(t, "2026-03-10T12:00:00Z"))
		e.Metadata = []byte(`{"tokens":5,"model":"gpt-4o"}`)
		ingest(t, store, []odometer.Event{e})
		agg := &odometer.Aggregator{Store: store, Config: func() *odometer.Config { return cfg }, Now: func() time.Time { return at(t, "2026-03-11T00:00:00Z") }}
		for _, stage := range []string{"before the run", "after the run"} {
			for meter, want := range map[string]float64{"llm.request": 1, "llm.tokens": 5} {
				points, err := odometer.Usage(ctx, store, cfg, odometer.UsageQuery{CustomerID: "cust_u", Meter: meter,
					From: at(t, "2026-03-10T00:00:00Z"), To: at(t, "2026-03-11T00:00:00Z"), Window: odometer.Daily, Location: time.UTC})
				if err != nil {
					t.Fatal(err)
				}
				if len(points) != 1 || points[0].Value != want || points[0].Count != 1 {
					t.Errorf("%s: usage of %s = %+v, want one day of %v over 1 event", stage, meter, points, want)
				}
			}
			if _, err := agg.Run(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
}
