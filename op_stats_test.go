package odometer_test

import (
	"bytes"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/odometer-dev/odometer"
)

// num is the sample an event of value v at time t, arrival seq, gives a
// meter over its value.
func num(v float64, t, seq int64) *odometer.Sample {
	return &odometer.Sample{Time: t, Seq: seq, Num: v, Dec: odometer.DecimalOf(v), Text: strconv.FormatFloat(v, 'g', -1, 64)}
}

// decimalReference is the reference for sums: the exact rational total of
// the shortest decimal of each value, rounded once to the nearest double
// by math/big.
func decimalReference(xs []float64) *big.Rat {
	acc := new(big.Rat)
	for _, x := range xs {
		r, ok := new(big.Rat).SetString(strconv.FormatFloat(x, 'g', -1, 64))
		if !ok {
			panic("reference: bad float")
		}
		acc.Add(acc, r)
	}
	return acc
}

func ratFloat(r *big.Rat) float64 {
	f, _ := r.Float64()
	return f
}

type stateInput struct {
	value float64
	time  int64
	seq   int64
}

var statsTests = []struct {
	name   string
	events []stateInput
	want   map[odometer.Op]float64
}{
	{
		name: "Empty",
		want: map[odometer.Op]float64{odometer.OpSum: 0, odometer.OpAvg: 0, odometer.OpMin: 0, odometer.OpMax: 0, odometer.OpCount: 0, odometer.OpFirst: 0, odometer.OpLast: 0},
	},
	{
		name:   "OneEvent",
		events: []stateInput{{42.5, 1000, 1}},
		want:   map[odometer.Op]float64{odometer.OpSum: 42.5, odometer.OpAvg: 42.5, odometer.OpMin: 42.5, odometer.OpMax: 42.5, odometer.OpCount: 1, odometer.OpFirst: 42.5, odometer.OpLast: 42.5},
	},
	{
		name:   "Mixed",
		events: []stateInput{{3, 2000, 1}, {-1.5, 1000, 2}, {2.25, 5000, 3}, {-7, 3000, 4}, {10, 4000, 5}},
		want:   map[odometer.Op]float64{odometer.OpSum: 6.75, odometer.OpAvg: 1.35, odometer.OpMin: -7, odometer.OpMax: 10, odometer.OpCount: 5, odometer.OpFirst: -1.5, odometer.OpLast: 2.25},
	},
	{
		name:   "AllNegative",
		events: []stateInput{{-1, 1, 1}, {-2, 2, 2}, {-3, 3, 3}},
		want:   map[odometer.Op]float64{odometer.OpSum: -6, odometer.OpAvg: -2, odometer.OpMin: -3, odometer.OpMax: -1, odometer.OpCount: 3, odometer.OpFirst: -1, odometer.OpLast: -3},
	},
	{
		// Decimal, not binary: the average of 0.1 and 0.2 is 0.15.
		name:   "Decimals",
		events: []stateInput{{0.1, 1, 1}, {0.2, 2, 2}},
		want:   map[odometer.Op]float64{odometer.OpSum: 0.3, odometer.OpAvg: 0.15, odometer.OpMin: 0.1, odometer.OpMax: 0.2, odometer.OpCount: 2, odometer.OpFirst: 0.1, odometer.OpLast: 0.2},
	},
	{
		name:   "EqualTimesBySeq",
		events: []stateInput{{5, 1000, 7}, {6, 1000, 3}, {7, 1000, 9}, {8, 1000, 5}},
		want:   map[odometer.Op]float64{odometer.OpSum: 26, odometer.OpAvg: 6.5, odometer.OpMin: 5, odometer.OpMax: 8, odometer.OpCount: 4, odometer.OpFirst: 6, odometer.OpLast: 7},
	},
	{
		name:   "TimeBeforeSeq",
		events: []stateInput{{1, 2000, 1}, {2, 1000, 2}, {3, 3000, 3}, {4, 2500, 4}},
		want:   map[odometer.Op]float64{odometer.OpSum: 10, odometer.OpAvg: 2.5, odometer.OpMin: 1, odometer.OpMax: 4, odometer.OpCount: 4, odometer.OpFirst: 2, odometer.OpLast: 3},
	},
	{
		// 1e16 + 1 - 1e16 is 0 in float64 steps.
		name:   "Cancellation",
		events: []stateInput{{1e16, 1, 1}, {1, 2, 2}, {-1e16, 3, 3}},
		want:   map[odometer.Op]float64{odometer.OpSum: 1, odometer.OpAvg: 1.0 / 3, odometer.OpMin: -1e16, odometer.OpMax: 1e16, odometer.OpCount: 3, odometer.OpFirst: 1e16, odometer.OpLast: -1e16},
	},
}

var statsOps = []odometer.Op{odometer.OpSum, odometer.OpAvg, odometer.OpMin, odometer.OpMax, odometer.OpCount, odometer.OpFirst, odometer.OpLast}

func TestStats_Value(t *testing.T) {
	for _, tt := range statsTests {
		t.Run(tt.name, func(t *testing.T) {
			// Folded one by one, and in two halves merged in both orders.
			one, a, b := odometer.NewState(odometer.OpSum), odometer.NewState(odometer.OpSum), odometer.NewState(odometer.OpSum)
			for i, e := range tt.events {
				one.Add(num(e.value, e.time, e.seq))
				if i%2 == 0 {
					a.Add(num(e.value, e.time, e.seq))
				} else {
					b.Add(num(e.value, e.time, e.seq))
				}
			}
			ab, ba := a.Clone(), b.Clone()
			ab.Merge(b)
			ba.Merge(a)
			for _, s := range []struct {
				how   string
				state odometer.State
			}{{"added", one}, {"merged a+b", ab}, {"merged b+a", ba}} {
				for _, op := range statsOps {
					if got, want := odometer.Value(op, s.state), tt.want[op]; got != want {
						t.Errorf("%s: %s = %v, want %v", s.how, op, got, want)
					}
				}
				if got, want := s.state.Count(), int64(len(tt.events)); got != want {
					t.Errorf("%s: Count = %d, want %d", s.how, got, want)
				}
				if !bytes.Equal(odometer.AppendState(nil, s.state), odometer.AppendState(nil, one)) {
					t.Errorf("%s: encoding differs from the state folded one by one", s.how)
				}
			}
		})
	}
}

func TestValue_UnknownOpOrKind(t *testing.T) {
	s := odometer.NewState(odometer.OpSum)
	s.Add(num(5, 1, 1))
	if got := odometer.Value(odometer.Op("median"), s); got != 0 {
		t.Errorf("Value(median) = %v, want 0", got)
	}
	if got := odometer.Value(odometer.OpP95, s); got != 0 {
		t.Errorf("p95 of a stats state = %v, want 0", got)
	}
	if odometer.NewState("median") != nil {
		t.Error("NewState(median) is not nil")
	}
}

func TestDecimal_Sums(t *testing.T) {
	sum := func(xs ...float64) odometer.State {
		s := odometer.NewState(odometer.OpSum)
		for i, x := range xs {
			s.Add(num(x, int64(i), int64(i)))
		}
		return s
	}
	repeat := func(x float64, n int) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = x
		}
		return xs
	}
	for _, tt := range []struct {
		name string
		xs   []float64
		op   odometer.Op
		want float64
	}{
		{"TenTenths", repeat(0.1, 10), odometer.OpSum, 1},
		{"PointOnePlusPointTwo", []float64{0.1, 0.2}, odometer.OpSum, 0.3},
		{"AverageOfTenths", []float64{0.1, 0.2}, odometer.OpAvg, 0.15},
		{"MillionCents", repeat(0.01, 1_000_000), odometer.OpSum, 10000},
		{"IntegersPast2Pow53", []float64{1 << 53, 1, 1}, odometer.OpSum, 1<<53 + 2},
		{"TieToEven", []float64{1 << 53, 1}, odometer.OpSum, 1 << 53},
		{"TieBrokenByTiny", []float64{1 << 53, 1, 1e-300}, odometer.OpSum, 1<<53 + 2},
		{"HugeKeepsMagnitude", []float64{1e300, 1e300, -1e300}, odometer.OpSum, 1e300},
		{"TinyKeepsMagnitude", []float64{1e-300, 2e-300}, odometer.OpSum, 3e-300},
		{"HugeAndTiny", []float64{1e300, 1e-300, -1e300}, odometer.OpSum, 1e-300},
		{"Subnormal", []float64{5e-324, 5e-324}, odometer.OpSum, 1e-323},
		{"Overflow", repeat(1e300, 100_000), odometer.OpSum, 1e305},
		{"BeyondDouble", nil, odometer.OpSum, math.MaxFloat64},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := sum(tt.xs...)
			if tt.xs == nil {
				// 1e300 doubled 30 times: beyond the largest double.
				s = sum(1e300)
				for i := 0; i < 30; i++ {
					s.Merge(s.Clone())
				}
			}
			if got := odometer.Value(tt.op, s); got != tt.want {
				t.Errorf("%s = %v, want %v", tt.op, got, tt.want)
			}
		})
	}
}

// hardValue draws values that make summation hard: decimals, integers,
// negatives, and magnitudes far apart.
func hardValue(rng *rand.Rand) float64 {
	switch rng.IntN(7) {
	case 0:
		return float64(rng.IntN(2001) - 1000)
	case 1:
		return float64(rng.IntN(200001)-100000) / 100
	case 2:
		return rng.NormFloat64() * 1e6
	case 3:
		return (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(40)-20))
	case 4:
		return float64(rng.Int64N(1<<53)) * float64(1-2*rng.IntN(2))
	case 5:
		return 0.1 * float64(rng.IntN(10))
	default:
		return math.Ldexp(rng.Float64()-0.5, rng.IntN(200)-100)
	}
}

func TestDecimal_MatchesExactReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 300; round++ {
		n := 1 + rng.IntN(300)
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = hardValue(rng)
		}
		ref := decimalReference(xs)
		whole := odometer.NewState(odometer.OpSum)
		for i, x := range xs {
			whole.Add(num(x, int64(i), int64(i)))
		}
		if got, want := odometer.Value(odometer.OpSum, whole), ratFloat(ref); math.Float64bits(got) != math.Float64bits(want) && !(got == 0 && want == 0) {
			t.Fatalf("round %d: sum = %v, want %v", round, got, want)
		}
		avg := new(big.Rat).Quo(ref, new(big.Rat).SetInt64(int64(n)))
		if got, want := odometer.Value(odometer.OpAvg, whole), ratFloat(avg); got != want {
			t.Fatalf("round %d: avg = %v, want %v", round, got, want)
		}
		// Any split, merged in any order, gives the same bytes.
		parts := make([]odometer.State, 1+rng.IntN(8))
		for i := range parts {
			parts[i] = odometer.NewState(odometer.OpSum)
		}
		for i, x := range xs {
			parts[rng.IntN(len(parts))].Add(num(x, int64(i), int64(i)))
		}
		merged := odometer.NewState(odometer.OpSum)
		for _, i := range rng.Perm(len(parts)) {
			merged.Merge(parts[i])
		}
		if !bytes.Equal(odometer.AppendState(nil, merged), odometer.AppendState(nil, whole)) {
			t.Fatalf("round %d: merged state of %d parts differs from the whole", round, len(parts))
		}
	}
}

func TestParseDecimal(t *testing.T) {
	for _, tt := range []struct {
		in   string
		ok   bool
		want float64
	}{
		{"0.1", true, 0.1}, {"-0", true, 0}, {"+2.50", true, 2.5}, {"1e21", true, 1e21}, {"1E-7", true, 1e-7},
		{"123456789012345678901234567890", true, 1.2345678901234568e29},
		{"1e301", false, 0}, {"", false, 0}, {"abc", false, 0}, {"1.", false, 0}, {".5", false, 0}, {"0x10", false, 0},
		{"1e", false, 0}, {"--1", false, 0}, {"NaN", false, 0}, {"Infinity", false, 0},
	} {
		d, ok := odometer.ParseDecimal(tt.in)
		if ok != tt.ok || (ok && d.Float64() != tt.want) {
			t.Errorf("ParseDecimal(%q) = %v, %v; want %v, %v", tt.in, d, ok, tt.want, tt.ok)
		}
	}
}

func TestLegacyStates(t *testing.T) {
	// Written by the release before states carried a kind: the stats
	// state with a binary exact sum. Each reads as the decimal of the
	// value it showed.
	b, err := readHexLines("testdata/states/v1-legacy.hex")
	if err != nil {
		t.Fatal(err)
	}
	states, err := odometer.DecodeStates(b[0])
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]map[odometer.Op]float64{
		"api.calls":        {odometer.OpSum: 1.5, odometer.OpCount: 10, odometer.OpAvg: 0.15, odometer.OpMin: 0.1, odometer.OpMax: 0.2, odometer.OpFirst: 0.1, odometer.OpLast: 0.2},
		"storage.bytes":    {odometer.OpSum: 1e300, odometer.OpCount: 3, odometer.OpMin: -2.5, odometer.OpMax: 1e300, odometer.OpFirst: 1e-300, odometer.OpLast: -2.5},
		"response.time.ms": {odometer.OpSum: 7, odometer.OpCount: 1},
	} {
		s := states[name]
		if s == nil {
			t.Fatalf("no state %s", name)
		}
		for op, w := range want {
			if got := odometer.Value(op, s); got != w {
				t.Errorf("%s: %s = %v, want %v", name, op, got, w)
			}
		}
	}
	// New events fold into a legacy state, in decimal.
	s := states["api.calls"]
	s.Add(num(0.1, 1, 99))
	if got := odometer.Value(odometer.OpSum, s); got != 1.6 {
		t.Errorf("legacy sum + 0.1 = %v, want 1.6", got)
	}
	slots := map[int64]odometer.State{}
	if err := odometer.DecodeSlots(1763000000000/3600000, b[1], slots); err != nil || len(slots) != 1 {
		t.Fatalf("legacy slots: %v, %d slots", err, len(slots))
	}
	for _, st := range slots {
		if got := odometer.Value(odometer.OpSum, st); got != 1.5 {
			t.Errorf("legacy slot sum = %v, want 1.5", got)
		}
	}
	// Written again, they are in the new format, and read back the same.
	again, err := odometer.DecodeStates(odometer.EncodeStates(states))
	if err != nil || odometer.Value(odometer.OpSum, again["api.calls"]) != 1.6 {
		t.Fatalf("re-encoded legacy states: %v", err)
	}
}
