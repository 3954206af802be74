package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

func sameMetadata(got json.RawMessage, want map[string]string) bool {
	var m map[string]string
	if json.Unmarshal(got, &m) != nil || len(m) != len(want) {
		return false
	}
	for k, v := range want {
		if m[k] != v {
			return false
		}
	}
	return true
}

// checkMetersFromScratch rebuilds every aggregation from scratch: the
// stored events, in their order of arrival, posted to a fresh server with
// the same configuration, and aggregated once. Every meter of every
// aggregation (values, counts and groups) must equal the one built by the
// server that was killed and restarted.
func checkMetersFromScratch(t *testing.T, srv *server, events []storedEvent, cfgPath string) {
	t.Helper()
	fresh := startServer(t, serverOptions{DB: filepath.Join(t.TempDir(), "scratch.db"), Config: cfgPath, Key: killKey})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// GET /events is newest first: post the oldest first, in batches, so
	// that arrival order (which breaks ties of equal times) is the same.
	type post struct {
		EventType  string          `json:"eventType"`
		ID         string          `json:"id"`
		CustomerID string          `json:"customerId"`
		Value      float64         `json:"value"`
		Timestamp  string          `json:"timestamp"`
		Metadata   json.RawMessage `json:"metadata,omitempty"`
	}
	for end := len(events); end > 0; end -= 1000 {
		start := max(0, end-1000)
		batch := make([]post, 0, end-start)
		for i := end - 1; i >= start; i-- {
			e := events[i]
			batch = append(batch, post{e.EventType, e.ID, e.CustomerID, e.Value, e.Timestamp, e.Metadata})
		}
		body, _ := json.Marshal(batch)
		status, answer, _, err := fresh.do(ctx, "POST", "/usagebatch", body)
		if err != nil || status != http.StatusCreated {
			t.Fatalf("from scratch: POST /usagebatch: %d %v %s", status, err, answer)
		}
	}
	all := func(s *server) map[string][]byte {
		if status, body, _, err := s.do(ctx, "POST", "/aggregations/trigger", nil); err != nil || status != http.StatusOK {
			t.Fatalf("trigger: %d %v %s", status, err, body)
		}
		out := map[string][]byte{}
		cursor := ""
		for {
			q := url.Values{"limit": {"1000"}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			var aggs []struct {
				ID          string          `json:"_id"`
				Events      json.RawMessage `json:"events"`
				EventCounts json.RawMessage `json:"eventCounts"`
				Groups      json.RawMessage `json:"groups"`
			}
			h := s.getJSON(t, "/aggregations?"+q.Encode(), &aggs)
			for _, a := range aggs {
				out[a.ID] = bytes.Join([][]byte{a.Events, a.EventCounts, a.Groups}, []byte(" "))
			}
			if cursor = h.Get("X-Next-Cursor"); cursor == "" {
				return out
			}
		}
	}
	got, want := all(srv), all(fresh)
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	bad := 0
	for _, id := range ids {
		if !bytes.Equal(got[id], want[id]) {
			bad++
			if bad <= 5 {
				t.Errorf("%s after the kills: %s\nfrom scratch: %s", id, got[id], want[id])
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d aggregations after the kills, %d from scratch", len(got), len(want))
	}
	report(t, "kill test, meters: %d aggregations (grouped sum, unique, grouped integral) equal to a rebuild from scratch, %d differ", len(want)-bad, bad)
}
