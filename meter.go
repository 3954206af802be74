package odometer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// MaxGroupBy bounds the dimensions of one meter.
const MaxGroupBy = 5

// Meter is what is billed: an op over a number (or a text) that each event
// of one type carries, optionally grouped by metadata values and filtered.
// Every event type of the configuration is a meter named after it, over
// the event's value.
type Meter struct {
	Name        string                       `json:"-"`
	EventType   string                       `json:"eventType"`
	Op          Op                           `json:"op"`
	Value       string                       `json:"value,omitempty"`
	GroupBy     []string                     `json:"groupBy,omitempty"`
	Filter      map[string][]json.RawMessage `json:"filter,omitempty"`
	Unit        string                       `json:"unit,omitempty"`
	Description string                       `json:"description,omitempty"`

	def        *opDef
	objects    sync.Map // group key -> its object of dimensions, made once
	cached     atomic.Int64
	path       []string   // nil: the event's value
	groupPaths [][]string // one path per dimension
	filter     []meterFilter
}

type meterFilter struct {
	path    []string
	allowed map[string]bool // by JSON text
}

// Grouped reports whether the meter has groupBy.
func (m *Meter) Grouped() bool { return len(m.groupPaths) > 0 }

// readsMetadata reports whether the meter looks into an event's metadata.
func (m *Meter) readsMetadata() bool {
	return m.path != nil || len(m.groupPaths) > 0 || len(m.filter) > 0
}

// NewState returns an empty state for the meter.
func (m *Meter) NewState() State {
	if m.Grouped() {
		return newGroupedState(m.def.kind)
	}
	return codecByKind[m.def.kind].new()
}

// Skip reasons, the label of odometer_meter_events_skipped_total.
const (
	SkipMissing    = "missing"      // the value's path is absent
	SkipNotNumber  = "not_number"   // not a number, nor a string holding one
	SkipOutOfRange = "out_of_range" // beyond ±MaxValue
	SkipNotScalar  = "not_scalar"   // an object, array or null, for unique
)

// parsePath reads "$.a.b" or "a.b".
func parsePath(s string) ([]string, error) {
	p := strings.TrimPrefix(s, "$.")
	if p == "" || len(s) > 256 {
		return nil, fmt.Errorf("must be a metadata path such as \"$.tokens\" or \"model\", not %q", s)
	}
	parts := strings.Split(p, ".")
	for _, x := range parts {
		if x == "" || strings.ContainsAny(x, "[]*$") {
			return nil, fmt.Errorf("must be a metadata path such as \"$.tokens\" or \"model\" (keys joined by dots), not %q", s)
		}
	}
	return parts, nil
}

// metadata is an event's metadata, parsed once for all its meters.
type metadata struct {
	raw    []byte
	parsed bool
	obj    map[string]json.RawMessage
}

func (md *metadata) reset(raw []byte) { *md = metadata{raw: raw} }

// lookup returns the JSON text at path, or nil when it is absent.
func (md *metadata) lookup(path []string) json.RawMessage {
	if !md.parsed {
		md.parsed = true
		if len(md.raw) > 0 {
			json.Unmarshal(md.raw, &md.obj)
		}
	}
	cur := md.obj
	for i, k := range path {
		v, ok := cur[k]
		if !ok {
			return nil
		}
		if i == len(path)-1 {
			return v
		}
		cur = nil
		if json.Unmarshal(v, &cur) != nil {
			return nil
		}
	}
	return nil
}

// sample fills s with what e gives m; it returns a skip reason, or "".
// Only s's value and group are set; the caller sets time and arrival.
func (m *Meter) sample(e *Event, md *metadata, s *Sample) string {
	for _, f := range m.filter {
		if !f.allowed[jsonText(md.lookup(f.path))] {
			return filteredOut
		}
	}
	if m.Grouped() {
		s.Group = groupKey(md, m.groupPaths)
	}
	switch m.def.input {
	case inputNone:
		return ""
	case inputNumber:
		if m.path == nil {
			s.Num, s.Dec = e.Value, DecimalOf(e.Value)
			return ""
		}
		v := md.lookup(m.path)
		if v == nil {
			return SkipMissing
		}
		text := string(v)
		if len(text) > 0 && text[0] == '"' {
			if json.Unmarshal(v, &text) != nil {
				return SkipNotNumber
			}
		}
		d, ok := ParseDecimal(text)
		if !ok {
			if _, syntax := parseDecimal(text); syntax && text != "" {
				return SkipOutOfRange
			}
			return SkipNotNumber
		}
		f, _ := strconv.ParseFloat(text, 64)
		s.Num, s.Dec = f, d
		return ""
	case inputText:
		if m.path == nil {
			s.Text = strconv.FormatFloat(e.Value, 'g', -1, 64)
			return ""
		}
		v := md.lookup(m.path)
		if v == nil {
			return SkipMissing
		}
		switch v[0] {
		case '{', '[', 'n':
			return SkipNotScalar
		}
		s.Text = jsonText(v)
		return ""
	}
	return ""
}

// filteredOut is a sample the meter's filter leaves out: not a skip.
const filteredOut = "filtered"

// jsonText returns the compact JSON text of v, "" for nil: the form in
// which filters, groups and unique compare values. A string is written
// with the fewest escapes, so "\u00e9" and "é" are one value.
func jsonText(v json.RawMessage) string {
	if v == nil {
		return ""
	}
	if canonicalText(v) {
		return string(v) // as it is: most values, on the aggregation's path
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			enc.Encode(s)
			return strings.TrimSuffix(b.String(), "\n")
		}
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	return b.String()
}

// canonicalText reports whether v is already what jsonText makes of it: a
// string with no escape, valid UTF-8 and no U+2028 or U+2029 (which the
// encoder escapes), or another value with no space in it.
func canonicalText(v []byte) bool {
	if v[0] != '"' {
		return !bytes.ContainsAny(v, " \t\r\n")
	}
	return len(v) >= 2 && v[len(v)-1] == '"' && bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v) &&
		!bytes.Contains(v, []byte("\u2028")) && !bytes.Contains(v, []byte("\u2029"))
}

// groupKey is the JSON array of the group's values: each as its JSON
// text, a missing one as "".
func groupKey(md *metadata, paths [][]string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, p := range paths {
		if i > 0 {
			b.WriteByte(',')
		}
		if v := md.lookup(p); v != nil {
			b.WriteString(jsonText(v))
		} else {
			b.WriteString(`""`)
		}
	}
	b.WriteByte(']')
	return b.String()
}

// GroupValue is the value of one group of a grouped meter.
type GroupValue struct {
	// Group is the object of the group's dimensions, in groupBy order.
	Group json.RawMessage `json:"group"`
	Value float64         `json:"value"`
	Count int64           `json:"count"`
}

// maxCachedGroups bounds the group objects a meter keeps made: a groupBy
// of many values (a user id) makes each again rather than hold them all.
const maxCachedGroups = 10_000

// groupObjectOf is groupObject for a key of all the meter's dimensions,
// made once per key.
func (m *Meter) groupObjectOf(key string) json.RawMessage {
	if o, ok := m.objects.Load(key); ok {
		return o.(json.RawMessage)
	}
	o := groupObject(m.GroupBy, key)
	if m.cached.Add(1) <= maxCachedGroups {
		m.objects.Store(key, o)
	}
	return o
}

// groupObject turns a group key into the object of its dimensions, in
// the order of names.
func groupObject(names []string, key string) json.RawMessage {
	var vals []json.RawMessage
	if json.Unmarshal([]byte(key), &vals) != nil || len(vals) != len(names) {
		return json.RawMessage(`{}`)
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, name := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		n, _ := json.Marshal(strings.TrimPrefix(name, "$."))
		b.Write(n)
		b.WriteByte(':')
		b.Write(vals[i])
	}
	b.WriteByte('}')
	return b.Bytes()
}

// span is the context of the meter's values over [start, end). A nil
// meter (a name no longer configured) has the default unit.
func (m *Meter) span(start, end time.Time) valueContext {
	c := valueContext{start: start.UnixMilli(), end: end.UnixMilli(), unit: gaugeUnits[DefaultGaugeUnit]}
	if m != nil && m.Unit != "" {
		c.unit = gaugeUnits[m.Unit]
	}
	return c
}

// ValueOf answers the meter's op over s, a state of the span [start, end).
func (m *Meter) ValueOf(s State, start, end time.Time) float64 {
	return value(m.Op, s, m.span(start, end))
}

// groups returns the values of each group of a grouped state, sorted by
// group.
func (m *Meter) groups(s State, span valueContext) []GroupValue {
	all := make([]int, len(m.GroupBy))
	for i := range all {
		all[i] = i
	}
	return m.groupsBy(s, all, span)
}

// dimensions returns the indexes of the named dimensions of the meter's
// groupBy; nil for no names.
func (m *Meter) dimensions(names []string) ([]int, error) {
	if len(names) == 0 {
		return nil, nil
	}
	if !m.Grouped() {
		return nil, Errorf(EINVALID, "meter %s has no groupBy", m.Name)
	}
	var dims []int
	for _, n := range names {
		i := slices.IndexFunc(m.GroupBy, func(g string) bool { return strings.TrimPrefix(g, "$.") == strings.TrimPrefix(n, "$.") })
		if i < 0 || slices.Contains(dims, i) {
			return nil, Errorf(EINVALID, "groupBy must name dimensions of meter %s, each once: %s", m.Name, strings.Join(m.GroupBy, ", "))
		}
		dims = append(dims, i)
	}
	return dims, nil
}

// groupsBy returns the groups of a grouped state projected on the
// dimensions dims: groups that differ only in others are merged. They are
// sorted by group.
func (m *Meter) groupsBy(s State, dims []int, span valueContext) []GroupValue {
	g, ok := s.(*groupedState)
	if !ok {
		return []GroupValue{}
	}
	if len(dims) == len(m.GroupBy) && sort.IntsAreSorted(dims) {
		// Every dimension, in order: the groups as they are.
		keys := g.keys()
		out := make([]GroupValue, 0, len(keys))
		for _, k := range keys {
			st := g.groups[k]
			out = append(out, GroupValue{Group: m.groupObjectOf(k), Value: value(m.Op, st, span), Count: st.Count()})
		}
		return out
	}
	names := make([]string, len(dims))
	for i, d := range dims {
		names[i] = m.GroupBy[d]
	}
	proj := map[string]State{}
	for _, k := range g.keys() {
		var vals []json.RawMessage
		if json.Unmarshal([]byte(k), &vals) != nil || len(vals) != len(m.GroupBy) {
			continue
		}
		sub := make([][]byte, len(dims))
		for i, d := range dims {
			sub[i] = vals[d]
		}
		pk := "[" + string(bytes.Join(sub, []byte(","))) + "]"
		if cur := proj[pk]; cur != nil {
			cur.Merge(g.groups[k])
		} else {
			proj[pk] = g.groups[k].Clone()
		}
	}
	keys := make([]string, 0, len(proj))
	for k := range proj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]GroupValue, 0, len(keys))
	for _, k := range keys {
		st := proj[k]
		out = append(out, GroupValue{Group: groupObject(names, k), Value: value(m.Op, st, span), Count: st.Count()})
	}
	return out
}

// parseMeters reads the meters section; fail names the key.
func (c *Config) parseMeters(msg json.RawMessage, fail func(key, format string, args ...any) error) error {
	var raw map[string]json.RawMessage
	if json.Unmarshal(msg, &raw) != nil {
		return fail("meters", "must be an object of meters, such as {\"llm.tokens\": {\"eventType\": \"llm.request\", \"op\": \"sum\", \"value\": \"$.tokens\"}}")
	}
	order := objectKeys(msg)
	if len(order) != len(raw) {
		return fail("meters", "a meter is given more than once; each meter once")
	}
	c.Meters = make(map[string]*Meter, len(raw))
	c.MeterOrder = order
	for _, name := range order {
		key := "meters." + name
		if err := ValidateEventTypeName(name); err != nil {
			return fail(key, "%s", ErrorMessage(err))
		}
		if _, ok := c.Events[name]; ok {
			return fail(key, "is the name of an event type; a meter's name is unique among meters and event types")
		}
		var f map[string]json.RawMessage
		if json.Unmarshal(raw[name], &f) != nil {
			return fail(key, "must be an object such as {\"eventType\": \"llm.request\", \"op\": \"sum\", \"value\": \"$.tokens\"}")
		}
		m := &Meter{Name: name}
		for k, v := range f {
			var err error
			switch {
			case k == "eventType":
				err = json.Unmarshal(v, &m.EventType)
			case k == "op":
				var op string
				if json.Unmarshal(v, &op) != nil || !validOp(Op(op)) {
					return fail(key+".op", "unknown op %s; allowed: %s", string(v), opList())
				}
				m.Op = Op(op)
			case k == "value":
				err = json.Unmarshal(v, &m.Value)
			case k == "groupBy":
				err = json.Unmarshal(v, &m.GroupBy)
			case k == "filter":
				if err = json.Unmarshal(v, &m.Filter); err != nil {
					return fail(key+".filter", "must be an object of metadata paths to lists of allowed values, such as {\"status\": [\"ok\"]}")
				}
			case k == "unit":
				err = json.Unmarshal(v, &m.Unit)
			case k == "description":
				err = json.Unmarshal(v, &m.Description)
			case strings.HasPrefix(k, "_"):
			default:
				return fail(key+"."+k, "unknown key; allowed: eventType, op, value, groupBy, filter, unit, description")
			}
			if err != nil {
				return fail(key+"."+k, "has the wrong type")
			}
		}
		if m.EventType == "" {
			return fail(key+".eventType", "missing; allowed: an event type of \"events\" (%s)", strings.Join(c.EventTypeNames(), ", "))
		}
		if _, ok := c.Events[m.EventType]; !ok {
			return fail(key+".eventType", "unknown event type %q; allowed: an event type of \"events\" (%s)", m.EventType, strings.Join(c.EventTypeNames(), ", "))
		}
		if m.Op == "" {
			return fail(key+".op", "missing; allowed: %s", opList())
		}
		m.def = opsByName[m.Op]
		if m.Value != "" {
			p, err := parsePath(m.Value)
			if err != nil {
				return fail(key+".value", "%v", err)
			}
			m.path = p
		}
		if len(m.GroupBy) > MaxGroupBy {
			return fail(key+".groupBy", "has %d paths; allowed: at most %d", len(m.GroupBy), MaxGroupBy)
		}
		seenDims := map[string]bool{}
		for i, g := range m.GroupBy {
			p, err := parsePath(g)
			if err != nil {
				return fail(fmt.Sprintf("%s.groupBy[%d]", key, i), "%v", err)
			}
			name := strings.Join(p, ".")
			if seenDims[name] {
				return fail(fmt.Sprintf("%s.groupBy[%d]", key, i), "%q is given twice; each dimension once", g)
			}
			seenDims[name] = true
			m.groupPaths = append(m.groupPaths, p)
		}
		paths := make([]string, 0, len(m.Filter))
		for p := range m.Filter {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			pp, err := parsePath(p)
			if err != nil {
				return fail(key+".filter."+p, "%v", err)
			}
			if len(m.Filter[p]) == 0 {
				return fail(key+".filter."+p, "has no allowed values; allowed: a non-empty list such as [\"ok\"]")
			}
			f := meterFilter{path: pp, allowed: map[string]bool{}}
			for _, x := range m.Filter[p] {
				f.allowed[jsonText(x)] = true
			}
			m.filter = append(m.filter, f)
		}
		if m.Unit != "" {
			if m.Op != OpIntegral {
				return fail(key+".unit", "is the unit of time of an integral; %s has none", m.Op)
			}
			if _, ok := gaugeUnits[m.Unit]; !ok {
				return fail(key+".unit", "unknown unit %q; allowed: second, minute, hour, day", m.Unit)
			}
		}
		c.Meters[name] = m
	}
	return nil
}

func opList() string {
	s := make([]string, len(Ops))
	for i, op := range Ops {
		s[i] = string(op)
	}
	return strings.Join(s, ", ")
}

// indexMeters builds the meters of each event type: the event type's own
// meter first, then the meters of the meters section in file order.
func (c *Config) indexMeters() {
	c.meterByName = make(map[string]*Meter, len(c.Events)+len(c.Meters))
	c.metersByType = make(map[string][]*Meter, len(c.Events))
	for _, name := range c.EventTypeNames() {
		et := c.Events[name]
		m := &Meter{Name: name, EventType: name, Op: et.Op, Description: et.Description, def: opsByName[et.Op]}
		c.meterByName[name] = m
		c.metersByType[name] = append(c.metersByType[name], m)
	}
	for _, name := range c.MeterOrder {
		m := c.Meters[name]
		c.meterByName[name] = m
		c.metersByType[m.EventType] = append(c.metersByType[m.EventType], m)
	}
	c.gauges = nil
	for _, name := range c.MeterNames() {
		if m := c.meterByName[name]; m.def.kind == gaugeKind {
			c.gauges = append(c.gauges, m)
		}
	}
}

// metadataTypes returns the event types, sorted, that have a meter looking
// into their metadata: the aggregator reads no other event's metadata.
func (c *Config) metadataTypes() []string {
	var types []string
	for _, name := range c.EventTypeNames() {
		for _, m := range c.metersByType[name] {
			if m.readsMetadata() {
				types = append(types, name)
				break
			}
		}
	}
	return types
}

// Meter returns the meter of that name (an event type is one), or nil.
func (c *Config) Meter(name string) *Meter { return c.meterByName[name] }

// MeterNames returns every meter's name: the event types, sorted, then the
// meters section in file order.
func (c *Config) MeterNames() []string {
	names := c.EventTypeNames()
	return append(names, c.MeterOrder...)
}

// CheckReload refuses a new configuration that would change what the
// states stored under a meter's name mean: a meter whose op moves to
// another kind of state, or whose event type, value, groupBy or filter
// changes. Adding and removing meters is allowed.
func (c *Config) CheckReload(old *Config) error {
	for _, name := range c.MeterNames() {
		m, o := c.Meter(name), old.Meter(name)
		if o == nil {
			continue
		}
		same := m.def.kind == o.def.kind && m.EventType == o.EventType && m.Value == o.Value &&
			fmt.Sprint(m.GroupBy) == fmt.Sprint(o.GroupBy) && fmt.Sprint(m.Filter) == fmt.Sprint(o.Filter)
		if !same {
			return fmt.Errorf("meter %s: its event type, value, groupBy, filter or kind of op changed, so the states stored under its name would no longer mean what it says; give the new definition a new name", name)
		}
	}
	return nil
}
