package odometer

import (
	"encoding/binary"
	"errors"
	"math"
	"math/big"
)

// Op is how a meter combines the values of its events within a period.
type Op string

// Sample is what one event gives one meter: its time, its arrival order,
// its number (as a double and exactly), its text, and its group.
type Sample struct {
	Time int64 // Unix milliseconds
	Seq  int64
	Num  float64
	Dec  Decimal
	// Text is the value's JSON text (a string as itself), for ops that
	// count distinct values.
	Text string
	// Group is the key of the sample's group, for a grouped meter.
	Group string
}

// State is the mergeable partial aggregate of one meter over a span of
// time: enough to answer its op exactly, whatever the split of events
// into runs. Each op's state lives in the op's own file.
type State interface {
	// Add folds one sample.
	Add(s *Sample)
	// Merge folds o, a state of the same kind.
	Merge(o State)
	// Count is the number of samples folded.
	Count() int64
	Clone() State
	kind() stateKind
	// appendPayload appends the encoding of the state, after its kind
	// and version bytes.
	appendPayload(b []byte) []byte
}

// stateKind tags a state's encoding: one byte per kind of state.
type stateKind byte

// input is what an op needs of each event.
type input int

const (
	inputNone   input = iota // only that it happened (count)
	inputNumber              // a number
	inputText                // a value of any JSON type, by its text
)

// opDef is one op: its state, the input it needs, and its answer.
type opDef struct {
	op    Op
	kind  stateKind
	input input
	// value answers the op over a state of its kind, for a span; an
	// empty state answers 0.
	value func(State, valueContext) float64
}

// valueContext is what an op's answer may depend on besides its state: the
// span of the state (Unix milliseconds, [start, end)) and the meter's unit
// of time in milliseconds.
type valueContext struct {
	start, end int64
	unit       int64
}

// stateCodec makes and decodes the states of one kind.
type stateCodec struct {
	kind    stateKind
	version byte // the version written
	new     func() State
	// decode reads a payload of the given version; it may read every
	// version up to the one written.
	decode func(version byte, r *reader) State
}

// family is the ops that share one kind of state, and that state's codec.
type family struct {
	codec stateCodec
	ops   []opDef
}

// families is the one list of ops. Adding an op adds its file and a line
// here, and its name to the OpenAPI document's enum (a test compares
// them); the aggregator, the stores and the HTTP layer do not change. The
// gauges are the one kind of state the aggregator knows by name: their
// value depends on the periods before (carry.go).
var families = []*family{
	&statsFamily,
	&uniqueFamily,
	&quantileFamily,
	&gaugeFamily,
}

var (
	opsByName   = map[Op]*opDef{}
	codecByKind = map[stateKind]*stateCodec{}
	// Ops lists every op, in the order of families.
	Ops []Op
)

func init() {
	codecByKind[groupedKind] = &groupedCodec
	for _, f := range families {
		if codecByKind[f.codec.kind] != nil {
			panic("odometer: state kind registered twice")
		}
		codecByKind[f.codec.kind] = &f.codec
		for i := range f.ops {
			d := &f.ops[i]
			d.kind = f.codec.kind
			opsByName[d.op] = d
			Ops = append(Ops, d.op)
		}
	}
}

func validOp(op Op) bool { return opsByName[op] != nil }

// NewState returns an empty state for op, nil for an unknown op.
func NewState(op Op) State {
	d := opsByName[op]
	if d == nil {
		return nil
	}
	return codecByKind[d.kind].new()
}

// Value answers op over s, a state of a span that does not matter to op
// (any op but the gauges'). A state of another kind than op's answers 0.
func Value(op Op, s State) float64 {
	return value(op, s, valueContext{unit: gaugeUnits[DefaultGaugeUnit]})
}

func value(op Op, s State, c valueContext) float64 {
	d := opsByName[op]
	if d == nil || s == nil {
		return 0
	}
	if g, ok := s.(*groupedState); ok {
		if g.inner == gaugeKind {
			return groupedGaugeValue(d, g, c)
		}
		s = g.total()
	}
	if s.kind() != d.kind {
		return 0
	}
	return d.value(s, c)
}

// ratFloat returns the double nearest to r, within the finite range.
func ratFloat(r *big.Rat) float64 {
	f, _ := r.Float64()
	return clampFinite(f)
}

// sameKind reports whether a and b are states of one kind, which merge:
// for grouped states, of one kind inside too. A meter whose definition
// changed while the server was stopped meets states of another kind under
// its name; they are replaced, never merged.
func sameKind(a, b State) bool {
	if a.kind() != b.kind() {
		return false
	}
	if ga, ok := a.(*groupedState); ok {
		return ga.inner == b.(*groupedState).inner
	}
	return true
}

var errState = errors.New("corrupt aggregate state")

// AppendState appends s's kind, version and payload to b.
func AppendState(b []byte, s State) []byte {
	c := codecByKind[s.kind()]
	b = append(b, byte(c.kind), c.version)
	return s.appendPayload(b)
}

// DecodeState decodes one state that AppendState wrote, and returns the
// rest of b.
func DecodeState(b []byte) (State, []byte, error) {
	r := &reader{b: b}
	s := decodeState(r)
	if r.err {
		return nil, nil, errState
	}
	return s, r.b, nil
}

// readState reads one state: of the format before states carried a kind
// (legacy: the template's state), or with its kind and version.
func readState(r *reader, legacy bool) State {
	if legacy {
		return decodeLegacyStats(r)
	}
	return decodeState(r)
}

func decodeState(r *reader) State {
	k := stateKind(r.byte())
	v := r.byte()
	c := codecByKind[k]
	if r.err || c == nil || v == 0 || v > c.version {
		r.fail()
		return nil
	}
	s := c.decode(v, r)
	if r.err {
		return nil
	}
	return s
}

// reader reads an encoding; the first error sticks, and every read after
// it returns zero.
type reader struct {
	b    []byte
	err  bool
	last byte
}

func (r *reader) fail() { r.err, r.b = true, nil }

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	r.last = r.b[0]
	r.b = r.b[1:]
	return r.last
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) float() float64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// count reads a count of items that each take at least one byte: a count
// larger than what is left is corrupt, and must not size an allocation.
func (r *reader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	return int(n)
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
