package odometer

import (
	"encoding/binary"
	"math/big"
)

// The gauge ops: each event sets the customer's gauge (per group) from its
// event time until the next event, and the gauge carries across period
// boundaries.
const (
	// OpIntegral is the gauge's value times the time it holds, in the
	// meter's unit of time: GB-hours.
	OpIntegral Op = "integral"
	// OpTWA is the gauge's time-weighted average over the period: seats.
	OpTWA Op = "twa"
)

const gaugeKind stateKind = 'T'

// Units of time of an integral, in milliseconds.
var gaugeUnits = map[string]int64{"second": 1000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000}

// DefaultGaugeUnit is the unit of an integral that names none.
const DefaultGaugeUnit = "hour"

var gaugeFamily = family{
	codec: stateCodec{kind: gaugeKind, version: 1, new: func() State { return new(gaugeState) }, decode: decodeGauge},
	ops: []opDef{
		{op: OpIntegral, input: inputNumber, value: func(s State, c valueContext) float64 {
			return integralIn(s.(*gaugeState).integral(c.start, c.end), c)
		}},
		{op: OpTWA, input: inputNumber, value: func(s State, c valueContext) float64 {
			return averageOver(s.(*gaugeState).integral(c.start, c.end), c)
		}},
	},
}

func integralIn(x *big.Rat, c valueContext) float64 {
	return ratFloat(x.Quo(x, new(big.Rat).SetInt64(c.unit)))
}

func averageOver(x *big.Rat, c valueContext) float64 {
	if c.end <= c.start {
		return 0
	}
	return ratFloat(x.Quo(x, new(big.Rat).SetInt64(c.end-c.start)))
}

// groupedGaugeValue answers a gauge op over every group: each group is a
// gauge of its own, so the meter's integral is the sum of theirs, exactly.
func groupedGaugeValue(d *opDef, g *groupedState, c valueContext) float64 {
	total := new(big.Rat)
	for _, st := range g.groups {
		total.Add(total, st.(*gaugeState).integral(c.start, c.end))
	}
	if d.op == OpTWA {
		return averageOver(total, c)
	}
	return integralIn(total, c)
}

// gaugePoint is one setting of the gauge.
type gaugePoint struct {
	t, seq int64
	v      Decimal
}

func (p gaugePoint) before(q gaugePoint) bool { return p.t < q.t || (p.t == q.t && p.seq < q.seq) }

// gaugeState is the points that set the gauge within a span, in time order
// (ties by arrival), and the carry: the last point before the span, which
// sets the gauge at its start. A point's contribution depends on the next
// point, which a late event may change, so the points are kept whole: the
// state grows with the events of its span.
type gaugeState struct {
	points []gaugePoint
	carry  *gaugePoint
}

func (s *gaugeState) kind() stateKind { return gaugeKind }

// Count is the number of events in the span; a period that only carries a
// gauge counts none.
func (s *gaugeState) Count() int64 { return int64(len(s.points)) }

func (s *gaugeState) Add(x *Sample) {
	p := gaugePoint{x.Time, x.Seq, x.Dec}
	i := len(s.points)
	for i > 0 && p.before(s.points[i-1]) {
		i--
	}
	s.points = append(s.points, gaugePoint{})
	copy(s.points[i+1:], s.points[i:])
	s.points[i] = p
}

// Merge takes the union of the points, and the later carry.
func (s *gaugeState) Merge(os State) {
	o := os.(*gaugeState)
	if len(o.points) > 0 {
		out := make([]gaugePoint, 0, len(s.points)+len(o.points))
		i, j := 0, 0
		for i < len(s.points) && j < len(o.points) {
			if o.points[j].before(s.points[i]) {
				out = append(out, o.points[j])
				j++
			} else {
				out = append(out, s.points[i])
				i++
			}
		}
		out = append(out, s.points[i:]...)
		s.points = append(out, o.points[j:]...)
	}
	if o.carry != nil && (s.carry == nil || s.carry.before(*o.carry)) {
		c := *o.carry
		s.carry = &c
	}
}

func (s *gaugeState) Clone() State {
	c := &gaugeState{points: append([]gaugePoint(nil), s.points...)}
	if s.carry != nil {
		p := *s.carry
		c.carry = &p
	}
	return c
}

// integral is the exact integral of the gauge over [start, end), in
// value-milliseconds: the carry holds from start to the first point, each
// point until the next, the last until end.
func (s *gaugeState) integral(start, end int64) *big.Rat {
	total := Decimal{}
	cur, from := Decimal{}, start
	if s.carry != nil {
		cur = s.carry.v
	}
	step := func(to int64) {
		if to > from && !cur.IsZero() {
			total = total.Add(cur.MulInt(to - from))
		}
		from = max(from, to)
	}
	for _, p := range s.points {
		step(min(p.t, end))
		cur = p.v
	}
	step(end)
	return total.Rat()
}

// carryOut is what the state carries into the next span: its last point,
// or the carry it holds when it has none.
func (s *gaugeState) carryOut() *gaugePoint {
	if n := len(s.points); n > 0 {
		p := s.points[n-1]
		return &p
	}
	return s.carry
}

// setCarry sets the carry and reports whether it changed.
func (s *gaugeState) setCarry(c *gaugePoint) bool {
	same := (c == nil && s.carry == nil) || (c != nil && s.carry != nil && *c == *s.carry)
	if same {
		return false
	}
	if c != nil {
		p := *c
		c = &p
	}
	s.carry = c
	return true
}

func appendPoint(b []byte, p gaugePoint) []byte {
	b = binary.AppendVarint(b, p.t)
	b = binary.AppendUvarint(b, uint64(p.seq))
	return appendDecimal(b, p.v)
}

func decodePoint(r *reader) gaugePoint {
	return gaugePoint{t: r.varint(), seq: int64(r.uvarint()), v: decodeDecimal(r)}
}

func (s *gaugeState) appendPayload(b []byte) []byte {
	if s.carry != nil {
		b = append(b, 1)
		b = appendPoint(b, *s.carry)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(s.points)))
	for _, p := range s.points {
		b = appendPoint(b, p)
	}
	return b
}

func decodeGauge(_ byte, r *reader) State {
	s := new(gaugeState)
	switch r.byte() {
	case 0:
	case 1:
		p := decodePoint(r)
		s.carry = &p
	default:
		r.fail()
		return nil
	}
	n := r.count()
	s.points = make([]gaugePoint, 0, n)
	for i := 0; i < n && !r.err; i++ {
		p := decodePoint(r)
		if len(s.points) > 0 && p.before(s.points[len(s.points)-1]) {
			r.fail() // written in order
			return nil
		}
		s.points = append(s.points, p)
	}
	return s
}

// carryOf returns what s, a gauge state or a grouped one, carries into the
// next span, as a state that holds only carries; nil when s is no gauge.
func carryOf(s State) State {
	switch g := s.(type) {
	case *gaugeState:
		return &gaugeState{carry: g.carryOut()}
	case *groupedState:
		if g.inner != gaugeKind {
			return nil
		}
		c := newGroupedState(gaugeKind)
		for k, st := range g.groups {
			if p := st.(*gaugeState).carryOut(); p != nil {
				c.groups[k] = &gaugeState{carry: p}
			}
		}
		return c
	}
	return nil
}

// carryInto sets the carries of s from c (what carryOf returned for the
// span before; nil for none) and reports whether any changed.
func carryInto(s State, c State) bool {
	switch g := s.(type) {
	case *gaugeState:
		var p *gaugePoint
		if cg, ok := c.(*gaugeState); ok {
			p = cg.carry
		}
		return g.setCarry(p)
	case *groupedState:
		cg, _ := c.(*groupedState)
		changed := false
		for k, st := range g.groups {
			var p *gaugePoint
			if cg != nil {
				if cs := cg.groups[k]; cs != nil {
					p = cs.(*gaugeState).carry
				}
			}
			changed = st.(*gaugeState).setCarry(p) || changed
		}
		if cg != nil {
			for k, cs := range cg.groups {
				if g.groups[k] == nil {
					g.groups[k] = &gaugeState{carry: cs.(*gaugeState).carry}
					changed = true
				}
			}
		}
		return changed
	}
	return false
}

// holds reports whether a carry sets some gauge to a value other than 0:
// only then does the next span have usage without events.
func holds(c State) bool {
	switch g := c.(type) {
	case *gaugeState:
		return g.carry != nil && !g.carry.v.IsZero()
	case *groupedState:
		for _, st := range g.groups {
			if holds(st) {
				return true
			}
		}
	}
	return false
}

// idle reports whether a gauge state (or a grouped one) neither has a
// point nor carries a value other than 0, pruning the idle groups of a
// grouped one: such a state adds nothing, and is not kept, so that a
// period's states are the same however its carries came about.
func idle(s State) bool {
	switch g := s.(type) {
	case *gaugeState:
		return len(g.points) == 0 && (g.carry == nil || g.carry.v.IsZero())
	case *groupedState:
		for k, st := range g.groups {
			if idle(st) {
				delete(g.groups, k)
			}
		}
		return len(g.groups) == 0
	}
	return false
}
