package odometer_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/odometer-dev/odometer"
)

// rankingOf builds a ranking from values by customer, as RankUsage sorts.
func rankingOf(vals map[string]float64) odometer.UsageRanking {
	var r odometer.UsageRanking
	for id, v := range vals {
		r = append(r, odometer.CustomerUsage{CustomerID: id, Value: v, Count: 1})
	}
	// Ascending by value, ties by id: a small insertion sort.
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && (r[j].Value < r[j-1].Value || (r[j].Value == r[j-1].Value && r[j].CustomerID < r[j-1].CustomerID)); j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
	return r
}

// TestUsageRanking_Page: paging one at a time visits every customer once,
// in order, both ways, ties included; descending is ascending reversed.
func TestUsageRanking_Page(t *testing.T) {
	r := rankingOf(map[string]float64{"a": 3, "b": 1, "c": 3, "d": 0, "e": 3, "f": 2.5})
	walk := func(f odometer.UsageFilter) string {
		var ids []string
		for pages := 0; pages < 20; pages++ {
			us, next, err := r.Page(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range us {
				ids = append(ids, u.CustomerID)
			}
			if next == "" {
				return strings.Join(ids, " ")
			}
			f.Cursor = next
		}
		t.Fatal("paging does not end")
		return ""
	}
	for _, limit := range []int{1, 2, 4, 100} {
		if got, want := walk(odometer.UsageFilter{Limit: limit}), "d b f a c e"; got != want {
			t.Errorf("ascending by %d: %s, want %s", limit, got, want)
		}
		if got, want := walk(odometer.UsageFilter{Limit: limit, Desc: true}), "e c a f b d"; got != want {
			t.Errorf("descending by %d: %s, want %s", limit, got, want)
		}
	}
	if got, want := walk(odometer.UsageFilter{Limit: 1, Desc: true, Q: "c"}), "c"; got != want {
		t.Errorf("q=c: %s, want %s", got, want)
	}
	// A cursor from a ranking read before: the page goes on after its place.
	us, next, _ := r.Page(odometer.UsageFilter{Limit: 2, Desc: true})
	if len(us) != 2 || next == "" {
		t.Fatalf("first page %v, next %q", us, next)
	}
	r2 := rankingOf(map[string]float64{"a": 3, "b": 1, "c": 3, "d": 0, "e": 3, "f": 2.5, "bb": 3})
	us, _, _ = r2.Page(odometer.UsageFilter{Limit: 10, Desc: true, Cursor: next})
	var ids []string
	for _, u := range us {
		ids = append(ids, u.CustomerID)
	}
	if got, want := fmt.Sprint(ids), "[bb a f b d]"; got != want {
		t.Errorf("after the cursor, in a ranking read again: %s, want %s", got, want)
	}
	for _, bad := range []string{"%%%", "bm90IGEgbnVtYmVy", "MSA"} { // "not a number", "1 " (no id)
		if _, _, err := r.Page(odometer.UsageFilter{Limit: 1, Cursor: bad}); odometer.ErrorCode(err) != odometer.EINVALID {
			t.Errorf("cursor %q: %v, want EINVALID", bad, err)
		}
	}
}

func TestConfig_CyclePeriod(t *testing.T) {
	for _, tc := range []struct {
		periods string
		want    odometer.Period
	}{{`["daily", "monthly", "billing"]`, odometer.Billing}, {`["monthly"]`, odometer.Monthly}, {`["daily"]`, ""}} {
		cfg, err := odometer.ParseConfig("c.json", []byte(`{"periods": `+tc.periods+`, "events": {"a": {"op": "sum"}}}`))
		if err != nil {
			t.Fatal(err)
		}
		p, err := cfg.CyclePeriod()
		if p != tc.want || (tc.want == "") != (odometer.ErrorCode(err) == odometer.EINVALID) {
			t.Errorf("periods %s: %q, %v; want %q", tc.periods, p, err, tc.want)
		}
	}
}
