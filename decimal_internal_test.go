package odometer

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestDecimalOf_FastPath: the shortcut for values with few decimals gives
// exactly the shortest decimal, as formatting does.
func TestDecimalOf_FastPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	check := func(v float64) {
		t.Helper()
		got, want := DecimalOf(v), decimalOfSlow(v)
		if v == math.Trunc(v) {
			return // integers keep exponent 0 by design
		}
		if got.String() != want.String() {
			t.Fatalf("DecimalOf(%v) = %s, shortest %s", v, got, want)
		}
	}
	for i := 0; i < 300_000; i++ {
		k := rng.IntN(9)
		check(float64(rng.Int64N(2_000_000_000_000)-1_000_000_000_000) / math.Pow(10, float64(k)))
		check((rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(14)-6)))
	}
	for _, v := range []float64{0.1, 0.2, 0.3, 1e-6, 1.5e-6, 999999.999999, -999999.5, 0.000001, 123456.789, 5e-324, 1e-7} {
		check(v)
	}
}

// TestDecimal_FloatFastPaths: the conversions without big numbers give
// the same doubles as the exact rational ones.
func TestDecimal_FloatFastPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for i := 0; i < 200_000; i++ {
		d := Decimal{c: rng.Int64N(1<<53) - 1<<52, e: int32(rng.IntN(45) - 22)}
		f, _ := d.Rat().Float64()
		if got := d.Float64(); got != f {
			t.Fatalf("%s: Float64 %v, exact %v", d, got, f)
		}
		n := 1 + rng.Int64N(1_000_000)
		r := d.Rat()
		q, _ := r.Quo(r, new(big.Rat).SetInt64(n)).Float64()
		if got := d.Quo(n); got != q {
			t.Fatalf("%s / %d: Quo %v, exact %v", d, n, got, q)
		}
	}
}

// TestParseDecimal_Bounds: a crafted exponent is refused at once, not
// turned into a number of millions of digits.
func TestParseDecimal_Bounds(t *testing.T) {
	for _, s := range []string{"1e-20000000", "1e-401", "1e302", "9e301", "-1e-30000000", "1e2147483647"} {
		if _, ok := ParseDecimal(s); ok {
			t.Errorf("ParseDecimal(%q) accepted", s)
		}
	}
	for _, s := range []string{"1e-400", "1e300", "0e-99999", "123.456e-390"} {
		if _, ok := ParseDecimal(s); !ok {
			t.Errorf("ParseDecimal(%q) refused", s)
		}
	}
	// A stored state with a corrupt exponent is corrupt, not slow.
	r := &reader{b: appendDecimal(nil, Decimal{c: 1, e: -maxStoredScale - 1})}
	if decodeDecimal(r); !r.err {
		t.Error("an exponent beyond the stored bound decoded")
	}
}
