package odometer

import (
	"encoding/binary"
	"math"
	"sort"
)

// The quantile ops: a period's 50th, 90th, 95th and 99th percentile,
// within 1% relative error.
const (
	OpP50 Op = "p50"
	OpP90 Op = "p90"
	OpP95 Op = "p95"
	OpP99 Op = "p99"
)

const quantileKind stateKind = 'Q'

// QuantileAccuracy is the relative accuracy of the quantile sketch: the
// answer is within this fraction of the value of the right rank.
const QuantileAccuracy = 0.005

var (
	sketchGamma   = (1 + QuantileAccuracy) / (1 - QuantileAccuracy)
	sketchLnGamma = math.Log(sketchGamma)
)

func quantileOp(op Op, q float64) opDef {
	return opDef{op: op, input: inputNumber, value: func(s State, _ valueContext) float64 { return s.(*sketchState).quantile(q) }}
}

var quantileFamily = family{
	codec: stateCodec{kind: quantileKind, version: 1, new: newSketch, decode: decodeSketch},
	ops:   []opDef{quantileOp(OpP50, 0.50), quantileOp(OpP90, 0.90), quantileOp(OpP95, 0.95), quantileOp(OpP99, 0.99)},
}

// sketchState is a log-bucketed quantile sketch (DDSketch's scheme): a
// value x > 0 counts in bin ceil(log_γ x), a negative one in the bin of
// -x among the negative bins, zero on its own. Counts are integers, so
// merging is exact and does not depend on order. The exact min and max
// bound the answer.
type sketchState struct {
	n        int64
	zero     int64
	pos, neg map[int32]int64
	min, max float64
}

func newSketch() State { return &sketchState{pos: map[int32]int64{}, neg: map[int32]int64{}} }

func (s *sketchState) kind() stateKind { return quantileKind }
func (s *sketchState) Count() int64    { return s.n }

func sketchIndex(x float64) int32 { return int32(math.Ceil(math.Log(x) / sketchLnGamma)) }

func sketchValue(i int32) float64 {
	return 2 * math.Exp(float64(i)*sketchLnGamma) / (sketchGamma + 1)
}

func (s *sketchState) Add(x *Sample) {
	v := x.Num
	switch {
	case v > 0:
		s.pos[sketchIndex(v)]++
	case v < 0:
		s.neg[sketchIndex(-v)]++
	default:
		s.zero++
	}
	if s.n == 0 || v < s.min {
		s.min = v
	}
	if s.n == 0 || v > s.max {
		s.max = v
	}
	s.n++
}

func (s *sketchState) Merge(os State) {
	o := os.(*sketchState)
	if o.n == 0 {
		return
	}
	for i, c := range o.pos {
		s.pos[i] += c
	}
	for i, c := range o.neg {
		s.neg[i] += c
	}
	if s.n == 0 || o.min < s.min {
		s.min = o.min
	}
	if s.n == 0 || o.max > s.max {
		s.max = o.max
	}
	s.zero += o.zero
	s.n += o.n
}

func (s *sketchState) Clone() State {
	c := &sketchState{n: s.n, zero: s.zero, min: s.min, max: s.max, pos: make(map[int32]int64, len(s.pos)), neg: make(map[int32]int64, len(s.neg))}
	for i, n := range s.pos {
		c.pos[i] = n
	}
	for i, n := range s.neg {
		c.neg[i] = n
	}
	return c
}

// quantile returns the value of rank floor(q·(n−1)) in sorted order, as
// its bin's midpoint, within the exact min and max (the value itself when
// the rank is the first or the last).
func (s *sketchState) quantile(q float64) float64 {
	rank := int64(q * float64(s.n-1))
	switch rank {
	case 0:
		return s.min // the smallest and largest values are known exactly
	case s.n - 1:
		return s.max
	}
	v := s.max
	var seen int64
	found := false
	for _, i := range sortedBins(s.neg, true) {
		if seen += s.neg[i]; seen > rank {
			v, found = -sketchValue(i), true
			break
		}
	}
	if !found {
		if seen += s.zero; seen > rank {
			v, found = 0, true
		}
	}
	if !found {
		for _, i := range sortedBins(s.pos, false) {
			if seen += s.pos[i]; seen > rank {
				v = sketchValue(i)
				break
			}
		}
	}
	return math.Min(math.Max(v, s.min), s.max)
}

func sortedBins(m map[int32]int64, desc bool) []int32 {
	idx := make([]int32, 0, len(m))
	for i := range m {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool {
		if desc {
			return idx[a] > idx[b]
		}
		return idx[a] < idx[b]
	})
	return idx
}

func appendBins(b []byte, m map[int32]int64) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	prev := int64(0)
	for _, i := range sortedBins(m, false) {
		b = binary.AppendVarint(b, int64(i)-prev)
		b = binary.AppendUvarint(b, uint64(m[i]))
		prev = int64(i)
	}
	return b
}

func decodeBins(r *reader) map[int32]int64 {
	n := r.count()
	m := make(map[int32]int64, n)
	prev := int64(0)
	for k := 0; k < n && !r.err; k++ {
		i := prev + r.varint()
		c := int64(r.uvarint())
		if i < math.MinInt32 || i > math.MaxInt32 || c <= 0 || (k > 0 && i <= prev) {
			r.fail()
			return nil
		}
		m[int32(i)] = c
		prev = i
	}
	return m
}

func (s *sketchState) appendPayload(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(s.n))
	b = binary.AppendUvarint(b, uint64(s.zero))
	b = appendFloat(b, s.min)
	b = appendFloat(b, s.max)
	b = appendBins(b, s.pos)
	return appendBins(b, s.neg)
}

func decodeSketch(_ byte, r *reader) State {
	s := &sketchState{n: int64(r.uvarint()), zero: int64(r.uvarint())}
	s.min, s.max = r.float(), r.float()
	s.pos = decodeBins(r)
	s.neg = decodeBins(r)
	return s
}
