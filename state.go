package odometer

import (
	"encoding/binary"
	"errors"
	"math"
)

// Sum is an exact running sum of float64 values: a list of non-overlapping
// partials whose exact total is the sum of everything added (Shewchuk's
// algorithm, as Python's math.fsum). Unlike compensated (Kahan or Neumaier)
// summation, which it subsumes, merging two Sums is exact, so a total never
// depends on how the events were split into runs: incremental aggregation
// equals a from-scratch computation to the last bit. Its Value is the
// correctly rounded total: ten 0.1 sum to 1, a million 0.01 to 10000, and
// integers are exact up to 2^53.
type Sum struct {
	p []float64
}

// Add adds x exactly.
func (s *Sum) Add(x float64) {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return // refused at the door; never stored
	}
	i := 0
	for _, y := range s.p {
		if math.Abs(x) < math.Abs(y) {
			x, y = y, x
		}
		hi := x + y
		lo := y - (hi - x)
		if lo != 0 {
			s.p[i] = lo
			i++
		}
		x = hi
	}
	s.p = append(s.p[:i], x)
}

// Merge adds the exact total of o.
func (s *Sum) Merge(o *Sum) {
	for _, x := range o.p {
		s.Add(x)
	}
}

// Value returns the correctly rounded total. A total beyond the range of
// float64 is clamped to ±math.MaxFloat64 (values are limited to ±1e300 at
// the door, so that takes about 1e8 events of the largest value).
func (s *Sum) Value() float64 {
	v := s.value()
	switch {
	case math.IsNaN(v):
		// Partials overflowed on the way; the exact total's sign is that
		// of the largest partial.
		for _, x := range s.p {
			if math.IsInf(x, 0) {
				return math.Copysign(math.MaxFloat64, x)
			}
		}
		return 0
	case math.IsInf(v, 0):
		return math.Copysign(math.MaxFloat64, v)
	}
	return v
}

func (s *Sum) value() float64 {
	n := len(s.p)
	if n == 0 {
		return 0
	}
	n--
	hi := s.p[n]
	lo := 0.0
	for n > 0 {
		x := hi
		n--
		y := s.p[n]
		hi = x + y
		yr := hi - x
		lo = y - yr
		if lo != 0 {
			break
		}
	}
	// Round half-even across the remaining partials, as fsum does.
	if n > 0 && ((lo < 0 && s.p[n-1] < 0) || (lo > 0 && s.p[n-1] > 0)) {
		y := lo * 2
		x := hi + y
		if y == x-hi {
			hi = x
		}
	}
	return hi
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

// State is the mergeable partial aggregate of one event type over a span
// of time: enough to answer every op exactly, whatever the split.
type State struct {
	Count       int64
	Sum         Sum
	Min, Max    float64
	First, Last Point
}

// Add folds one event into s.
func (s *State) Add(v float64, t, seq int64) {
	p := Point{t, seq, v}
	if s.Count == 0 {
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
	s.Count++
	s.Sum.Add(v)
}

// Merge folds o into s.
func (s *State) Merge(o *State) {
	if o.Count == 0 {
		return
	}
	if s.Count == 0 {
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
	s.Count += o.Count
	s.Sum.Merge(&o.Sum)
}

// Value is the op's answer over s. An empty state answers 0.
func (s *State) Value(op Op) float64 {
	if s.Count == 0 {
		return 0
	}
	switch op {
	case OpSum:
		return s.Sum.Value()
	case OpAvg:
		return s.Sum.Value() / float64(s.Count)
	case OpMin:
		return s.Min
	case OpMax:
		return s.Max
	case OpCount:
		return float64(s.Count)
	case OpFirst:
		return s.First.Value
	case OpLast:
		return s.Last.Value
	}
	return 0
}

// AppendBinary appends the encoding of s to b.
func (s *State) AppendBinary(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(s.Count))
	b = binary.AppendUvarint(b, uint64(len(s.Sum.p)))
	for _, x := range s.Sum.p {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.Min))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.Max))
	for _, p := range [2]Point{s.First, s.Last} {
		b = binary.AppendVarint(b, p.Time)
		b = binary.AppendUvarint(b, uint64(p.Seq))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Value))
	}
	return b
}

var errState = errors.New("corrupt aggregate state")

// DecodeState decodes one state from b and returns the rest of b.
func DecodeState(b []byte, s *State) ([]byte, error) {
	u := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	f := func() float64 {
		if len(b) < 8 {
			b = nil
			return 0
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
		return v
	}
	if len(b) == 0 {
		return nil, errState
	}
	s.Count = int64(u())
	n := u()
	if n > 64 || b == nil {
		return nil, errState
	}
	s.Sum.p = make([]float64, 0, n+1)
	for i := uint64(0); i < n; i++ {
		s.Sum.p = append(s.Sum.p, f())
	}
	s.Min, s.Max = f(), f()
	for _, p := range []*Point{&s.First, &s.Last} {
		if b == nil {
			return nil, errState
		}
		t, k := binary.Varint(b)
		if k <= 0 {
			return nil, errState
		}
		b = b[k:]
		p.Time = t
		p.Seq = int64(u())
		p.Value = f()
	}
	if b == nil {
		return nil, errState
	}
	return b, nil
}

func (s *State) clone() *State {
	c := *s
	c.Sum.p = append([]float64(nil), s.Sum.p...)
	return &c
}
