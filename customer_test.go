package odometer_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/odometer-dev/odometer"
)

// TestCustomerPaging pages through three random sources of customer ids
// the way the stores do (each source read up to limit+1 ids past the
// cursor, the third only up to PageBound) and checks that the pages are
// the sorted union, each id once.
func TestCustomerPaging(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 500 {
		var profiles, buckets, pending []string
		for i := range 40 {
			id := fmt.Sprintf("c%02d", i)
			if r.IntN(3) == 0 {
				profiles = append(profiles, id)
			}
			if r.IntN(3) == 0 {
				buckets = append(buckets, id)
			}
			if r.IntN(3) == 0 {
				pending = append(pending, id)
			}
		}
		want := odometer.MergeIDs(profiles, buckets, pending)
		limit := 1 + r.IntN(6)
		read := func(src []string, after, upto string) []string {
			var out []string
			for _, id := range src {
				if id > after && (upto == "" || id <= upto) && len(out) <= limit {
					out = append(out, id)
				}
			}
			return out
		}
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > 50 {
				t.Fatalf("round %d: too many pages", round)
			}
			var ps []*odometer.Customer
			for _, id := range read(profiles, after, "") {
				ps = append(ps, &odometer.Customer{ID: id})
			}
			ids := read(buckets, after, "")
			more := read(pending, after, odometer.PageBound(ps, ids, limit))
			page, next := odometer.MergeCustomers(ps, odometer.MergeIDs(ids, more), limit)
			if len(page) > limit || (next != "" && len(page) != limit) {
				t.Fatalf("round %d: a page of %d with limit %d, next %q", round, len(page), limit, next)
			}
			for _, c := range page {
				got = append(got, c.ID)
			}
			if next == "" {
				break
			}
			var err error
			if after, err = odometer.DecodeCustomerCursor(next); err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d, limit %d: pages %q, want %q", round, limit, got, want)
		}
	}
}
