package odometer

import (
	"encoding/binary"
	"sort"
)

// OpUnique counts the distinct values of a period, exactly.
const OpUnique Op = "unique"

const uniqueKind stateKind = 'U'

var uniqueFamily = family{
	codec: stateCodec{kind: uniqueKind, version: 1, new: func() State { return new(uniqueState) }, decode: decodeUnique},
	ops: []opDef{
		{op: OpUnique, input: inputText, value: func(s State, _ valueContext) float64 { return float64(len(s.(*uniqueState).set)) }},
	},
}

// uniqueState is the sorted set of the distinct values seen (each by its
// JSON text), and the count of samples. Its cost grows with the distinct
// values of its span: an exact count has no cheaper state.
type uniqueState struct {
	n   int64
	set []string
}

func (s *uniqueState) kind() stateKind { return uniqueKind }
func (s *uniqueState) Count() int64    { return s.n }

func (s *uniqueState) Add(x *Sample) {
	s.n++
	i := sort.SearchStrings(s.set, x.Text)
	if i < len(s.set) && s.set[i] == x.Text {
		return
	}
	s.set = append(s.set, "")
	copy(s.set[i+1:], s.set[i:])
	s.set[i] = x.Text
}

// Merge takes the union of both sets.
func (s *uniqueState) Merge(os State) {
	o := os.(*uniqueState)
	s.n += o.n
	if len(o.set) == 0 {
		return
	}
	out := make([]string, 0, len(s.set)+len(o.set))
	i, j := 0, 0
	for i < len(s.set) && j < len(o.set) {
		switch {
		case s.set[i] < o.set[j]:
			out = append(out, s.set[i])
			i++
		case s.set[i] > o.set[j]:
			out = append(out, o.set[j])
			j++
		default:
			out = append(out, s.set[i])
			i, j = i+1, j+1
		}
	}
	out = append(out, s.set[i:]...)
	s.set = append(out, o.set[j:]...)
}

func (s *uniqueState) Clone() State {
	return &uniqueState{n: s.n, set: append([]string(nil), s.set...)}
}

func (s *uniqueState) appendPayload(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(s.n))
	b = binary.AppendUvarint(b, uint64(len(s.set)))
	for _, v := range s.set {
		b = appendString(b, v)
	}
	return b
}

func decodeUnique(_ byte, r *reader) State {
	s := &uniqueState{n: int64(r.uvarint())}
	n := r.count()
	s.set = make([]string, 0, n)
	for i := 0; i < n && !r.err; i++ {
		v := string(r.bytes(r.uvarint()))
		if len(s.set) > 0 && v <= s.set[len(s.set)-1] {
			r.fail() // the set is written sorted and without repeats
			return nil
		}
		s.set = append(s.set, v)
	}
	return s
}
