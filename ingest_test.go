package odometer_test

import (
	"errors"
	"testing"

	"github.com/odometer-dev/odometer"
)

// memTx is an IngestTx over a map: the rules of SettleGroup tested apart
// from any store (storetest runs the same rules on every store).
type memTx struct {
	stored  map[string]odometer.StoredEvent
	next    int64
	asked   [][]string
	failAt  string // Stored fails when asked about this id
	inserts int
}

func (m *memTx) Stored(ids []string) (map[string]odometer.StoredEvent, error) {
	m.asked = append(m.asked, ids)
	out := map[string]odometer.StoredEvent{}
	for _, id := range ids {
		if id == m.failAt {
			return nil, errors.New("store down")
		}
		if st, ok := m.stored[id]; ok {
			out[id] = st
		}
	}
	return out, nil
}

func (m *memTx) Insert(events []*odometer.Event, fps []int64) error {
	for i, e := range events {
		m.next++
		e.Seq = m.next
		if e.ClientID {
			m.stored[e.ID] = odometer.StoredEvent{Seq: e.Seq, Fingerprint: fps[i]}
		}
		m.inserts++
	}
	return nil
}

func ev(id string, v float64) odometer.Event {
	return odometer.Event{ID: id, ClientID: true, EventType: "e", CustomerID: "c", Value: v}
}

func req(events ...odometer.Event) *odometer.IngestRequest {
	return &odometer.IngestRequest{Events: events}
}

func TestSettleGroup(t *testing.T) {
	stored := ev("old", 1)
	tx := &memTx{stored: map[string]odometer.StoredEvent{"old": {Seq: 7, Fingerprint: stored.Fingerprint()}}, next: 10}
	group := []*odometer.IngestRequest{
		req(ev("a", 1), ev("old", 1), ev("a", 1)), // new, stored duplicate, repeat
		req(ev("b", 1), ev("old", 2)),             // conflict with the store
		req(ev("c", 1), ev("c", 2)),               // conflict within the request
		req(ev("a", 1), ev("d", 1)),               // duplicate of the group's a
		req(ev("d", 2)),                           // conflict with the group's d
		req(ev("b", 1)),                           // b is new: its first request failed
	}
	if err := odometer.SettleGroup(group, tx); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"", odometer.ECONFLICT, odometer.ECONFLICT, "", odometer.ECONFLICT, ""} {
		got := ""
		if group[i].Err != nil {
			got = odometer.ErrorCode(group[i].Err)
		}
		if got != want {
			t.Errorf("request %d: error %v, want %q", i, group[i].Err, want)
		}
		if (group[i].Err != nil) != (group[i].Dup == nil) {
			t.Errorf("request %d: error %v with dup %v", i, group[i].Err, group[i].Dup)
		}
	}
	r0, r3, r5 := group[0].Events, group[3].Events, group[5].Events
	if d := group[0].Dup; d[0] || !d[1] || !d[2] {
		t.Errorf("request 0: dup %v, want [false true true]", d)
	}
	if r0[0].Seq != 11 || r0[1].Seq != 7 || r0[2].Seq != 11 {
		t.Errorf("request 0: seqs %d %d %d, want 11 7 11", r0[0].Seq, r0[1].Seq, r0[2].Seq)
	}
	if d := group[3].Dup; !d[0] || d[1] || r3[0].Seq != 11 || r3[1].Seq != 12 {
		t.Errorf("request 3: dup %v seqs %d %d, want [true false] 11 12", d, r3[0].Seq, r3[1].Seq)
	}
	if group[5].Dup[0] || r5[0].Seq != 13 {
		t.Errorf("request 5: dup %v seq %d, want new with seq 13", group[5].Dup, r5[0].Seq)
	}
	if tx.inserts != 3 {
		t.Errorf("%d events inserted, want 3 (a, d, b)", tx.inserts)
	}
	if len(tx.asked) != 1 {
		t.Errorf("the store was asked %d times, want once for the group", len(tx.asked))
	}

	t.Run("ErrStore", func(t *testing.T) {
		tx := &memTx{stored: map[string]odometer.StoredEvent{}, failAt: "x"}
		if err := odometer.SettleGroup([]*odometer.IngestRequest{req(ev("x", 1))}, tx); err == nil {
			t.Fatal("a store error was not returned")
		}
		if tx.inserts != 0 {
			t.Fatal("inserted after a store error")
		}
	})
	t.Run("GeneratedIDs", func(t *testing.T) {
		tx := &memTx{stored: map[string]odometer.StoredEvent{}}
		e := ev("gen", 1)
		e.ClientID = false
		r := req(e, e)
		if err := odometer.SettleGroup([]*odometer.IngestRequest{r}, tx); err != nil {
			t.Fatal(err)
		}
		if r.Dup[0] || r.Dup[1] || len(tx.asked) != 0 {
			t.Fatalf("dup %v, asked %v: generated ids are neither deduplicated nor looked up", r.Dup, tx.asked)
		}
	})
}
