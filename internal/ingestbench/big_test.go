package ingestbench

import (
	"os"
	"strconv"
	"testing"
)

// TestBuildBigStore builds the cached stores of the large benchmarks ahead
// of them: ODOMETER_BENCH_BUILD=10000000,100000000.
func TestBuildBigStore(t *testing.T) {
	v := os.Getenv("ODOMETER_BENCH_BUILD")
	if v == "" {
		t.Skip("ODOMETER_BENCH_BUILD names the sizes to build")
	}
	for _, f := range splitComma(v) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Log(BigStore(t, n))
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
