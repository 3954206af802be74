package odometer_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"

	"github.com/odometer-dev/odometer"
)

// TestGroupCommit: requests queued while a commit runs are committed
// together, each gets its own answer, and after Close nothing is taken.
func TestGroupCommit(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var groups []int
	first := true
	g := odometer.NewGroupCommit(func(group []*odometer.IngestRequest) {
		mu.Lock()
		groups = append(groups, len(group))
		wait := first
		first = false
		mu.Unlock()
		if wait {
			<-release // hold the first commit while more requests queue
		}
		for _, r := range group {
			r.Dup = make([]bool, len(r.Events))
			if r.Events[0].ID == "bad" {
				r.Err, r.Dup = odometer.ConflictError("bad"), nil
			}
		}
	})
	ctx := context.Background()
	var wg sync.WaitGroup
	answers := make([]error, 6)
	submit := func(i int, id string) {
		defer wg.Done()
		dup, err := g.Submit(ctx, []odometer.Event{{ID: id}})
		if err == nil && len(dup) != 1 {
			err = errors.New("no duplicate flags")
		}
		answers[i] = err
	}
	wg.Add(1)
	go submit(0, "a")
	for { // the first commit has started
		mu.Lock()
		n := len(groups)
		mu.Unlock()
		if n == 1 {
			break
		}
		runtime.Gosched()
	}
	for i, id := range []string{"b", "bad", "c", "d", "e"} {
		wg.Add(1)
		go submit(i+1, id)
	}
	for { // all five are queued behind it
		if g.Queued() == 5 {
			break
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if got, want := groups, []int{1, 5}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("groups %v, want %v", got, want)
	}
	for i, err := range answers {
		if (i == 2) != (odometer.ErrorCode(err) == odometer.ECONFLICT) || (i != 2 && err != nil) {
			t.Errorf("request %d: %v", i, err)
		}
	}
	g.Close()
	if _, err := g.Submit(ctx, []odometer.Event{{ID: "late"}}); err != odometer.ErrShuttingDown {
		t.Errorf("after Close: %v, want ErrShuttingDown", err)
	}
}
