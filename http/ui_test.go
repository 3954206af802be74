package http

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

		// Past the 10 s, the backlog is read again, the ranking only once
		// a run has folded events.
		t.Run("RankingUntilARun", func(t *testing.T) {
			ts.MustDo(t, 201, "POST", "/usage/api.calls", ts.IngestKey, `{"customerId": "c05", "value": 1000, "timestamp": "2026-01-10T08:00:00Z"}`)
			ts.SetNow(testNow.Add(115 * time.Second))
			st := stats(ts.ReadKey)
			if got, want := st.Backlog, int64(1); got != want {
				t.Errorf("backlog %d, want %d", got, want)
			}
			if top := st.TopCustomers["api.calls"]; len(top) == 0 || top[0].CustomerID != "c12" || st.Customers != 12 {
				t.Errorf("before a run: top %v, customers %d; want c12 first, as folded, and 12", top, st.Customers)
			}
			ts.mustTrigger(t)
			ts.SetNow(testNow.Add(130 * time.Second))
			st = stats(ts.ReadKey)
			if top := st.TopCustomers["api.calls"]; st.Backlog != 0 || len(top) == 0 || top[0].CustomerID != "c05" || top[0].Value != 1050 {
				t.Errorf("after a run: backlog %d, top %v; want 0 and c05=1050 first", st.Backlog, top)
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

// usageTotalsConfig has a grouped sum, a max and a unique meter, daily
// periods in UTC, and two webhooks.
const usageTotalsConfig = `{
  "periods": ["daily", "monthly"],
  "events": { "api.calls": { "op": "sum" }, "llm.request": { "op": "count" } },
  "meters": {
    "tokens":  { "eventType": "llm.request", "op": "sum", "value": "$.tokens", "groupBy": ["model"] },
    "biggest": { "eventType": "llm.request", "op": "max", "value": "$.tokens" },
    "users":   { "eventType": "llm.request", "op": "unique", "value": "$.userId" }
  },
  "webhooks": [
    { "url": "https://a.example.com/hooks/billing", "secret": "whsec_a", "enabled": true },
    { "url": "https://b.example.com/hooks/billing", "secret": "whsec_b", "enabled": true },
    { "url": "https://c.example.com/hooks/billing", "secret": "whsec_c", "enabled": false }
  ]
}`

// totalsAnswerJSON is GET /stats/usage's answer.
type totalsAnswerJSON struct {
	Meter     string `json:"meter"`
	Customers int    `json:"customers"`
	Usage     []struct {
		Key       string  `json:"key"`
		Value     float64 `json:"value"`
		Count     int64   `json:"count"`
		Customers int     `json:"customers"`
		Groups    []struct {
			Group map[string]string `json:"group"`
			Value float64           `json:"value"`
		} `json:"groups"`
	} `json:"usage"`
	Top []topCustomer `json:"topCustomers"`
}

func TestStatsUsage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServerConfig(t, open, usageTotalsConfig)
		// Three customers over 10 to 12 January: c1 and c2 share users u1
		// and u2; c3 only on the 12th.
		var batch []string
		for day := 10; day <= 12; day++ {
			for i, c := range []string{"c1", "c2", "c3"} {
				if c == "c3" && day != 12 {
					continue
				}
				tokens := 100*(i+1) + day
				batch = append(batch,
					fmt.Sprintf(`{"eventType": "api.calls", "customerId": %q, "value": %d, "timestamp": "2026-01-%dT08:00:00Z"}`, c, (i+1)*day, day),
					fmt.Sprintf(`{"eventType": "llm.request", "customerId": %q, "value": 1, "timestamp": "2026-01-%dT09:00:00Z", "metadata": {"model": "m%d", "tokens": %d, "userId": "u%d"}}`, c, day, i%2, tokens, day%2+1))
			}
		}
		ts.MustDo(t, 201, "POST", "/usagebatch", ts.IngestKey, "["+strings.Join(batch, ",")+"]")
		ts.mustTrigger(t)
		get := func(meter string) totalsAnswerJSON {
			var a totalsAnswerJSON
			ts.MustDo(t, 200, "GET", "/stats/usage?meter="+meter+"&window=day&from=2026-01-10T00:00:00Z&to=2026-01-13T00:00:00Z", ts.ReadKey, "").Decode(t, &a)
			return a
		}

		t.Run("Sum", func(t *testing.T) {
			a := get("api.calls")
			var got []string
			for _, u := range a.Usage {
				got = append(got, fmt.Sprintf("%s=%v/%d/%d", u.Key, u.Value, u.Count, u.Customers))
			}
			// The 10th: c1 10 + c2 20; the 12th: 12 + 24 + 36.
			if got, want := strings.Join(got, " "), "20260110=30/2/2 20260111=33/2/2 20260112=72/3/3"; got != want {
				t.Errorf("usage %s, want %s", got, want)
			}
			var top []string
			for _, c := range a.Top {
				top = append(top, fmt.Sprintf("%s=%v", c.CustomerID, c.Value))
			}
			if got, want := strings.Join(top, " "), "c2=66 c3=36 c1=33"; got != want || a.Customers != 3 {
				t.Errorf("top %s (%d customers), want %s", got, a.Customers, want)
			}
		})

		t.Run("Merged", func(t *testing.T) {
			// Max over every customer is the largest token count; unique
			// users over every customer count u1 and u2 once.
			big, users, tokens := get("biggest"), get("users"), get("tokens")
			if got, want := big.Usage[2].Value, 312.0; got != want {
				t.Errorf("max on the 12th %v, want %v", got, want)
			}
			if got, want := users.Usage[0].Value, 1.0; got != want { // the 10th: everyone is u1
				t.Errorf("unique users on the 10th %v, want %v", got, want)
			}
			if got, want := users.Top[0].Value, 2.0; got != want { // c1: u1 on the 10th and 12th, u2 on the 11th
				t.Errorf("c1's unique users over the range %v, want %v", got, want)
			}
			if got, want := tokens.Usage[2].Value, float64(112+212+312); got != want {
				t.Errorf("tokens on the 12th %v, want %v", got, want)
			}
			// Its groups over every customer: m0 is c1's and c3's.
			var groups []string
			for _, g := range tokens.Usage[2].Groups {
				groups = append(groups, fmt.Sprintf("%s=%v", g.Group["model"], g.Value))
			}
			if got, want := strings.Join(groups, " "), "m0=424 m1=212"; got != want {
				t.Errorf("tokens' groups on the 12th %s, want %s", got, want)
			}
		})

		t.Run("ErrBadRequests", func(t *testing.T) {
			ts.MustDo(t, 400, "GET", "/stats/usage?meter=nope", ts.ReadKey, "")
			ts.MustDo(t, 400, "GET", "/stats/usage?meter=api.calls&window=hour", ts.ReadKey, "") // hourly is not configured
			ts.MustDo(t, 400, "GET", "/stats/usage?meter=api.calls&window=day&from=2020-01-01T00:00:00Z", ts.ReadKey, "")
			ts.MustDo(t, 400, "GET", "/stats/usage?meter=api.calls&from=2026-01-12T00:00:00Z&to=2026-01-11T00:00:00Z", ts.ReadKey, "")
			pinned := ts.MustCreateKey(t, odometer.ScopeRead, "c1")
			ts.MustDo(t, 404, "GET", "/stats/usage?meter=api.calls", pinned, "")
			ts.MustDo(t, 403, "GET", "/stats/usage?meter=api.calls", ts.IngestKey, "")
		})

		t.Run("Webhooks", func(t *testing.T) {
			ctx := context.Background()
			a, b := "https://a.example.com/hooks/billing", "https://b.example.com/hooks/billing"
			// b answered 410 Gone on two deliveries; a delivered one and
			// failed one try of another.
			at := testNow.Add(-time.Hour)
			ds, _, err := ts.Store.FindDeliveries(ctx, odometer.DeliveryFilter{Endpoint: b, Limit: 2})
			if err != nil || len(ds) != 2 {
				t.Fatalf("deliveries to b: %d, %v", len(ds), err)
			}
			for _, d := range ds {
				d.Status, d.Attempts, d.LastStatus, d.LastError, d.LastAttemptAt, d.NextAttemptAt = odometer.DeliveryFailed, 1, 410, "gone", &at, nil
			}
			da, _, err := ts.Store.FindDeliveries(ctx, odometer.DeliveryFilter{Endpoint: a, Limit: 2})
			if err != nil || len(da) != 2 {
				t.Fatalf("deliveries to a: %d, %v", len(da), err)
			}
			da[0].Status, da[0].Attempts, da[0].DeliveredAt, da[0].LastAttemptAt, da[0].NextAttemptAt = odometer.DeliveryDelivered, 1, &at, &at, nil
			next := testNow.Add(time.Minute)
			da[1].Attempts, da[1].LastStatus, da[1].LastError, da[1].LastAttemptAt, da[1].NextAttemptAt = 1, 503, "busy", &at, &next
			if err := ts.Store.RecordAttempts(ctx, append(ds, da...)); err != nil {
				t.Fatal(err)
			}
			if err := ts.Store.DisableEndpoint(ctx, b, "the endpoint answered 410 Gone", at); err != nil {
				t.Fatal(err)
			}
			var hs []struct {
				URL            string           `json:"url"`
				Enabled        bool             `json:"enabled"`
				Active         bool             `json:"active"`
				State          string           `json:"state"`
				DisabledReason string           `json:"disabledReason"`
				Deliveries     map[string]int64 `json:"deliveries"`
				Last24h        map[string]int64 `json:"last24h"`
				FailureRate    *float64         `json:"failureRate"`
				LastSuccessAt  string           `json:"lastSuccessAt"`
			}
			ts.MustDo(t, 200, "GET", "/webhooks", ts.ReadKey, "").Decode(t, &hs)
			if len(hs) != 3 {
				t.Fatalf("%d endpoints, want 3", len(hs))
			}
			if h := hs[0]; h.State != "active" || !h.Active || h.FailureRate == nil || *h.FailureRate != 0.5 || h.LastSuccessAt != odometer.FormatTime(at) ||
				h.Last24h["delivered"] != 1 || h.Last24h["retrying"] != 1 {
				t.Errorf("a: %+v", h)
			}
			if h := hs[1]; h.State != "disabled" || h.Active || !h.Enabled || h.DisabledReason == "" || h.Deliveries["failed"] != 2 || *h.FailureRate != 1 || h.LastSuccessAt != "" {
				t.Errorf("b: %+v", h)
			}
			if h := hs[2]; h.State != "off" || h.Active || h.Enabled || h.FailureRate != nil {
				t.Errorf("c: %+v", h)
			}

			// Only b's failed deliveries, by GET /deliveries?endpoint=.
			var list []struct{ Endpoint, Status string }
			ts.MustDo(t, 200, "GET", "/deliveries?status=failed&endpoint="+url.QueryEscape(b), ts.AdminKey, "").Decode(t, &list)
			if len(list) != 2 || list[0].Endpoint != b || list[1].Endpoint != b {
				t.Errorf("b's failed deliveries: %+v", list)
			}

			// Retry every failed delivery of b: pending, due now, and b
			// enabled again; a's are left as they are.
			var res struct {
				Retried int64 `json:"retried"`
			}
			ts.MustDo(t, 202, "POST", "/webhooks/retry?endpoint="+url.QueryEscape(b), ts.AdminKey, "").Decode(t, &res)
			if res.Retried != 2 {
				t.Errorf("retried %d, want 2", res.Retried)
			}
			for _, d := range ds {
				got, err := ts.Store.FindDelivery(ctx, d.ID)
				if err != nil || got.Status != odometer.DeliveryPending || got.NextAttemptAt == nil || !got.NextAttemptAt.Equal(testNow) {
					t.Errorf("after retry %s: %+v, %v", d.ID, got, err)
				}
			}
			if off, _ := ts.Store.DisabledEndpoints(ctx); off[b] != "" {
				t.Error("b is still disabled")
			}
			if got, _ := ts.Store.FindDelivery(ctx, da[1].ID); got.Status != odometer.DeliveryPending || !got.NextAttemptAt.Equal(next) {
				t.Errorf("a's pending delivery was moved: %+v", got)
			}
			ts.MustDo(t, 202, "POST", "/webhooks/retry?endpoint="+url.QueryEscape(b), ts.AdminKey, "").Decode(t, &res)
			if res.Retried != 0 {
				t.Errorf("retried again %d, want 0", res.Retried)
			}
			ts.MustDo(t, 404, "POST", "/webhooks/retry?endpoint="+url.QueryEscape("https://gone.example.com/"), ts.AdminKey, "")
			ts.MustDo(t, 400, "POST", "/webhooks/retry", ts.AdminKey, "")
			ts.MustDo(t, 403, "POST", "/webhooks/retry?endpoint="+url.QueryEscape(b), ts.ReadKey, "")
			pinned := ts.MustCreateKey(t, odometer.ScopeRead, "c1")
			ts.MustDo(t, 404, "GET", "/webhooks", pinned, "")

			// One delivery, with the body it sends.
			var one struct {
				ID      string `json:"id"`
				Payload struct {
					Type       string `json:"type"`
					CustomerID string `json:"customerId"`
				} `json:"payload"`
			}
			ts.MustDo(t, 200, "GET", "/deliveries/"+da[0].ID, ts.AdminKey, "").Decode(t, &one)
			if one.ID != da[0].ID || one.Payload.CustomerID != da[0].CustomerID || one.Payload.Type != da[0].Type {
				t.Errorf("GET /deliveries/{id}: %+v", one)
			}
			ts.MustDo(t, 403, "GET", "/deliveries/"+da[0].ID, ts.ReadKey, "")
		})
	})
}
