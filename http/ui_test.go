package http

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// get fetches path from the server without a key, with the headers given
// as name, value pairs, and without following redirects.
func (ts *TestServer) get(t *testing.T, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DisableCompression: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestUI_Assets(t *testing.T) {
	ts := MustOpenServer(t, func(tb testing.TB) odometer.Store { return storetest.OpenSQLite(tb) })

	t.Run("Page", func(t *testing.T) {
		resp, body := ts.get(t, "/ui/")
		if got, want := resp.StatusCode, 200; got != want {
			t.Fatalf("status %d, want %d", got, want)
		}
		for name, want := range map[string]string{
			"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": uiCSP, "Cache-Control": "no-cache",
			"X-Content-Type-Options": "nosniff", "Vary": "Accept-Encoding",
		} {
			if got := resp.Header.Get(name); got != want {
				t.Errorf("%s: %q, want %q", name, got, want)
			}
		}
		if resp.Header.Get("Content-Encoding") != "" {
			t.Error("compressed for a client that did not ask")
		}
		if !bytes.Contains(body, []byte(`<main id="view">`)) {
			t.Fatalf("not the dashboard: %s", body)
		}
	})

	t.Run("NoInlineCode", func(t *testing.T) {
		// The policy refuses inline scripts, styles and handlers: the page
		// must have none, or it would not work.
		_, body := ts.get(t, "/ui/")
		for _, re := range []string{`\sstyle=`, `\son[a-z]+=`, `<style`} {
			if regexp.MustCompile(re).Match(body) {
				t.Errorf("index.html has inline code matching %s", re)
			}
		}
		scripts := regexp.MustCompile(`<script([^>]*)>([^<]*)</script>`).FindAllSubmatch(body, -1)
		if len(scripts) == 0 {
			t.Fatal("no script")
		}
		for _, m := range scripts {
			if !bytes.Contains(m[1], []byte(` src="`)) || len(bytes.TrimSpace(m[2])) != 0 {
				t.Errorf("inline script %s", m[0])
			}
		}
		// Text from the API goes into the page as text, never as HTML.
		js := uiAssets()["app.js"].body
		for _, s := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
			if bytes.Contains(js, []byte(s)) {
				t.Errorf("app.js uses %s", s)
			}
		}
	})

	t.Run("Gzip", func(t *testing.T) {
		for _, path := range []string{"/ui/", "/ui/app.js", "/ui/app.css"} {
			resp, body := ts.get(t, path, "Accept-Encoding", "gzip, deflate, br")
			if got := resp.Header.Get("Content-Encoding"); got != "gzip" {
				t.Fatalf("%s: Content-Encoding %q, want gzip", path, got)
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			plain, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			_, want := ts.get(t, path)
			if !bytes.Equal(plain, want) {
				t.Fatalf("%s: gzipped body differs", path)
			}
			if len(body) >= len(want) {
				t.Errorf("%s: gzipped %d bytes, plain %d", path, len(body), len(want))
			}
		}
	})

	t.Run("Versioned", func(t *testing.T) {
		_, page := ts.get(t, "/ui/")
		refs := regexp.MustCompile(`(?:src|href)="([a-z.]+)\?v=([0-9a-f]+)"`).FindAllSubmatch(page, -1)
		if got, want := len(refs), 4; got != want { // the icon twice, the style, the script
			t.Fatalf("%d versioned references, want %d: %s", got, want, page)
		}
		for _, ref := range refs {
			path := "/ui/" + string(ref[1]) + "?v=" + string(ref[2])
			resp, _ := ts.get(t, path)
			if got, want := resp.Header.Get("Cache-Control"), "public, max-age=31536000, immutable"; got != want {
				t.Errorf("%s: Cache-Control %q, want %q", path, got, want)
			}
			resp, _ = ts.get(t, "/ui/"+string(ref[1])+"?v=old")
			if got, want := resp.Header.Get("Cache-Control"), "no-cache"; got != want {
				t.Errorf("%s with another version: Cache-Control %q, want %q", ref[1], got, want)
			}
			etag := resp.Header.Get("ETag")
			resp, body := ts.get(t, "/ui/"+string(ref[1]), "If-None-Match", etag)
			if resp.StatusCode != 304 || len(body) != 0 {
				t.Errorf("%s with If-None-Match %s: %d, %d bytes", ref[1], etag, resp.StatusCode, len(body))
			}
		}
		if got, want := uiAssets()["app.js"].contentType, "text/javascript; charset=utf-8"; got != want {
			t.Errorf("app.js: %q, want %q", got, want)
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		resp, body := ts.get(t, "/ui/nope.js")
		if resp.StatusCode != 404 {
			t.Fatalf("status %d, want 404", resp.StatusCode)
		}
		checkBody(t, "GET", "/ui/nope.js", resp.Header, body)
	})

	t.Run("Redirect", func(t *testing.T) {
		resp, _ := ts.get(t, "/ui")
		if got, want := resp.Header.Get("Location"), "/ui/"; resp.StatusCode/100 != 3 || got != want {
			t.Fatalf("GET /ui: %d to %q, want a redirect to %q", resp.StatusCode, got, want)
		}
	})
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"deflate, gzip;q=1.0, br", true},
		{"GZIP", true},
		{"*", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"br, deflate", false},
		{"x-gzip2", false},
	} {
		if got := acceptsGzip(tc.header); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

func TestRank(t *testing.T) {
	var top []topCustomer
	// 1..15 in a shuffled order, and a tie on 14.
	for _, v := range []float64{7, 3, 15, 1, 9, 12, 4, 14, 2, 11, 5, 13, 6, 10, 8} {
		top = rank(top, topCustomer{CustomerID: fmt.Sprintf("c%02.0f", v), Value: v})
	}
	top = rank(top, topCustomer{CustomerID: "a14", Value: 14})
	var got []string
	for _, c := range top {
		got = append(got, c.CustomerID)
	}
	if got, want := strings.Join(got, " "), "c15 a14 c14 c13 c12 c11 c10 c09 c08 c07"; got != want {
		t.Fatalf("top %s, want %s", got, want)
	}
}

func TestMinuteRing(t *testing.T) {
	var r minuteRing
	at := time.Date(2026, 1, 13, 10, 30, 15, 0, time.UTC)
	r.add(at, 3)
	r.add(at.Add(20*time.Second), 2)
	r.add(at.Add(-59*time.Minute), 4)
	r.add(at.Add(-60*time.Minute), 100) // 09:30, in the slot that 10:30 holds: too old
	r.add(at, 0)
	last := r.last(at)
	if got, want := len(last), 60; got != want {
		t.Fatalf("%d minutes, want %d", got, want)
	}
	if got, want := last[59], (minuteCount{"2026-01-13T10:30:00.000Z", 5}); got != want {
		t.Errorf("the current minute %+v, want %+v", got, want)
	}
	if got, want := last[0], (minuteCount{"2026-01-13T09:31:00.000Z", 4}); got != want {
		t.Errorf("the first minute %+v, want %+v", got, want)
	}
	// An hour on, every slot is stale.
	total := int64(0)
	for _, m := range r.last(at.Add(time.Hour)) {
		total += m.Count
	}
	if total != 0 {
		t.Errorf("an hour later %d events, want 0", total)
	}
	// 11:30 takes the slot over.
	r.add(at.Add(time.Hour), 1)
	if got := r.last(at.Add(time.Hour))[59].Count; got != 1 {
		t.Errorf("11:30 counts %d, want 1", got)
	}
}

// statsAnswer is GET /stats's answer.
type statsAnswer struct {
	Now             string `json:"now"`
	Timezone        string `json:"timezone"`
	Scope           string `json:"scope"`
	EventsPerMinute []struct {
		Minute string `json:"minute"`
		Count  int64  `json:"count"`
	} `json:"eventsPerMinute"`
	LagSeconds   float64                  `json:"lagSeconds"`
	Backlog      int64                    `json:"backlog"`
	Deliveries   map[string]int64         `json:"deliveries"`
	Month        map[string]string        `json:"month"`
	Customers    int                      `json:"customers"`
	TopCustomers map[string][]topCustomer `json:"topCustomers"`
	ComputedAt   string                   `json:"computedAt"`
	Note         string                   `json:"note"`
}

func TestStats(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		stats := func(key string) statsAnswer {
			var st statsAnswer
			ts.MustDo(t, 200, "GET", "/stats", key, "").Decode(t, &st)
			return st
		}

		t.Run("Empty", func(t *testing.T) {
			st := stats(ts.ReadKey)
			if st.Scope != "read" || st.Backlog != 0 || st.LagSeconds != 0 || st.Customers != 0 || len(st.EventsPerMinute) != 60 {
				t.Fatalf("%+v", st)
			}
			if got, want := st.Month["periodKey"], "202601"; got != want {
				t.Errorf("month %s, want %s", got, want)
			}
			for _, et := range []string{"api.calls", "storage.bytes", "response.time.ms"} {
				if top, ok := st.TopCustomers[et]; !ok || len(top) != 0 {
					t.Errorf("%s: %v", et, top)
				}
			}
		})

		// Twelve customers' API calls this month, and one of last month
		// that must not count.
		var batch []string
		for i := 1; i <= 12; i++ {
			batch = append(batch, fmt.Sprintf(`{"eventType": "api.calls", "customerId": "c%02d", "value": %d, "timestamp": "2026-01-0%dT08:00:00Z"}`, i, i*10, 1+i%9),
				fmt.Sprintf(`{"eventType": "storage.bytes", "customerId": "c%02d", "value": %d, "timestamp": "2026-01-02T08:00:00Z"}`, i, 1000-i))
		}
		batch = append(batch, `{"eventType": "api.calls", "customerId": "c01", "value": 1000, "timestamp": "2025-12-31T23:00:00Z"}`)
		ts.MustDo(t, 201, "POST", "/usagebatch", ts.IngestKey, "["+strings.Join(batch, ",")+"]")

		t.Run("Backlog", func(t *testing.T) {
			ts.SetNow(testNow.Add(90 * time.Second))
			st := stats(ts.AdminKey)
			if got, want := st.Backlog, int64(25); got != want {
				t.Errorf("backlog %d, want %d", got, want)
			}
			if got, want := st.LagSeconds, 90.0; got != want {
				t.Errorf("lag %v s, want %v", got, want)
			}
			if got, want := st.Scope, "admin"; got != want {
				t.Errorf("scope %s, want %s", got, want)
			}
			// Stored at 10:30, shown 90 s later: the second-last minute.
			if got, want := st.EventsPerMinute[58], (struct {
				Minute string `json:"minute"`
				Count  int64  `json:"count"`
			}{"2026-01-13T10:30:00.000Z", 25}); got != want {
				t.Errorf("minute %+v, want %+v", got, want)
			}
		})

		t.Run("Cached", func(t *testing.T) {
			ts.mustTrigger(t)
			ts.SetNow(testNow.Add(95 * time.Second))
			st := stats(ts.ReadKey)
			if st.Backlog != 25 || st.Customers != 0 {
				t.Fatalf("within 10 s of the last answer: backlog %d, customers %d, want the cached 25 and 0", st.Backlog, st.Customers)
			}
			if got, want := st.ComputedAt, "2026-01-13T10:31:30.000Z"; got != want {
				t.Errorf("computedAt %s, want %s", got, want)
			}
		})

		t.Run("Top", func(t *testing.T) {
			ts.SetNow(testNow.Add(101 * time.Second))
			st := stats(ts.ReadKey)
			if st.Backlog != 0 || st.LagSeconds != 0 || st.Customers != 12 {
				t.Fatalf("backlog %d, lag %v, customers %d; want 0, 0, 12", st.Backlog, st.LagSeconds, st.Customers)
			}
			var calls, bytes []string
			for _, c := range st.TopCustomers["api.calls"] {
				calls = append(calls, fmt.Sprintf("%s=%v/%d", c.CustomerID, c.Value, c.Count))
			}
			for _, c := range st.TopCustomers["storage.bytes"] {
				bytes = append(bytes, fmt.Sprintf("%s=%v", c.CustomerID, c.Value))
			}
			if got, want := strings.Join(calls, " "), "c12=120/1 c11=110/1 c10=100/1 c09=90/1 c08=80/1 c07=70/1 c06=60/1 c05=50/1 c04=40/1 c03=30/1"; got != want {
				t.Errorf("api.calls: %s, want %s", got, want)
			}
			if got, want := strings.Join(bytes, " "), "c01=999 c02=998 c03=997 c04=996 c05=995 c06=994 c07=993 c08=992 c09=991 c10=990"; got != want {
				t.Errorf("storage.bytes: %s, want %s", got, want)
			}
			if got := len(st.TopCustomers["response.time.ms"]); got != 0 {
				t.Errorf("response.time.ms: %d customers, want none", got)
			}
			if got := st.Deliveries[odometer.DeliveryPending]; got == 0 {
				t.Error("no pending deliveries counted")
			}
		})

		t.Run("ErrPinned", func(t *testing.T) {
			pinned := ts.MustCreateKey(t, odometer.ScopeRead, "c01")
			ts.MustDo(t, 404, "GET", "/stats", pinned, "")
			ts.MustDo(t, 403, "GET", "/stats", ts.IngestKey, "")
			ts.MustDo(t, 401, "GET", "/stats", "", "")
		})
	})
}

func TestStats_NoMonthly(t *testing.T) {
	ts := MustOpenServerConfig(t, func(tb testing.TB) odometer.Store { return storetest.OpenSQLite(tb) },
		`{"periods": ["daily"], "events": {"api.calls": {"op": "sum"}}}`)
	ts.MustPostEvent(t, "api.calls", `{"customerId": "c1", "value": 1}`)
	ts.mustTrigger(t)
	var st statsAnswer
	ts.MustDo(t, 200, "GET", "/stats", ts.ReadKey, "").Decode(t, &st)
	if st.Note == "" || len(st.TopCustomers["api.calls"]) != 0 {
		t.Fatalf("without the monthly period: note %q, top %v", st.Note, st.TopCustomers)
	}
	if got, want := st.EventsPerMinute[59].Count, int64(1); got != want {
		t.Errorf("current minute %d, want %d", got, want)
	}
}
