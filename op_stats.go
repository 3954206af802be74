package odometer

import (
	"encoding/binary"
	"math"
)

// The template's seven ops share one state, so a stored period answers
// whichever of them the configuration names.
const (
	OpSum   Op = "sum"
	OpAvg   Op = "avg"
	OpMin   Op = "min"
	OpMax   Op = "max"
	OpCount Op = "count"
	OpFirst Op = "first"
	OpLast  Op = "last"
)

const statsKind stateKind = 'S'

var statsFamily = family{
	codec: stateCodec{kind: statsKind, version: 1, new: func() State { return new(StatsState) }, decode: decodeStats},
	ops: []opDef{
		{op: OpSum, input: inputNumber, value: func(s State, _ valueContext) float64 { return s.(*StatsState).Sum.Float64() }},
		{op: OpAvg, input: inputNumber, value: func(s State, _ valueContext) float64 {
			st := s.(*StatsState)
			return st.Sum.Quo(st.N)
		}},
		{op: OpMin, input: inputNumber, value: func(s State, _ valueContext) float64 { return s.(*StatsState).Min }},
		{op: OpMax, input: inputNumber, value: func(s State, _ valueContext) float64 { return s.(*StatsState).Max }},
		{op: OpCount, input: inputNone, value: func(s State, _ valueContext) float64 { return float64(s.(*StatsState).N) }},
		{op: OpFirst, input: inputNumber, value: func(s State, _ valueContext) float64 { return s.(*StatsState).First.Value }},
		{op: OpLast, input: inputNumber, value: func(s State, _ valueContext) float64 { return s.(*StatsState).Last.Value }},
	},
}

// Point is a value at an event time, with the arrival order that breaks ties.
type Point struct {
	Time  int64 // Unix milliseconds
	Seq   int64
	Value float64
}

func (p Point) before(q Point) bool {
	return p.Time < q.Time || (p.Time == q.Time && p.Seq < q.Seq)
}

// StatsState is the state of the template's ops: the count, the exact
// decimal sum, the minimum and maximum, and the first and last values.
type StatsState struct {
	N           int64
	Sum         Decimal
	Min, Max    float64
	First, Last Point
}

func (s *StatsState) kind() stateKind { return statsKind }

// Count is the number of samples folded.
func (s *StatsState) Count() int64 { return s.N }

// Add folds one sample.
func (s *StatsState) Add(x *Sample) {
	v := x.Num
	p := Point{x.Time, x.Seq, v}
	if s.N == 0 {
		s.Min, s.Max, s.First, s.Last = v, v, p, p
	} else {
		s.Min = math.Min(s.Min, v)
		s.Max = math.Max(s.Max, v)
		if p.before(s.First) {
			s.First = p
		}
		if s.Last.before(p) {
			s.Last = p
		}
	}
	s.N++
	s.Sum = s.Sum.Add(x.Dec)
}

// Merge folds o.
func (s *StatsState) Merge(os State) {
	o := os.(*StatsState)
	if o.N == 0 {
		return
	}
	if s.N == 0 {
		s.Min, s.Max, s.First, s.Last = o.Min, o.Max, o.First, o.Last
	} else {
		s.Min = math.Min(s.Min, o.Min)
		s.Max = math.Max(s.Max, o.Max)
		if o.First.before(s.First) {
			s.First = o.First
		}
		if s.Last.before(o.Last) {
			s.Last = o.Last
		}
	}
	s.N += o.N
	s.Sum = s.Sum.Add(o.Sum)
}

// Clone returns a copy of s. A Decimal is immutable, so the copy shares
// nothing that changes.
func (s *StatsState) Clone() State {
	c := *s
	return &c
}

func (s *StatsState) appendPayload(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(s.N))
	b = appendDecimal(b, s.Sum)
	b = appendFloat(b, s.Min)
	b = appendFloat(b, s.Max)
	for _, p := range [2]Point{s.First, s.Last} {
		b = binary.AppendVarint(b, p.Time)
		b = binary.AppendUvarint(b, uint64(p.Seq))
		b = appendFloat(b, p.Value)
	}
	return b
}

func decodeStats(_ byte, r *reader) State {
	s := new(StatsState)
	s.N = int64(r.uvarint())
	s.Sum = decodeDecimal(r)
	s.readExtremes(r)
	return s
}

// readExtremes reads the min, max, first and last, written alike in every
// version.
func (s *StatsState) readExtremes(r *reader) {
	s.Min, s.Max = r.float(), r.float()
	for _, p := range []*Point{&s.First, &s.Last} {
		p.Time = r.varint()
		p.Seq = int64(r.uvarint())
		p.Value = r.float()
	}
}

// decodeLegacyStats reads a state written before states carried a kind
// and a version: the stats state with its sum as binary partials. The sum
// becomes the decimal of the partials' correctly rounded total, the value
// the period showed.
func decodeLegacyStats(r *reader) State {
	s := new(StatsState)
	s.N = int64(r.uvarint())
	n := r.uvarint()
	if n > 64 {
		r.fail()
		return nil
	}
	partials := make([]float64, 0, n)
	for i := uint64(0); i < n; i++ {
		partials = append(partials, r.float())
	}
	s.Sum = DecimalOf(partialsTotal(partials))
	s.readExtremes(r)
	return s
}

// partialsTotal is the correctly rounded total of non-overlapping binary
// partials, as the sums of states before decimals kept them (Shewchuk's
// algorithm, as Python's math.fsum), clamped to the finite range.
func partialsTotal(p []float64) float64 {
	n := len(p)
	if n == 0 {
		return 0
	}
	for _, x := range p {
		if math.IsInf(x, 0) {
			return math.Copysign(math.MaxFloat64, x)
		}
	}
	n--
	hi := p[n]
	lo := 0.0
	for n > 0 {
		x := hi
		n--
		y := p[n]
		hi = x + y
		yr := hi - x
		lo = y - yr
		if lo != 0 {
			break
		}
	}
	if n > 0 && ((lo < 0 && p[n-1] < 0) || (lo > 0 && p[n-1] > 0)) {
		y := lo * 2
		x := hi + y
		if y == x-hi {
			hi = x
		}
	}
	return clampFinite(hi)
}
