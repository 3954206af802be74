package odometer

import (
	"math"
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
