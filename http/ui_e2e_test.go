package http

// The dashboard in a real browser: headless Chromium driven through the
// DevTools protocol (chromedp), against a real server over a real SQLite
// store. The tests skip when /usr/bin/chromium is missing, unless CI is
// set, when they fail instead. Screenshots go to $ODOMETER_SCREENSHOT_DIR
// (or the test's temporary directory) and their paths are logged.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// startBrowser starts headless Chromium with a fresh profile and returns
// its context; new tabs are made from it with newTab.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("browser tests skipped: %s is missing (apt-get install -y chromium); with CI set they fail instead", chromiumPath)
		}
		t.Fatalf("CI is set and %s is missing: install it with apt-get install -y chromium", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return ctx
}

// newTab opens a tab of browser with a viewport of width x height, closed
// when the test ends.
func newTab(t *testing.T, browser context.Context, width, height int64) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
	})
	mustDo(t, ctx, chromedp.EmulateViewport(width, height))
	return ctx
}

func mustDo(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

func mustEval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor waits until the page's expression is truthy.
func waitFor(t *testing.T, ctx context.Context, js string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.outerHTML.slice(0, 4000)`))
		t.Fatalf("waiting for %s: %v\npage: %s", js, err, html)
	}
}

// signIn opens the dashboard at path (under /ui/), signs in with key and
// waits until the page named ready has rendered.
func signIn(t *testing.T, tab context.Context, base, path, key, ready string) {
	t.Helper()
	mustDo(t, tab, chromedp.Navigate(base+"/ui/"+path),
		chromedp.WaitVisible(chromedp.ID("apikey")),
		chromedp.SendKeys(chromedp.ID("apikey"), key),
		chromedp.Click(chromedp.ID("signin")))
	waitReady(t, tab, ready)
}

func waitReady(t *testing.T, tab context.Context, ready string) {
	t.Helper()
	waitFor(t, tab, fmt.Sprintf(`document.body.dataset.ready === %q`, ready))
}

// goTo moves the page to hash, as a click on a link does, and waits until
// the page named ready has rendered.
func goTo(t *testing.T, tab context.Context, hash, ready string) {
	t.Helper()
	mustEval[any](t, tab, fmt.Sprintf(`delete document.body.dataset.ready; location.hash = %q; null`, hash))
	waitReady(t, tab, ready)
}

// screenshotDir is where the screenshots go.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("ODOMETER_SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// screenshot saves the whole page as name.png and logs where.
func screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	saveScreenshot(t, tab, name, chromedp.FullScreenshot(100))
}

// saveScreenshot saves what shot captures as name.png.
func saveScreenshot(t *testing.T, tab context.Context, name string, shot chromedp.Action[[]byte]) {
	t.Helper()
	png, err := chromedp.Run(tab, shot)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(screenshotDir(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// uiConfig has a time zone other than UTC, so that the page's period
// arithmetic is checked against the server's, and no age limit, so that
// last month's events can be posted.
const uiConfig = `{
  "periods": ["hourly", "daily", "weekly", "monthly", "yearly"],
  "timezone": "Europe/Oslo",
  "maxEventAge": "0",
  "events": {
    "api.calls":        { "op": "sum", "description": "Total API calls" },
    "storage.bytes":    { "op": "max", "description": "Bytes stored" },
    "response.time.ms": { "op": "avg" },
    "llm.request":      { "op": "count", "description": "LLM requests" },
    "storage.gb":       { "op": "last", "description": "Gigabytes stored, as last reported" }
  },
  "meters": {
    "llm.tokens":  { "eventType": "llm.request", "op": "sum", "value": "$.tokens", "groupBy": ["model"], "description": "Tokens, by model" },
    "llm.users":   { "eventType": "llm.request", "op": "unique", "value": "$.userId", "description": "Active users" },
    "llm.p95":     { "eventType": "llm.request", "op": "p95", "value": "$.latencyMs", "description": "Latency, 95th percentile (ms)" },
    "storage.gbh": { "eventType": "storage.gb", "op": "integral", "unit": "hour", "groupBy": ["region"], "description": "Storage held, GB-hours" }
  },
  "webhooks": [
    { "url": "` + uiHookA + `", "secret": "` + testSecret + `", "enabled": true },
    { "url": "` + uiHookB + `", "secret": "` + testSecret + `", "enabled": true }
  ]
}`

// Two endpoints that differ only at the end of a long URL: the page must
// show the part that tells them apart.
const (
	uiHookA = "https://billing.example.com/hooks/metering/production-eu-west-1/orders"
	uiHookB = "https://billing.example.com/hooks/metering/production-eu-west-1/invoices"
)

// uiMeters are the meters of uiConfig, in the page's order: the event
// types sorted, then the meters section (GET /config sorts them by name).
var uiMeters = []string{"api.calls", "llm.request", "response.time.ms", "storage.bytes", "storage.gb", "llm.p95", "llm.tokens", "llm.users", "storage.gbh"}

// uiEvent is one posted event.
type uiEvent struct {
	EventType  string         `json:"eventType"`
	CustomerID string         `json:"customerId"`
	Value      float64        `json:"value"`
	Timestamp  time.Time      `json:"timestamp"`
	Metadata   map[string]any `json:"metadata,omitempty"`
}

// uiData is what the browser tests post: cust_a every day of December and
// January so far, with an event at 00:30 on 1 January in Oslo (23:30 UTC
// on 31 December) and a few in the last hours; cust_01..cust_12 some API
// calls in January, so that the ranking has more than ten to rank.
func uiData(now time.Time) []uiEvent {
	var out []uiEvent
	for d := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC); d.Before(now.Truncate(24 * time.Hour)); d = d.AddDate(0, 0, 1) {
		n := float64(d.YearDay()%7 + 1)
		out = append(out,
			uiEvent{EventType: "api.calls", CustomerID: "cust_a", Value: n * 10, Timestamp: d.Add(9 * time.Hour)},
			uiEvent{EventType: "storage.bytes", CustomerID: "cust_a", Value: 1000 * n, Timestamp: d.Add(12 * time.Hour)},
			uiEvent{EventType: "response.time.ms", CustomerID: "cust_a", Value: 100 + n, Timestamp: d.Add(15 * time.Hour)},
			uiEvent{EventType: "response.time.ms", CustomerID: "cust_a", Value: 150 + n, Timestamp: d.Add(15*time.Hour + 30*time.Minute)})
	}
	out = append(out, uiEvent{EventType: "api.calls", CustomerID: "cust_a", Value: 5, Timestamp: time.Date(2025, 12, 31, 23, 30, 0, 0, time.UTC)})
	for h := 1; h <= 5; h++ {
		out = append(out, uiEvent{EventType: "api.calls", CustomerID: "cust_a", Value: float64(h), Timestamp: now.Add(-time.Duration(h) * 53 * time.Minute)})
	}
	for i := 1; i <= 12; i++ {
		out = append(out, uiEvent{EventType: "api.calls", CustomerID: fmt.Sprintf("cust_%02d", i), Value: float64(i * 7), Timestamp: time.Date(2026, 1, 2+i%9, 8, i, 0, 0, time.UTC)},
			uiEvent{EventType: "storage.bytes", CustomerID: fmt.Sprintf("cust_%02d", i), Value: float64(500 * (13 - i)), Timestamp: time.Date(2026, 1, 3, 8, i, 0, 0, time.UTC)})
	}
	// LLM requests of cust_a, three models and a few users, twice a day
	// from 1 December; and of cust_01..cust_03 in January.
	models := []string{"gpt-4o", "claude", "llama", "gpt-4o"}
	for d, i := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC), 0; d.Before(now.Truncate(24 * time.Hour)); d, i = d.AddDate(0, 0, 1), i+1 {
		for k := 0; k < 2; k++ {
			out = append(out, uiEvent{EventType: "llm.request", CustomerID: "cust_a", Value: 1, Timestamp: d.Add(time.Duration(10+4*k) * time.Hour),
				Metadata: map[string]any{"model": models[(i+k)%4], "tokens": 100*(i%5+1) + 10*k, "userId": fmt.Sprintf("u%d", (i+k)%6), "latencyMs": 200 + 7*(i%11)}})
		}
	}
	for i := 1; i <= 3; i++ {
		out = append(out, uiEvent{EventType: "llm.request", CustomerID: fmt.Sprintf("cust_%02d", i), Value: 1, Timestamp: time.Date(2026, 1, 5, 9, i, 0, 0, time.UTC),
			Metadata: map[string]any{"model": "claude", "tokens": 1000 * i, "userId": "x", "latencyMs": 300}})
	}
	// A gauge: cust_a stores 5 GB in eu from 10 December, 8 GB from 5
	// January, and 2 GB in us from 8 January.
	out = append(out,
		uiEvent{EventType: "storage.gb", CustomerID: "cust_a", Value: 5, Timestamp: time.Date(2025, 12, 10, 6, 0, 0, 0, time.UTC), Metadata: map[string]any{"region": "eu"}},
		uiEvent{EventType: "storage.gb", CustomerID: "cust_a", Value: 8, Timestamp: time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC), Metadata: map[string]any{"region": "eu"}},
		uiEvent{EventType: "storage.gb", CustomerID: "cust_a", Value: 2, Timestamp: time.Date(2026, 1, 8, 18, 0, 0, 0, time.UTC), Metadata: map[string]any{"region": "us"}})
	return out
}

// openUIServer opens a server over SQLite with uiConfig, posts uiData
// through the API in batches a minute apart, aggregates, and marks one
// delivery failed. It returns the server, the events and the failed
// delivery's id.
func openUIServer(t *testing.T) (*TestServer, []uiEvent, string) {
	t.Helper()
	ts := MustOpenServerConfig(t, func(tb testing.TB) odometer.Store { return storetest.OpenSQLite(tb) }, uiConfig)
	events := uiData(testNow)
	const batches = 8
	for b := 0; b < batches; b++ {
		ts.SetNow(testNow.Add(-time.Duration(2*(batches-b)) * time.Minute))
		var part []uiEvent
		for i := b; i < len(events); i += batches {
			part = append(part, events[i])
		}
		body, _ := json.Marshal(part)
		ts.MustDo(t, 201, "POST", "/usagebatch", ts.IngestKey, string(body))
	}
	ts.SetNow(testNow)
	ts.mustTrigger(t)

	ds, _, err := ts.Store.FindDeliveries(context.Background(), odometer.DeliveryFilter{Status: odometer.DeliveryPending, CustomerID: "cust_a", Endpoint: uiHookA, Limit: 1})
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries: %d, %v", len(ds), err)
	}
	last := testNow.Add(-time.Hour)
	d := ds[0]
	d.Status, d.Attempts, d.LastError, d.LastStatus, d.LastAttemptAt, d.NextAttemptAt = odometer.DeliveryFailed, 10, "the endpoint answered 503 Service Unavailable", 503, &last, nil
	if err := ts.Store.RecordAttempts(context.Background(), []*odometer.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	return ts, events, d.ID
}

// uiUsage is GET /usage's answer.
type uiUsage struct {
	From  string    `json:"from"`
	To    string    `json:"to"`
	Usage []uiPoint `json:"usage"`
}

type uiPoint struct {
	Key   string  `json:"key"`
	Value float64 `json:"value"`
	Count int64   `json:"count"`
}

// uiChart is a chart as the page drew it.
type uiChart struct {
	Type   string    `json:"type"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Window string    `json:"window"`
	Points []uiPoint `json:"points"`
}

const readCharts = `[...document.querySelectorAll('figure.chart[data-meter]')].map(f => ({
  type: f.dataset.meter, from: f.dataset.from, to: f.dataset.to, window: f.dataset.window,
  points: [...f.querySelectorAll('.pt')].map(p => ({key: p.dataset.key, value: Number(p.dataset.value), count: Number(p.dataset.count)}))}))`

// uiCell is a cell of the current period's table.
type uiCell struct {
	Type  string `json:"type"`
	Which string `json:"which"`
	Value string `json:"value"`
	Count string `json:"count"`
	Text  string `json:"text"`
}

const readCells = `[...document.querySelectorAll('#current tr[data-meter] td.num[data-value]')].map(td => ({
  type: td.parentElement.dataset.meter, which: ['cur', 'same', 'prev'].find(c => td.classList.contains(c)),
  value: td.dataset.value, count: String(td.dataset.count), text: td.textContent}))`

func (ts *TestServer) usage(t *testing.T, key string, q url.Values) uiUsage {
	t.Helper()
	var u uiUsage
	ts.MustDo(t, 200, "GET", "/usage?"+q.Encode(), key, "").Decode(t, &u)
	return u
}

// shownNumber parses a number as the page shows it (1,234.5).
func shownNumber(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(strings.ReplaceAll(strings.TrimSpace(s), ",", ""), 64)
	if err != nil {
		t.Fatalf("shown number %q: %v", s, err)
	}
	return v
}

// monthSum sums the values of one customer's events of one type (every
// customer's for "") in [start, end).
func monthSum(events []uiEvent, customer, eventType string, start, end time.Time) float64 {
	sum := 0.0
	for _, e := range events {
		if (customer == "" || e.CustomerID == customer) && e.EventType == eventType && !e.Timestamp.Before(start) && e.Timestamp.Before(end) {
			sum += e.Value
		}
	}
	return sum
}

func TestUI_Browser(t *testing.T) {
	browser := startBrowser(t)
	ts, events, failedID := openUIServer(t)
	oslo, _ := time.LoadLocation("Europe/Oslo")
	jan := time.Date(2026, 1, 1, 0, 0, 0, 0, oslo)
	dec := time.Date(2025, 12, 1, 0, 0, 0, 0, oslo)

	t.Run("Customer", func(t *testing.T) {
		tab := newTab(t, browser, 1280, 900)
		signIn(t, tab, ts.URL, "#/customer/cust_a?range=90d&window=day", ts.ReadKey, "customer")
		screenshot(t, tab, "customer")

		// The table: this month and last, as GET /usage answers, and as
		// the events posted add up in Oslo's months.
		cells := mustEval[[]uiCell](t, tab, readCells)
		if got, want := len(cells), 3*len(uiMeters); got != want {
			t.Fatalf("%d cells with values, want %d: %+v", got, want, cells)
		}
		// The same point of last month: 13 December at 11:30 in Oslo, as
		// the clock is 13 January at 11:30 there.
		same := time.Date(2025, 12, 13, 11, 30, 0, 0, oslo)
		checked := 0
		for _, c := range cells {
			if c.Type == "storage.gbh" {
				continue // a gauge: from its aggregations, below
			}
			q := url.Values{"customerId": {"cust_a"}, "meter": {c.Type}, "window": {"month"}}
			cur := ts.usage(t, ts.ReadKey, q)
			u := cur
			switch c.Which {
			case "prev":
				q.Set("to", cur.From)
				u = ts.usage(t, ts.ReadKey, q)
			case "same":
				q.Set("from", dec.UTC().Format(time.RFC3339))
				q.Set("to", same.UTC().Format(time.RFC3339))
				u = ts.usage(t, ts.ReadKey, q)
			}
			if len(u.Usage) != 1 {
				t.Fatalf("%s %s: GET /usage answered %+v", c.Type, c.Which, u)
			}
			if got, want := c.Value, strconv.FormatFloat(u.Usage[0].Value, 'g', -1, 64); got != want {
				t.Errorf("%s %s: the page shows %s, GET /usage answers %s", c.Type, c.Which, got, want)
			}
			if got, want := c.Count, strconv.FormatInt(u.Usage[0].Count, 10); got != want {
				t.Errorf("%s %s: count %s, GET /usage answers %s", c.Type, c.Which, got, want)
			}
			if got, want := shownNumber(t, c.Text), math.Round(u.Usage[0].Value*1000)/1000; got != want {
				t.Errorf("%s %s: the text %q, want %v", c.Type, c.Which, c.Text, want)
			}
			if c.Type == "api.calls" {
				start, end := jan, testNow
				switch c.Which {
				case "prev":
					start, end = dec, jan
				case "same":
					start, end = dec, same
				}
				if got, want := u.Usage[0].Value, monthSum(events, "cust_a", "api.calls", start, end); got != want {
					t.Errorf("api.calls %s: %v, the posted events add up to %v", c.Which, got, want)
				}
			}
			checked++
		}
		if checked != 3*(len(uiMeters)-1) {
			t.Errorf("%d cells checked", checked)
		}
		// The comparison: the open month marked in progress, against the
		// same days of last month; the change is not coloured.
		heads := mustEval[string](t, tab, `document.querySelector('#current thead').textContent`)
		if !strings.Contains(heads, "in progress") || !strings.Contains(heads, "Dec 1–13") || !strings.Contains(heads, "Jan 1–13") {
			t.Errorf("the comparison's headings: %q", heads)
		}
		if coloured := mustEval[[]string](t, tab, `[...document.querySelectorAll('#current td.change')].filter(td => getComputedStyle(td).color !== getComputedStyle(document.body).color || td.matches('.up, .down, .ok, .bad')).map(td => td.parentElement.dataset.meter)`); len(coloured) != 0 {
			t.Errorf("changes coloured as good or bad: %v", coloured)
		}
		// Descriptions from the configuration.
		if text := mustEval[string](t, tab, `document.querySelector('#current tr[data-meter="llm.tokens"]').textContent`); !strings.Contains(text, "Tokens, by model") {
			t.Errorf("llm.tokens' row: %q", text)
		}

		// The charts, at several ranges and windows: each point is one of
		// GET /usage's, for the same range; a gauge's, one of GET
		// /aggregations'.
		for _, tc := range []struct{ rng, window string }{{"90d", "day"}, {"24h", "hour"}, {"90d", "week"}, {"12m", "month"}} {
			if tc.rng != "90d" || tc.window != "day" {
				goTo(t, tab, "#/customer/cust_a?range="+tc.rng+"&window="+tc.window, "customer")
			}
			charts := mustEval[[]uiChart](t, tab, readCharts)
			if got, want := len(charts), len(uiMeters); got != want {
				t.Fatalf("%d charts, want %d", got, want)
			}
			for i, c := range charts {
				if c.Type != uiMeters[i] {
					t.Fatalf("chart %d is %s, want %s", i, c.Type, uiMeters[i])
				}
				if c.Window != tc.window {
					t.Fatalf("%s: window %s, want %s", c.Type, c.Window, tc.window)
				}
				if c.Type == "storage.gbh" {
					if tc.window == "day" {
						checkGauge(t, ts, tab, c)
					}
					continue
				}
				u := ts.usage(t, ts.ReadKey, url.Values{"customerId": {"cust_a"}, "meter": {c.Type}, "window": {tc.window}, "from": {c.From}})
				if u.From != c.From || u.To != c.To {
					t.Fatalf("%s: range %s..%s, GET /usage %s..%s", c.Type, c.From, c.To, u.From, u.To)
				}
				if len(c.Points) == 0 && c.Type == "api.calls" {
					t.Fatalf("%s %s/%s: no points", c.Type, tc.rng, tc.window)
				}
				if got, want := fmt.Sprint(c.Points), fmt.Sprint(u.Usage); got != want {
					t.Fatalf("%s %s/%s: the chart\n%s\nGET /usage\n%s", c.Type, tc.rng, tc.window, got, want)
				}
			}
			// The range starts at a window's start in Oslo.
			from, err := time.Parse(time.RFC3339, charts[0].From)
			if err != nil {
				t.Fatal(err)
			}
			p := map[string]odometer.Period{"hour": odometer.Hourly, "day": odometer.Daily, "week": odometer.Weekly, "month": odometer.Monthly}[tc.window]
			if got := p.PeriodStart(from, oslo); !got.Equal(from) {
				t.Errorf("%s: the range starts at %v, not at the start of a %s in Oslo", tc.window, from, tc.window)
			}
		}

		// The grouped meter: each bar stacked from its groups, which add up
		// to the window's value, as GET /usage?groupBy=model answers; and
		// the table of this month's groups.
		goTo(t, tab, "#/customer/cust_a?range=30d&window=day", "customer")
		checkGroups(t, ts, tab)
		screenshot(t, tab, "customer-meters")

		// Aggregations, with revision and webhook state.
		goTo(t, tab, "#/customer/cust_a", "customer")
		mustDo(t, tab, chromedp.SetValue(chromedp.ID("agg-period"), "monthly"))
		mustEval[any](t, tab, `document.getElementById('agg-period').dispatchEvent(new Event('change')); null`)
		waitFor(t, tab, `document.querySelector('#aggregations tr[data-id="cust_a_monthly_202512"]')`)
		row := mustEval[map[string]string](t, tab, `(() => { const r = document.querySelector('#aggregations tr[data-id="cust_a_monthly_202512"]');
			return {revision: r.dataset.revision, text: r.textContent, calls: r.querySelector('li[data-event-type="api.calls"]').dataset.value}; })()`)
		if row["revision"] != "1" || !strings.Contains(row["text"], "complete") || !strings.Contains(row["text"], "pending") {
			t.Errorf("December's row: %q", row)
		}
		if got, want := row["calls"], strconv.FormatFloat(monthSum(events, "cust_a", "api.calls", dec, jan), 'g', -1, 64); got != want {
			t.Errorf("December's api.calls in the aggregation: %s, want %s", got, want)
		}

		// A read key sees no deliveries.
		if hidden := mustEval[bool](t, tab, `document.querySelector('#nav a[data-nav="deliveries"]').hidden`); !hidden {
			t.Error("a read key is shown the deliveries")
		}
	})

	t.Run("Pinned", func(t *testing.T) {
		// A pinned key lands on the portal view of its customer (see
		// TestUI_PinnedPortal), not on the operator's page.
		pinnedKey := ts.MustCreateKey(t, odometer.ScopeRead, "cust_a")
		tab := newTab(t, browser, 1280, 900)
		mustDo(t, tab, chromedp.Navigate(ts.URL+"/ui/"),
			chromedp.WaitVisible(chromedp.ID("apikey")),
			chromedp.SendKeys(chromedp.ID("apikey"), pinnedKey),
			chromedp.Click(chromedp.ID("signin")))
		waitPortal(t, tab)
		if got := mustEval[string](t, tab, `document.querySelector('h1').textContent`); got != "Usage of cust_a" {
			t.Fatalf("a key pinned to cust_a opened %q", got)
		}
		if n := mustEval[int](t, tab, `document.querySelectorAll('figure.chart, #current, #aggregations, #nav').length`); n != 0 {
			t.Errorf("the pinned key's view has %d of the operator's charts, tables or pages", n)
		}
		if n := mustEval[int](t, tab, `document.querySelectorAll('tr[data-meter] td[data-value]').length`); n == 0 {
			t.Fatal("no usage shown to the pinned key")
		}

		mustDo(t, tab, chromedp.Navigate(ts.URL+"/ui/#/customer/cust_b"))
		waitReady(t, tab, "not-found")
		if text := mustEval[string](t, tab, `document.getElementById('not-found').textContent`); !strings.Contains(text, "cust_b") {
			t.Errorf("not found page: %q", text)
		}
		if n := mustEval[int](t, tab, `document.querySelectorAll('figure.chart, #current').length`); n != 0 {
			t.Errorf("%d charts or tables of another customer", n)
		}
		screenshot(t, tab, "pinned-not-found")
		ts.MustDo(t, 404, "GET", "/usage?customerId=cust_b&eventType=api.calls", pinnedKey, "")
		ts.MustDo(t, 404, "GET", "/aggregations?customerId=cust_b", pinnedKey, "")
		ts.MustDo(t, 404, "GET", "/stats", pinnedKey, "")
	})

	t.Run("Overview", func(t *testing.T) {
		tab := newTab(t, browser, 1280, 900)
		signIn(t, tab, ts.URL, "", ts.AdminKey, "overview-totals")
		screenshot(t, tab, "overview")
		// The first load already draws the totals, over the server's
		// range (its clock is not this browser's).
		if n := mustEval[int](t, tab, `document.querySelectorAll('#totals .pt').length`); n == 0 {
			t.Errorf("the first load draws no totals: %q", mustEval[string](t, tab, `document.getElementById('totals-note').textContent`))
		}
		var st struct {
			EventsPerMinute []struct {
				Count int64 `json:"count"`
			} `json:"eventsPerMinute"`
			Backlog      int64                               `json:"backlog"`
			TopCustomers map[string][]map[string]interface{} `json:"topCustomers"`
			Deliveries   map[string]int64                    `json:"deliveries"`
		}
		ts.MustDo(t, 200, "GET", "/stats", ts.AdminKey, "").Decode(t, &st)

		// The chart's minutes are the server's, and they count every event
		// posted: all in the last hour of the server's clock.
		bars := mustEval[[]float64](t, tab, `[...document.querySelectorAll('#epm .pt')].map(p => Number(p.dataset.value))`)
		if got, want := len(bars), len(st.EventsPerMinute); got != want {
			t.Fatalf("%d bars, want %d", got, want)
		}
		total := 0.0
		for i, b := range bars {
			if b != float64(st.EventsPerMinute[i].Count) {
				t.Fatalf("minute %d: bar %v, GET /stats %d", i, b, st.EventsPerMinute[i].Count)
			}
			total += b
		}
		if got, want := total, float64(len(events)); got != want {
			t.Errorf("the bars add up to %v, %v events were posted", got, want)
		}
		if got := shownNumber(t, mustEval[string](t, tab, `document.querySelector('#tile-events .value').textContent`)); got != total {
			t.Errorf("the tile shows %v events, want %v", got, total)
		}
		if got, want := shownNumber(t, mustEval[string](t, tab, `document.querySelector('#tile-deliveries .value').textContent`)), float64(st.Deliveries["failed"]); got != want || want != 1 {
			t.Errorf("the tile shows %v failed deliveries, GET /stats %v (want 1)", got, want)
		}

		// The ranking: GET /stats's, and the top ten of January's sums in
		// Oslo of the events posted.
		type ranked struct {
			ID    string  `json:"customerId"`
			Value float64 `json:"value"`
		}
		shown := mustEval[[]ranked](t, tab, `[...document.querySelectorAll('[data-event-type="api.calls"] ol.ranking li')].map(li => ({customerId: li.dataset.customer, value: Number(li.dataset.value)}))`)
		sums := map[string]float64{}
		for _, e := range events {
			if e.EventType == "api.calls" && !e.Timestamp.Before(jan) {
				sums[e.CustomerID] += e.Value
			}
		}
		var want []ranked
		for id, v := range sums {
			want = append(want, ranked{id, v})
		}
		sort.Slice(want, func(i, j int) bool {
			if want[i].Value != want[j].Value {
				return want[i].Value > want[j].Value
			}
			return want[i].ID < want[j].ID
		})
		want = want[:10]
		if got, want := fmt.Sprint(shown), fmt.Sprint(want); got != want {
			t.Fatalf("top api.calls:\n%s\nwant\n%s", got, want)
		}
		var api []ranked
		for _, r := range st.TopCustomers["api.calls"] {
			api = append(api, ranked{r["customerId"].(string), r["value"].(float64)})
		}
		if got, want := fmt.Sprint(shown), fmt.Sprint(api); got != want {
			t.Fatalf("top api.calls:\n%s\nGET /stats\n%s", got, want)
		}

		// Usage across customers: each window's total is GET
		// /stats/usage's, and the posted events' sum over every customer
		// in that Oslo day; the top customers of the range are its.
		for _, meter := range []string{"api.calls", "llm.tokens", "storage.gbh"} {
			goTo(t, tab, "#/overview?meter="+meter+"&range=30d&window=day", "overview-totals")
			from := mustEval[string](t, tab, `document.getElementById('totals').dataset.from`)
			var tot struct {
				Usage []uiPoint `json:"usage"`
				Top   []struct {
					CustomerID string  `json:"customerId"`
					Value      float64 `json:"value"`
				} `json:"topCustomers"`
			}
			ts.MustDo(t, 200, "GET", "/stats/usage?"+url.Values{"meter": {meter}, "window": {"day"}, "from": {from}}.Encode(), ts.ReadKey, "").Decode(t, &tot)
			points := mustEval[[]uiPoint](t, tab, `[...document.querySelectorAll('#totals .pt')].map(p => ({key: p.dataset.key, value: Number(p.dataset.value), count: Number(p.dataset.count)}))`)
			if got, want := fmt.Sprint(points), fmt.Sprint(tot.Usage); got != want || len(points) == 0 {
				t.Fatalf("%s totals: the chart\n%s\nGET /stats/usage\n%s", meter, got, want)
			}
			if meter == "api.calls" {
				for _, p := range points {
					day, _ := time.ParseInLocation("20060102", p.Key, oslo)
					if want := monthSum(events, "", "api.calls", day, day.AddDate(0, 0, 1)); p.Value != want {
						t.Errorf("api.calls on %s: %v over every customer, the posted events add up to %v", p.Key, p.Value, want)
					}
				}
			}
			top := mustEval[[]string](t, tab, `[...document.querySelectorAll('#top-range tr[data-customer]')].map(r => r.dataset.customer + '=' + r.dataset.value)`)
			var want []string
			for _, c := range tot.Top {
				want = append(want, c.CustomerID+"="+strconv.FormatFloat(c.Value, 'g', -1, 64))
			}
			if fmt.Sprint(top) != fmt.Sprint(want) || len(want) == 0 {
				t.Errorf("%s top customers: the page %v, GET /stats/usage %v", meter, top, want)
			}
			// A grouped meter's groups over every customer, stacked: each
			// window's segments are GET /stats/usage's groups.
			if meter == "llm.tokens" {
				var g struct {
					Usage []struct {
						Key    string `json:"key"`
						Groups []struct {
							Group map[string]string `json:"group"`
							Value float64           `json:"value"`
						} `json:"groups"`
					} `json:"usage"`
				}
				ts.MustDo(t, 200, "GET", "/stats/usage?"+url.Values{"meter": {meter}, "window": {"day"}, "from": {from}}.Encode(), ts.ReadKey, "").Decode(t, &g)
				var want []string
				for _, w := range g.Usage {
					for _, x := range w.Groups {
						want = append(want, fmt.Sprintf("%s %s=%v", w.Key, x.Group["model"], x.Value))
					}
				}
				sort.Strings(want)
				segs := mustEval[[]string](t, tab, `[...document.querySelectorAll('#totals rect.seg')].map(r => r.dataset.key + ' ' + r.dataset.group + '=' + r.dataset.value).sort()`)
				if fmt.Sprint(segs) != fmt.Sprint(want) || len(want) == 0 {
					t.Errorf("llm.tokens groups over every customer: the chart\n%v\nGET /stats/usage\n%v", segs, want)
				}
			}
			// Every window with usage is drawn, visibly.
			if n := mustEval[int](t, tab, `new Set([...document.querySelectorAll('#totals .pt, #totals rect.seg')].filter(p => { const s = getComputedStyle(p); return s.fill !== 'transparent' && s.fill !== 'rgba(0, 0, 0, 0)' && s.fill !== 'none'; }).map(p => p.dataset.key)).size`); n != len(points) {
				t.Errorf("%s totals: %d of %d windows drawn visibly", meter, n, len(points))
			}
			if meter == "api.calls" {
				screenshot(t, tab, "overview-totals")
				// The picker that changed the page keeps the focus.
				mustDo(t, tab, chromedp.Focus(chromedp.ID("ov-range")))
				mustEval[any](t, tab, `delete document.body.dataset.ready; const s = document.getElementById('ov-range'); s.value = '7d'; s.dispatchEvent(new Event('change')); null`)
				waitReady(t, tab, "overview-totals")
				if got := mustEval[string](t, tab, `document.activeElement.id`); got != "ov-range" {
					t.Errorf("after a range change the focus is on %q", got)
				}
			}
		}
	})

	t.Run("Deliveries", func(t *testing.T) {
		// The second endpoint answered 410 Gone: the server disabled it,
		// and three of its deliveries failed.
		ctx := context.Background()
		gone := testNow.Add(-30 * time.Minute)
		if err := ts.Store.DisableEndpoint(ctx, uiHookB, "the endpoint answered 410 Gone", gone); err != nil {
			t.Fatal(err)
		}
		ds, _, err := ts.Store.FindDeliveries(ctx, odometer.DeliveryFilter{Status: odometer.DeliveryPending, Endpoint: uiHookB, Limit: 3})
		if err != nil || len(ds) != 3 {
			t.Fatalf("deliveries to %s: %d, %v", uiHookB, len(ds), err)
		}
		for _, d := range ds {
			d.Status, d.Attempts, d.LastStatus, d.LastAttemptAt, d.NextAttemptAt = odometer.DeliveryFailed, 1, 410, &gone, nil
			d.LastError = "410 Gone: the endpoint is disabled until a delivery to it is retried"
		}
		if err := ts.Store.RecordAttempts(ctx, ds); err != nil {
			t.Fatal(err)
		}
		var health []struct {
			URL        string           `json:"url"`
			State      string           `json:"state"`
			Deliveries map[string]int64 `json:"deliveries"`
		}
		ts.MustDo(t, 200, "GET", "/webhooks", ts.AdminKey, "").Decode(t, &health)
		if len(health) != 2 || health[1].URL != uiHookB || health[1].State != "disabled" || health[1].Deliveries["failed"] != 3 || health[0].Deliveries["failed"] != 1 {
			t.Fatalf("GET /webhooks: %+v", health)
		}

		// The configuration page says what the server does, not only
		// what the file says.
		tab := newTab(t, browser, 1280, 900)
		signIn(t, tab, ts.URL, "#/config", ts.AdminKey, "config")
		states := mustEval[map[string]string](t, tab, `Object.fromEntries([...document.querySelectorAll('#webhooks tr[data-url]')].map(r => [r.dataset.url, r.dataset.state + ': ' + r.textContent]))`)
		if got := states[uiHookB]; !strings.HasPrefix(got, "disabled: ") || !strings.Contains(got, "410 Gone") {
			t.Errorf("the configuration page shows %s as %q", uiHookB, got)
		}
		if got := states[uiHookA]; !strings.HasPrefix(got, "active: ") {
			t.Errorf("the configuration page shows %s as %q", uiHookA, got)
		}

		goTo(t, tab, "#/deliveries", "deliveries")
		// Endpoint health, as GET /webhooks answers, with whole URLs.
		type epRow struct {
			URL, State, Text string
			Failed           float64
			Full             bool
		}
		eps := mustEval[[]epRow](t, tab, `[...document.querySelectorAll('#endpoints tr[data-url]')].map(r => { const c = r.querySelector('td.endpoint');
			return {URL: r.dataset.url, State: r.dataset.state, Text: r.textContent, Failed: Number(r.cells[6].textContent.replace(/,/g, '')),
				Full: c.textContent === r.dataset.url && c.scrollWidth <= c.clientWidth + 1 && c.scrollHeight <= c.clientHeight + 1}; })`)
		if len(eps) != 2 {
			t.Fatalf("endpoints %+v", eps)
		}
		for i, e := range eps {
			if e.URL != health[i].URL || e.State != health[i].State || e.Failed != float64(health[i].Deliveries["failed"]) {
				t.Errorf("endpoint %d: the page %+v, GET /webhooks %+v", i, e, health[i])
			}
			if !e.Full {
				t.Errorf("%s is cut on the page", e.URL)
			}
		}
		if !strings.Contains(eps[1].Text, "410 Gone") {
			t.Errorf("the disabled endpoint does not say why: %q", eps[1].Text)
		}

		// The failed list: the delivery marked failed, with its error.
		row := fmt.Sprintf(`#deliveries tr[data-id=%q]`, failedID)
		if text := mustEval[string](t, tab, `document.querySelector('`+row+`').textContent`); !strings.Contains(text, "503 Service Unavailable") {
			t.Fatalf("the failed row: %q", text)
		}
		screenshot(t, tab, "deliveries")

		// Filtered by endpoint and state, as GET /deliveries answers.
		filter := func(endpoint, status string) []string {
			t.Helper()
			mustEval[any](t, tab, fmt.Sprintf(`delete document.body.dataset.ready; document.getElementById('dl-endpoint').value = %q;
				document.getElementById('dl-status').value = %q; document.getElementById('dl-status').dispatchEvent(new Event('change')); null`, endpoint, status))
			waitReady(t, tab, "deliveries")
			return mustEval[[]string](t, tab, `[...document.querySelectorAll('#deliveries tr[data-id]')].map(r => r.dataset.id + ' ' + r.dataset.endpoint + ' ' + r.dataset.status)`)
		}
		apiList := func(endpoint, status string) []string {
			var ds []struct{ ID, Endpoint, Status string }
			ts.MustDo(t, 200, "GET", "/deliveries?"+url.Values{"endpoint": {endpoint}, "status": {status}, "limit": {"50"}}.Encode(), ts.AdminKey, "").Decode(t, &ds)
			var out []string
			for _, d := range ds {
				out = append(out, d.ID+" "+d.Endpoint+" "+d.Status)
			}
			return out
		}
		for _, f := range [][2]string{{uiHookB, "failed"}, {uiHookA, "failed"}, {uiHookB, "pending"}, {"", "failed"}} {
			got, want := filter(f[0], f[1]), apiList(f[0], f[1])
			if fmt.Sprint(got) != fmt.Sprint(want) || len(want) == 0 {
				t.Errorf("endpoint %q, %s: the page\n%v\nGET /deliveries\n%v", f[0], f[1], got, want)
			}
		}
		// The disabled endpoint's pending deliveries say why they wait.
		filter(uiHookB, "pending")
		if when := mustEval[string](t, tab, `document.querySelector('#deliveries tr[data-id] td.when').textContent`); !strings.Contains(when, "disabled") {
			t.Errorf("a parked delivery says %q", when)
		}

		// The payload and the last response of one delivery.
		filter(uiHookB, "failed")
		id := mustEval[string](t, tab, `document.querySelector('#deliveries tr[data-id]').dataset.id`)
		mustDo(t, tab, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#deliveries tr[data-id=%q] button.details`, id))))
		waitFor(t, tab, fmt.Sprintf(`document.querySelector('tr[data-detail=%q] pre.payload')`, id))
		var one struct {
			Payload    map[string]any `json:"payload"`
			LastStatus int            `json:"lastStatus"`
		}
		ts.MustDo(t, 200, "GET", "/deliveries/"+id, ts.AdminKey, "").Decode(t, &one)
		shownPayload := mustEval[map[string]any](t, tab, fmt.Sprintf(`JSON.parse(document.querySelector('tr[data-detail=%q] pre.payload').textContent)`, id))
		if fmt.Sprint(shownPayload) != fmt.Sprint(one.Payload) || len(one.Payload) == 0 {
			t.Errorf("payload: the page %v, GET /deliveries/{id} %v", shownPayload, one.Payload)
		}
		if got := mustEval[string](t, tab, fmt.Sprintf(`document.querySelector('tr[data-detail=%q] .last-status').textContent`, id)); got != strconv.Itoa(one.LastStatus) || got != "410" {
			t.Errorf("last response status %q, want 410", got)
		}
		screenshot(t, tab, "delivery-detail")

		// Retry every failed delivery of the disabled endpoint: the focus
		// stays on the button.
		mustEval[any](t, tab, `delete document.body.dataset.ready; null`)
		mustDo(t, tab, chromedp.Focus(chromedp.CSS(fmt.Sprintf(`button.retry-all[data-url=%q]`, uiHookB))),
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`button.retry-all[data-url=%q]`, uiHookB))))
		waitFor(t, tab, `document.getElementById('msg').textContent.includes('3 failed deliveries')`)
		waitReady(t, tab, "deliveries")
		if left, _, err := ts.Store.FindDeliveries(ctx, odometer.DeliveryFilter{Status: odometer.DeliveryFailed, Endpoint: uiHookB, Limit: 10}); err != nil || len(left) != 0 {
			t.Errorf("after retry all, %d failed deliveries to %s (%v)", len(left), uiHookB, err)
		}
		if off, _ := ts.Store.DisabledEndpoints(ctx); off[uiHookB] != "" {
			t.Errorf("after retry all, %s is still disabled", uiHookB)
		}
		if state := mustEval[string](t, tab, fmt.Sprintf(`document.querySelector('#endpoints tr[data-url=%q]').dataset.state`, uiHookB)); state != "active" {
			t.Errorf("after retry all the page shows %s as %s", uiHookB, state)
		}
		if got := mustEval[string](t, tab, `document.activeElement.dataset.url || document.activeElement.tagName`); got != uiHookB {
			t.Errorf("after retry all the focus is on %s", got)
		}

		// One delivery, again.
		filter("", "failed")
		mustDo(t, tab, chromedp.Click(chromedp.CSS(row+" button.retry")))
		waitFor(t, tab, fmt.Sprintf(`!document.querySelector('#deliveries tr[data-id=%q]')`, failedID))
		d, err := ts.Store.FindDelivery(ctx, failedID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != odometer.DeliveryPending {
			t.Fatalf("after retry the delivery is %s, want pending", d.Status)
		}
		if msg := mustEval[string](t, tab, `document.getElementById('msg').textContent`); !strings.Contains(msg, failedID) {
			t.Errorf("message %q does not name the delivery", msg)
		}
	})

	t.Run("Configuration", func(t *testing.T) {
		tab := newTab(t, browser, 1280, 900)
		signIn(t, tab, ts.URL, "#/config", ts.AdminKey, "config")
		screenshot(t, tab, "configuration")
		rows := mustEval[[]string](t, tab, `[...document.querySelectorAll('#event-types tr[data-event-type]')].map(r => r.dataset.eventType + '=' + r.querySelector('.pill').textContent)`)
		if got, want := strings.Join(rows, " "), "api.calls=sum llm.request=count response.time.ms=avg storage.bytes=max storage.gb=last"; got != want {
			t.Errorf("event types %q, want %q", got, want)
		}
		hooks := mustEval[string](t, tab, `document.getElementById('webhooks').textContent`)
		if !strings.Contains(hooks, "https://billing.example.com/hooks/metering") || !strings.Contains(hooks, "whsec_********") {
			t.Errorf("webhooks %q", hooks)
		}
		if html := mustEval[string](t, tab, `document.documentElement.outerHTML`); strings.Contains(html, testSecret) {
			t.Error("the page shows the webhook secret")
		}
		if got := mustEval[string](t, tab, `document.getElementById('settings').textContent`); !strings.Contains(got, "Europe/Oslo") {
			t.Errorf("settings %q", got)
		}
	})

	t.Run("Phone", func(t *testing.T) {
		tab := newTab(t, browser, 390, 844)
		signIn(t, tab, ts.URL, "#/customer/cust_a?range=30d&window=day", ts.ReadKey, "customer")
		screenshot(t, tab, "customer-phone")
		saveScreenshot(t, tab, "customer-phone-first-screen", chromedp.CaptureScreenshot())
		// Nothing wider than the screen: tables scroll in their own boxes.
		if w := mustEval[int](t, tab, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("the page is %d px wide on a 390 px screen", w)
		}
		if w := mustEval[float64](t, tab, `Math.max(...[...document.querySelectorAll('figure.chart svg')].map(s => s.getBoundingClientRect().right))`); w > 390 {
			t.Errorf("a chart reaches %v px on a 390 px screen", w)
		}
		if fits := mustEval[bool](t, tab, `(() => { const t = document.getElementById('current'); return t.scrollWidth <= t.parentElement.clientWidth; })()`); !fits {
			t.Error("this month's table is wider than a 390 px screen")
		}

		// The overview and the webhooks page fit too.
		phone := newTab(t, browser, 390, 844)
		signIn(t, phone, ts.URL, "#/overview", ts.AdminKey, "overview-totals")
		screenshot(t, phone, "overview-phone")
		if w := mustEval[int](t, phone, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("the overview is %d px wide on a 390 px screen", w)
		}
		goTo(t, phone, "#/deliveries", "deliveries")
		screenshot(t, phone, "webhooks-phone")
		if w := mustEval[int](t, phone, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("the webhooks page is %d px wide on a 390 px screen: %v", w, mustEval[[]string](t, phone, `[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391).slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))`))
		}
	})

	t.Run("WrongKey", func(t *testing.T) {
		tab := newTab(t, browser, 1280, 900)
		for key, want := range map[string]string{"odo_wrong": "This key was refused.", ts.IngestKey: "may not read usage"} {
			mustDo(t, tab, chromedp.Navigate(ts.URL+"/ui/"), chromedp.WaitVisible(chromedp.ID("apikey")),
				chromedp.SendKeys(chromedp.ID("apikey"), key), chromedp.Click(chromedp.ID("signin")))
			waitFor(t, tab, fmt.Sprintf(`document.getElementById('msg').textContent.includes(%q)`, want))
			if stored := mustEval[string](t, tab, `sessionStorage.getItem('odometer.key') || ''`); stored != "" {
				t.Errorf("a refused key was kept")
			}
		}
	})

	// Last: it posts events.
	t.Run("AutoRefresh", func(t *testing.T) {
		tab := newTab(t, browser, 1280, 900)
		signIn(t, tab, ts.URL, "?refresh=1", ts.AdminKey, "overview-totals")
		// A reload would lose this.
		mustEval[any](t, tab, `window.marker = 'kept'; null`)
		lastBar := `Number([...document.querySelectorAll('#epm .pt')].pop().dataset.value)`
		before := mustEval[float64](t, tab, lastBar)
		ts.MustPostEvent(t, "api.calls", `{"customerId": "cust_a", "value": 7}`)
		waitFor(t, tab, fmt.Sprintf(`%s === %v`, lastBar, before+1))

		goTo(t, tab, "#/customer/cust_a", "customer")
		cell := `document.querySelector('#current tr[data-event-type="api.calls"] td.cur').dataset.value`
		old := mustEval[string](t, tab, cell)
		v, _ := strconv.ParseFloat(old, 64)
		ts.MustPostEvent(t, "api.calls", `{"customerId": "cust_a", "value": 7}`)
		waitFor(t, tab, fmt.Sprintf(`Number(%s) === %v`, cell, v+7))
		if got := mustEval[string](t, tab, `String(window.marker)`); got != "kept" {
			t.Fatal("the page was reloaded")
		}
		u := ts.usage(t, ts.ReadKey, url.Values{"customerId": {"cust_a"}, "eventType": {"api.calls"}, "window": {"month"}})
		if got, want := mustEval[string](t, tab, cell), strconv.FormatFloat(u.Usage[0].Value, 'g', -1, 64); got != want {
			t.Errorf("after refresh the page shows %s, GET /usage %s", got, want)
		}
	})
}

// checkGauge checks a gauge's chart against GET /aggregations: a point
// per daily aggregation that holds the meter, with its value and count,
// drawn as a step line; and a day with no event holds the gauge's value
// (5 GB all day: 120 GB-hours).
func checkGauge(t *testing.T, ts *TestServer, tab context.Context, c uiChart) {
	t.Helper()
	var aggs []struct {
		PeriodKey   string             `json:"periodKey"`
		PeriodStart string             `json:"periodStart"`
		Events      map[string]float64 `json:"events"`
		EventCounts map[string]int64   `json:"eventCounts"`
	}
	ts.MustDo(t, 200, "GET", "/aggregations?"+url.Values{"customerId": {"cust_a"}, "period": {"daily"}, "from": {c.From}, "limit": {"1000"}}.Encode(), ts.ReadKey, "").Decode(t, &aggs)
	sort.Slice(aggs, func(i, j int) bool { return aggs[i].PeriodStart < aggs[j].PeriodStart })
	var want []uiPoint
	for _, a := range aggs {
		if v, ok := a.Events[c.Type]; ok {
			want = append(want, uiPoint{a.PeriodKey, v, a.EventCounts[c.Type]})
		}
	}
	if len(want) == 0 {
		t.Fatalf("%s: no aggregations hold the gauge", c.Type)
	}
	if got, want := fmt.Sprint(c.Points), fmt.Sprint(want); got != want {
		t.Fatalf("%s: the chart\n%s\nGET /aggregations\n%s", c.Type, got, want)
	}
	held := false
	for _, p := range c.Points {
		if p.Key == "20251220" {
			held = p.Value == 120 && p.Count == 0
		}
	}
	if !held {
		t.Errorf("%s: 20 December (no event, 5 GB held) is not 120 GB-hours: %v", c.Type, c.Points)
	}
	// A step line: each window's value is a horizontal segment.
	d := mustEval[string](t, tab, `document.querySelector('figure[data-meter="storage.gbh"] path.line:not(.thin)').getAttribute('d')`)
	steps := strings.Count(d, "L") + strings.Count(d, "M")
	if steps < 2*len(want) {
		t.Errorf("%s: the line has %d vertices for %d windows: not a step line: %s", c.Type, steps, len(want), d)
	}
}

// checkGroups checks the grouped meter llm.tokens: each window's stacked
// segments are GET /usage?groupBy=model's groups and add up to the
// window's value; the table of groups is this month's.
func checkGroups(t *testing.T, ts *TestServer, tab context.Context) {
	t.Helper()
	from := mustEval[string](t, tab, `document.querySelector('figure[data-meter="llm.tokens"]').dataset.from`)
	var u struct {
		Usage []struct {
			Key    string  `json:"key"`
			Value  float64 `json:"value"`
			Groups []struct {
				Group map[string]string `json:"group"`
				Value float64           `json:"value"`
				Count int64             `json:"count"`
			} `json:"groups"`
		} `json:"usage"`
	}
	ts.MustDo(t, 200, "GET", "/usage?"+url.Values{"customerId": {"cust_a"}, "meter": {"llm.tokens"}, "window": {"day"}, "from": {from}, "groupBy": {"model"}}.Encode(), ts.ReadKey, "").Decode(t, &u)
	type seg struct {
		Key   string  `json:"key"`
		Group string  `json:"group"`
		Value float64 `json:"value"`
	}
	segs := mustEval[[]seg](t, tab, `[...document.querySelectorAll('figure[data-meter="llm.tokens"] rect.seg')].map(r => ({key: r.dataset.key, group: r.dataset.group, value: Number(r.dataset.value)}))`)
	shown := map[string]float64{}
	for _, s := range segs {
		shown[s.Key+" "+s.Group] += s.Value
	}
	n := 0
	for _, w := range u.Usage {
		sum := 0.0
		for _, g := range w.Groups {
			if got, want := shown[w.Key+" "+g.Group["model"]], g.Value; got != want {
				t.Errorf("llm.tokens %s %s: the chart shows %v, GET /usage %v", w.Key, g.Group["model"], got, want)
			}
			sum += g.Value
			n++
		}
		if sum != w.Value {
			t.Errorf("llm.tokens %s: the groups add up to %v, the window is %v", w.Key, sum, w.Value)
		}
	}
	if n == 0 || len(segs) != n {
		t.Errorf("%d segments drawn, %d groups answered", len(segs), n)
	}
	legend := mustEval[string](t, tab, `document.querySelector('figure[data-meter="llm.tokens"] ul.legend').textContent`)
	for _, m := range []string{"gpt-4o", "claude", "llama"} {
		if !strings.Contains(legend, m) {
			t.Errorf("the legend %q lacks %s", legend, m)
		}
	}
	// This month's groups.
	var month struct {
		Usage []struct {
			Groups []struct {
				Group map[string]string `json:"group"`
				Value float64           `json:"value"`
			} `json:"groups"`
		} `json:"usage"`
	}
	ts.MustDo(t, 200, "GET", "/usage?customerId=cust_a&meter=llm.tokens&window=month&groupBy=model", ts.ReadKey, "").Decode(t, &month)
	want := map[string]float64{}
	for _, g := range month.Usage[0].Groups {
		want[g.Group["model"]] = g.Value
	}
	got := mustEval[map[string]float64](t, tab, `Object.fromEntries([...document.querySelectorAll('table.groups[data-meter="llm.tokens"] tr[data-group]')].map(r => [r.dataset.group, Number(r.dataset.value)]))`)
	if fmt.Sprint(got) != fmt.Sprint(want) || len(want) != 3 {
		t.Errorf("this month's groups: the page %v, GET /usage %v", got, want)
	}
	// The numbers as a table, for a keyboard and a screen reader.
	rows := mustEval[int](t, tab, `document.querySelectorAll('figure[data-meter="llm.tokens"] details.datatable tbody tr[data-key]').length`)
	if rows != len(u.Usage) {
		t.Errorf("the data table has %d rows, the chart %d windows", rows, len(u.Usage))
	}
}
