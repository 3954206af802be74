package http

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

func TestClient(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		ctx := context.Background()
		ingest := &Client{URL: ts.URL + "/", Key: ts.IngestKey}
		read := &Client{URL: ts.URL, Key: ts.ReadKey}
		admin := &Client{URL: ts.URL, Key: ts.AdminKey}

		t.Run("SendBatch", func(t *testing.T) {
			res, err := ingest.SendBatch(ctx, []byte(batchOf(3, "cust_a", func(i int) string { return `, "id": "c-` + string(rune('0'+i)) + `"` })))
			if err != nil || res != (BatchResult{Count: 3}) {
				t.Fatalf("result %+v, %v", res, err)
			}
			res, err = ingest.SendBatch(ctx, []byte(batchOf(2, "cust_a", func(i int) string { return `, "id": "c-` + string(rune('0'+i)) + `"` })))
			if err != nil || res != (BatchResult{Count: 2, Duplicates: 2}) {
				t.Fatalf("again: result %+v, %v", res, err)
			}
		})

		t.Run("ErrBatchInvalid", func(t *testing.T) {
			_, err := ingest.SendBatch(ctx, []byte(`[{"eventType": "api.calls", "customerId": "c", "value": 1}, {"eventType": "api.calls", "value": "x"}]`))
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != 422 || ae.Temporary() {
				t.Fatalf("error %v, want a 422", err)
			}
			if len(ae.ValidationErrors) != 1 || ae.ValidationErrors[0].Index != 1 ||
				strings.Join(ae.ValidationErrors[0].Errors, "; ") != "customerId is required; value must be a number" {
				t.Fatalf("validation errors %+v", ae.ValidationErrors)
			}
			if ae.RequestID == "" {
				t.Fatal("no request id")
			}
		})

		t.Run("PostEvent", func(t *testing.T) {
			dup, err := ingest.PostEvent(ctx, "api.calls", []byte(`{"customerId": "cust_b", "value": 1, "id": "p-1"}`))
			if err != nil || dup {
				t.Fatalf("duplicate %v, %v", dup, err)
			}
			dup, err = ingest.PostEvent(ctx, "api.calls", []byte(`{"customerId": "cust_b", "value": 1, "id": "p-1"}`))
			if err != nil || !dup {
				t.Fatalf("again: duplicate %v, %v", dup, err)
			}
		})

		t.Run("Events", func(t *testing.T) {
			page, next, err := read.Events(ctx, EventQuery{CustomerID: "cust_a", Limit: 2})
			if err != nil || len(page) != 2 || next == "" {
				t.Fatalf("page %d, next %q, %v", len(page), next, err)
			}
			rest, next, err := read.Events(ctx, EventQuery{CustomerID: "cust_a", Limit: 2, Cursor: next})
			if err != nil || len(rest) != 1 || next != "" || rest[0].ID == page[0].ID {
				t.Fatalf("second page %+v, next %q, %v", rest, next, err)
			}
		})

		t.Run("Trigger", func(t *testing.T) {
			res, err := admin.Trigger(ctx)
			if err != nil || res.EventsProcessed != 4 || res.Message != "Aggregation triggered" {
				t.Fatalf("result %+v, %v", res, err)
			}
			aggs, _, err := read.Aggregations(ctx, AggregationQuery{CustomerID: "cust_a", Period: "daily"})
			if err != nil || len(aggs) != 1 || aggs[0].Events["api.calls"] != 3 || aggs[0].EventCounts["api.calls"] != 3 {
				t.Fatalf("aggregations %+v, %v", aggs, err)
			}
		})

		t.Run("Keys", func(t *testing.T) {
			secret, k, err := admin.CreateKey(ctx, odometer.ScopeRead, "cust_a", "page")
			if err != nil || !strings.HasPrefix(secret, odometer.KeyPrefix) || k.CustomerID != "cust_a" || k.ID == "" {
				t.Fatalf("key %q %+v, %v", secret, k, err)
			}
			keys, err := admin.Keys(ctx)
			if err != nil || len(keys) != 4 {
				t.Fatalf("%d keys, %v", len(keys), err)
			}
			if err := admin.RevokeKey(ctx, k.ID); err != nil {
				t.Fatal(err)
			}
			pinned := &Client{URL: ts.URL, Key: secret}
			var ae *APIError
			if _, _, err := pinned.Events(ctx, EventQuery{}); !errors.As(err, &ae) || ae.Status != 401 {
				t.Fatalf("revoked key: %v, want 401", err)
			}
		})

		t.Run("Config", func(t *testing.T) {
			cfg, err := read.Config(ctx)
			if err != nil || len(cfg.Events) != 3 || cfg.Events["storage.bytes"].Op != odometer.OpMax {
				t.Fatalf("config %+v, %v", cfg, err)
			}
			if cfg.Webhooks[0].Secret == testSecret {
				t.Fatal("the secret came back")
			}
		})

		t.Run("ErrUnreachable", func(t *testing.T) {
			c := &Client{URL: "http://127.0.0.1:1", Key: "k"}
			var ae *APIError
			if err := c.Ping(ctx); err == nil || errors.As(err, &ae) {
				t.Fatalf("error %v, want a connection error", err)
			}
		})
	})
}

// TestClient_SendBatchGzip: SendBatch sends a batch gzipped, and sends it
// again as it is to a server that answers 415 to gzip.
func TestClient_SendBatchGzip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		ctx := context.Background()
		var mu sync.Mutex
		var encodings []string
		refuseGzip := false
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			encodings = append(encodings, r.Header.Get("Content-Encoding"))
			refuse := refuseGzip
			mu.Unlock()
			if refuse && r.Header.Get("Content-Encoding") != "" {
				w.WriteHeader(http.StatusUnsupportedMediaType)
				w.Write([]byte(`{"error": "Content-Encoding gzip is not supported"}`))
				return
			}
			ts.Handler.ServeHTTP(w, r)
		}))
		defer front.Close()
		c := &Client{URL: front.URL, Key: ts.IngestKey}
		batch := func(prefix string) []byte {
			return []byte(batchOf(20, "cust_z", func(i int) string { return fmt.Sprintf(`, "id": "%s-%d"`, prefix, i) }))
		}

		if res, err := c.SendBatch(ctx, batch("a")); err != nil || res.Count != 20 {
			t.Fatalf("SendBatch: %+v, %v", res, err)
		}
		mu.Lock()
		refuseGzip = true
		mu.Unlock()
		if res, err := c.SendBatch(ctx, batch("b")); err != nil || res.Count != 20 {
			t.Fatalf("SendBatch to a server without gzip: %+v, %v", res, err)
		}
		c.Uncompressed = true
		if res, err := c.SendBatch(ctx, batch("c")); err != nil || res.Count != 20 {
			t.Fatalf("SendBatch uncompressed: %+v, %v", res, err)
		}
		if got, want := strings.Join(encodings, ","), "gzip,gzip,,"; got != want {
			t.Fatalf("Content-Encodings sent %q, want %q", got, want)
		}
		ts.mustCount(t, 60)
	})
}
