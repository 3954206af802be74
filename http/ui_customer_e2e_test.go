package http

// The customer page's billing cycle and alerts, and the portal view that a
// key pinned to a customer sees, in a real browser against a real server.

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// cycleConfig has billing cycles, so that the portal view shows cycles, in
// a zone other than UTC, and a webhook, so that alerts send.
const cycleConfig = `{
  "periods": ["daily", "monthly", "billing"],
  "timezone": "Europe/Oslo",
  "maxEventAge": "0",
  "events": {
    "api.calls":   { "op": "sum", "description": "Total API calls" },
    "llm.request": { "op": "count", "description": "LLM requests" }
  },
  "meters": {
    "llm.tokens": { "eventType": "llm.request", "op": "sum", "value": "$.tokens", "groupBy": ["model"], "description": "Tokens, by model" }
  },
  "webhooks": [ { "url": "` + uiHookA + `", "secret": "` + testSecret + `", "enabled": true } ]
}`

// cycleAlerts is what openCycleServer made: the alerts by name.
type cycleAlerts struct {
	own, cycle, every, other string
}

// openCycleServer opens a server with cycleConfig: cust_a billed from the
// 20th of each month in Oslo, with usage over three cycles, four alerts
// (two of cust_a's that fire today, one of every customer that does not,
// one of cust_b), and the evaluator run as events arrive.
func openCycleServer(t *testing.T) (*TestServer, cycleAlerts) {
	t.Helper()
	ts := MustOpenServerConfig(t, func(tb testing.TB) odometer.Store { return storetest.OpenSQLite(tb) }, cycleConfig)
	ts.MustDo(t, 200, "PUT", "/customers/cust_a", ts.AdminKey, `{"name": "Acme", "billingAnchor": "2025-11-20T00:00:00+01:00"}`)
	var batch []uiEvent
	for i, d := 0, time.Date(2025, 11, 3, 9, 0, 0, 0, time.UTC); d.Before(time.Date(2026, 1, 13, 0, 0, 0, 0, time.UTC)); i, d = i+1, d.AddDate(0, 0, 4) {
		batch = append(batch,
			uiEvent{EventType: "api.calls", CustomerID: "cust_a", Value: 2, Timestamp: d},
			uiEvent{EventType: "llm.request", CustomerID: "cust_a", Value: 1, Timestamp: d.Add(time.Hour),
				Metadata: map[string]any{"model": []string{"gpt-4o", "mini"}[i%2], "tokens": float64(100*(i%3)) + 0.25}},
			uiEvent{EventType: "api.calls", CustomerID: "cust_b", Value: 1000, Timestamp: d})
	}
	body, _ := json.Marshal(batch)
	ts.MustDo(t, 201, "POST", "/usagebatch", ts.IngestKey, string(body))
	ts.mustTrigger(t)

	var a cycleAlerts
	for _, x := range []struct {
		dst  *string
		body string
	}{
		{&a.own, `{"meter": "api.calls", "period": "daily", "threshold": 10, "customerId": "cust_a"}`},
		{&a.cycle, `{"meter": "api.calls", "period": "billing", "threshold": 25, "customerId": "cust_a"}`},
		{&a.every, `{"meter": "llm.tokens", "period": "monthly", "threshold": 1000000}`},
		{&a.other, `{"meter": "api.calls", "period": "daily", "threshold": 1, "customerId": "cust_b"}`},
	} {
		var rec AlertRecord
		ts.MustDo(t, 201, "POST", "/alerts", ts.AdminKey, x.body).Decode(t, &rec)
		*x.dst = rec.ID
	}
	ev := &odometer.AlertEvaluator{Store: ts.Store, Config: ts.API.Config, Now: ts.Now, Customers: ts.Store}
	evaluate := func(want int) {
		t.Helper()
		if res, err := ev.RunOnce(context.Background()); err != nil || res.Fired != want {
			t.Fatalf("alerts: %+v, %v; want %d fired", res, err, want)
		}
	}
	// Today: 6, under both thresholds; then 7 crosses the day's 10 and
	// the cycle's 25 (12 before today: six days of 2 since 20 December).
	ts.SetNow(testNow.Add(-time.Hour))
	ts.MustDo(t, 201, "POST", "/usage/api.calls", ts.IngestKey, `{"customerId": "cust_a", "value": 6}`)
	evaluate(0)
	ts.SetNow(testNow.Add(-30 * time.Minute))
	ts.MustDo(t, 201, "POST", "/usage/api.calls", ts.IngestKey, `{"customerId": "cust_a", "value": 7}`)
	evaluate(2)
	ts.SetNow(testNow)
	ts.MustDo(t, 201, "POST", "/usage/api.calls", ts.IngestKey, `{"customerId": "cust_a", "value": 1}`)
	return ts, a
}

// alertStatus is an alert of GET /customers/{id}/alerts.
type alertStatus struct {
	ID          string  `json:"id"`
	Meter       string  `json:"meter"`
	Period      string  `json:"period"`
	Threshold   float64 `json:"threshold"`
	CustomerID  string  `json:"customerId"`
	PeriodKey   string  `json:"periodKey"`
	PeriodStart string  `json:"periodStart"`
	PeriodEnd   string  `json:"periodEnd"`
	Timezone    string  `json:"timezone"`
	Value       float64 `json:"value"`
	Fired       *struct {
		FiredAt string  `json:"firedAt"`
		Value   float64 `json:"value"`
	} `json:"fired"`
}

// shownAlert is a row of the page's alerts table.
type shownAlert struct {
	ID        string `json:"id"`
	Key       string `json:"key"`
	Value     string `json:"value"`
	Threshold string `json:"threshold"`
	FiredAt   string `json:"firedAt"`
	Period    string `json:"period"`
	Usage     string `json:"usage"`
	Fired     string `json:"fired"`
}

const readAlerts = `[...document.querySelectorAll('#alerts tr[data-alert-id]')].map(r => ({id: r.dataset.alertId, key: r.dataset.periodKey,
  value: r.dataset.value, threshold: r.dataset.threshold, firedAt: r.dataset.firedAt, period: r.querySelector('td.period').textContent,
  usage: r.querySelector('td.usage').textContent, fired: r.querySelector('td.fired').textContent}))`

// waitPortal waits until the tab has left the dashboard for the portal
// view and drawn it.
func waitPortal(t *testing.T, tab context.Context) {
	t.Helper()
	waitAcross(t, tab, `location.pathname === '/ui/portal.html' && document.body.dataset.ready === 'portal'`)
}

// waitAcross is waitFor across a navigation, which ends a wait in the
// page it leaves.
func waitAcross(t *testing.T, tab context.Context, js string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := chromedp.Run(tab, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond),
			chromedp.WithPollingTimeout(5*time.Second)))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			html, _ := chromedp.Run(tab, chromedp.Evaluate[string](`location.href + ' ' + document.body.outerHTML.slice(0, 3000)`))
			t.Fatalf("waiting for %s: %v\npage: %s", js, err, html)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dayIn is an instant's day in zone, as the page writes it.
func dayIn(t *testing.T, instant, zone string) string {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339, instant)
	if err != nil {
		t.Fatal(err)
	}
	return at.In(loc).Format("2006-01-02")
}

// TestUI_CustomerCycleAndAlerts: the customer page shows the customer's
// current billing cycle and billing settings as GET /customers/{id}
// answers them, and the alerts that apply to it with their usage and
// firing as GET /customers/{id}/alerts answers them.
func TestUI_CustomerCycleAndAlerts(t *testing.T) {
	browser := startBrowser(t)
	ts, alerts := openCycleServer(t)
	tab := newTab(t, browser, 1280, 1000)
	signIn(t, tab, ts.URL, "#/customer/cust_a", ts.ReadKey, "customer")
	screenshot(t, tab, "customer-cycle-alerts")

	var c struct {
		BillingAnchor string `json:"billingAnchor"`
		CreatedAt     string `json:"createdAt"`
		CurrentCycle  struct {
			PeriodStart string             `json:"periodStart"`
			PeriodEnd   string             `json:"periodEnd"`
			PeriodKey   string             `json:"periodKey"`
			Timezone    string             `json:"timezone"`
			Events      map[string]float64 `json:"events"`
		} `json:"currentCycle"`
	}
	ts.MustDo(t, 200, "GET", "/customers/cust_a", ts.ReadKey, "").Decode(t, &c)
	cyc := c.CurrentCycle
	// The cycle from the anchor's day, the 20th, in Oslo.
	if cyc.PeriodKey != "20251220" || cyc.PeriodStart != "2025-12-19T23:00:00.000Z" || cyc.PeriodEnd != "2026-01-19T22:59:59.999Z" {
		t.Fatalf("GET /customers/cust_a: cycle %+v", cyc)
	}
	shown := mustEval[map[string]string](t, tab, `(() => { const d = document.getElementById('cycle-dates');
		return {start: d.dataset.periodStart, end: d.dataset.periodEnd, key: d.dataset.periodKey, text: d.textContent,
			anchor: document.getElementById('billing-anchor').textContent, interval: document.getElementById('billing-interval').textContent,
			zone: document.getElementById('billing-zone').textContent, profile: document.getElementById('billing-settings').dataset.profile}; })()`)
	if shown["start"] != cyc.PeriodStart || shown["end"] != cyc.PeriodEnd || shown["key"] != cyc.PeriodKey {
		t.Errorf("the page's cycle %v, GET /customers/cust_a's %+v", shown, cyc)
	}
	days := dayIn(t, cyc.PeriodStart, cyc.Timezone) + " to " + dayIn(t, cyc.PeriodEnd, cyc.Timezone)
	if days != "2025-12-20 to 2026-01-19" || !strings.Contains(shown["text"], days) || !strings.Contains(shown["text"], "in progress") {
		t.Errorf("the cycle's text %q, want %q in progress", shown["text"], days)
	}
	if !strings.HasPrefix(shown["anchor"], dayIn(t, c.BillingAnchor, cyc.Timezone)) || shown["interval"] != "every month" ||
		!strings.Contains(shown["zone"], "Europe/Oslo") || shown["profile"] != "true" {
		t.Errorf("billing settings shown: %v", shown)
	}
	// The cycle's usage so far: GET /customers/{id}'s, meter by meter.
	rows := mustEval[map[string]string](t, tab, `Object.fromEntries([...document.querySelectorAll('#cycle-usage tr[data-meter]')].map(r => [r.dataset.meter, r.dataset.value]))`)
	if len(rows) != len(cyc.Events) || len(rows) != 3 {
		t.Errorf("cycle usage rows %v, GET /customers/cust_a %v", rows, cyc.Events)
	}
	for m, v := range cyc.Events {
		if got := rows[m]; got != strconv.FormatFloat(v, 'g', -1, 64) {
			t.Errorf("cycle usage of %s: the page %s, the API %v", m, got, v)
		}
	}
	if got, want := cyc.Events["api.calls"], 26.0; got != want {
		t.Errorf("api.calls in the cycle: %v, the events posted add up to %v", got, want)
	}

	// The alerts: cust_a's own and every customer's, not cust_b's.
	var api struct {
		Alerts []alertStatus `json:"alerts"`
	}
	ts.MustDo(t, 200, "GET", "/customers/cust_a/alerts", ts.ReadKey, "").Decode(t, &api)
	page := mustEval[[]shownAlert](t, tab, readAlerts)
	if len(page) != 3 || len(api.Alerts) != 3 {
		t.Fatalf("the page shows %d alerts, the API %d, want 3: %+v", len(page), len(api.Alerts), page)
	}
	fired := 0
	for i, a := range api.Alerts {
		p := page[i]
		if p.ID != a.ID || p.ID == alerts.other {
			t.Errorf("alert %d: the page %s, the API %s", i, p.ID, a.ID)
			continue
		}
		firedAt := ""
		if a.Fired != nil {
			firedAt = a.Fired.FiredAt
			fired++
		}
		if p.Key != a.PeriodKey || p.Value != strconv.FormatFloat(a.Value, 'g', -1, 64) || shownNumber(t, p.Threshold) != a.Threshold || p.FiredAt != firedAt {
			t.Errorf("alert %s: the page %+v, the API %+v", a.ID, p, a)
		}
		days := dayIn(t, a.PeriodStart, a.Timezone)
		if end := dayIn(t, a.PeriodEnd, a.Timezone); end != days {
			days += " to " + end
		}
		if !strings.Contains(p.Period, days) {
			t.Errorf("alert %s: its period %q, want %q", a.ID, p.Period, days)
		}
		if (a.Fired != nil) != strings.Contains(p.Fired, "fired") || (a.Fired == nil) != strings.Contains(p.Fired, "not yet") {
			t.Errorf("alert %s: fired cell %q, the API %+v", a.ID, p.Fired, a.Fired)
		}
		pct := fmt.Sprintf("%d%%", int(a.Value/a.Threshold*100))
		if !strings.Contains(p.Usage, pct) {
			t.Errorf("alert %s: usage %q, want %s", a.ID, p.Usage, pct)
		}
		switch a.ID {
		case alerts.own:
			// Fired at 13 by the second event of the day; 14 so far.
			if a.Fired == nil || a.Fired.Value != 13 || a.Fired.FiredAt != odometer.FormatTime(testNow.Add(-30*time.Minute)) || a.Value != 14 || days != "2026-01-13" {
				t.Errorf("the daily alert: %+v fired %+v", a, a.Fired)
			}
		case alerts.cycle:
			if a.Fired == nil || a.Fired.Value != 25 || a.Value != 26 || days != "2025-12-20 to 2026-01-19" {
				t.Errorf("the cycle's alert: %+v fired %+v", a, a.Fired)
			}
		case alerts.every:
			if a.Fired != nil || a.CustomerID != "" || days != "2026-01-01 to 2026-01-31" {
				t.Errorf("the alert of every customer: %+v", a)
			}
		}
	}
	if fired != 2 {
		t.Errorf("%d alerts fired, want 2", fired)
	}
}

// TestUI_PinnedPortal: a key pinned to a customer signs in to the
// dashboard and lands on the portal view of its usage, with the numbers
// of GET /portal/usage, a CSV of them, and nothing of the vendor's: no
// revision, no webhook state, no configuration, no other customer.
func TestUI_PinnedPortal(t *testing.T) {
	browser := startBrowser(t)
	ts, _ := openCycleServer(t)
	pinnedKey := ts.MustCreateKey(t, odometer.ScopeRead, "cust_a")
	tab := newTab(t, browser, 1280, 900)
	mustDo(t, tab, chromedp.Navigate(ts.URL+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("apikey")),
		chromedp.SendKeys(chromedp.ID("apikey"), pinnedKey),
		chromedp.Click(chromedp.ID("signin")))
	waitPortal(t, tab)
	screenshot(t, tab, "pinned-portal")

	var view struct {
		CustomerID string `json:"customerId"`
		Period     string `json:"period"`
		Periods    []struct {
			PeriodKey string                           `json:"periodKey"`
			Complete  bool                             `json:"complete"`
			Events    map[string]float64               `json:"events"`
			Groups    map[string][]odometer.GroupValue `json:"groups"`
		} `json:"periods"`
	}
	ts.MustDo(t, 200, "GET", "/portal/usage", pinnedKey, "").Decode(t, &view)
	// Three cycles of usage: from 20 October (the events of early
	// November), 20 November and 20 December, in progress.
	if view.CustomerID != "cust_a" || view.Period != "billing" || len(view.Periods) != 3 || view.Periods[0].PeriodKey != "20251220" || view.Periods[0].Complete {
		t.Fatalf("GET /portal/usage: %+v", view)
	}
	cells := mustEval[map[string]string](t, tab, `Object.fromEntries([...document.querySelectorAll('tr[data-meter] td[data-value]')].map(td => [td.parentElement.dataset.meter + ' ' + td.dataset.key, td.dataset.value]))`)
	want := 0
	for _, p := range view.Periods {
		for m, v := range p.Events {
			want++
			if got := cells[m+" "+p.PeriodKey]; got != strconv.FormatFloat(v, 'g', -1, 64) {
				t.Errorf("%s in cycle %s: the page %q, GET /portal/usage %v", m, p.PeriodKey, got, v)
			}
		}
	}
	if len(cells) != want || want < 6 {
		t.Errorf("the page shows %d values, GET /portal/usage %d", len(cells), want)
	}
	text := mustEval[string](t, tab, `document.body.innerText`)
	for _, leak := range []string{"revision", "Revision", "webhook", "Webhook", "delivered", "pending", "failing", "Aggregations",
		"Configuration", "billing.example.com", "cust_b", "threshold", "alert"} {
		if strings.Contains(text, leak) {
			t.Errorf("the pinned key's page shows %q:\n%s", leak, text)
		}
	}
	if !strings.Contains(text, "Usage of cust_a") || !strings.Contains(text, "Tokens, by model") || !strings.Contains(text, "2025-12-20 (in progress)") {
		t.Errorf("the portal view lacks its heading, descriptions or cycles:\n%s", text)
	}
	if n := mustEval[int](t, tab, `document.querySelectorAll('a[href]:not([download])').length`); n != 0 {
		t.Errorf("the portal view has %d links, want none to the vendor's pages", n)
	}

	// The CSV download: the file the page makes, with GET /portal/usage's
	// numbers.
	mustEval[any](t, tab, `(() => { window.csvDownload = null;
		const make = URL.createObjectURL;
		URL.createObjectURL = (b) => { b.text().then((t) => { window.csvDownload = Object.assign(window.csvDownload || {}, {text: t}); }); return make(b); };
		const click = HTMLAnchorElement.prototype.click;
		HTMLAnchorElement.prototype.click = function () { window.csvDownload = Object.assign(window.csvDownload || {}, {name: this.download}); return click.call(this); };
		document.getElementById('csv').click(); return null; })()`)
	waitFor(t, tab, `window.csvDownload && window.csvDownload.text && window.csvDownload.name`)
	dl := mustEval[map[string]string](t, tab, `window.csvDownload`)
	if dl["name"] != "usage-cust_a.csv" {
		t.Errorf("the download is named %q", dl["name"])
	}
	records, err := csv.NewReader(strings.NewReader(dl["text"])).ReadAll()
	if err != nil {
		t.Fatalf("the CSV: %v\n%s", err, dl["text"])
	}
	if got, want := strings.Join(records[0], ","), "meter,group,20251220,20251120,20251020"; got != want {
		t.Fatalf("the CSV's header %q, want %q", got, want)
	}
	checked := 0
	for _, r := range records[1:] {
		for i, p := range view.Periods {
			var v float64
			var ok bool
			if r[1] == "" {
				v, ok = p.Events[r[0]]
			} else {
				for _, g := range p.Groups[r[0]] {
					var group struct {
						Model string `json:"model"`
					}
					if json.Unmarshal(g.Group, &group) == nil && "model "+group.Model == r[1] {
						v, ok = g.Value, true
					}
				}
			}
			if !ok {
				if r[2+i] != "" {
					t.Errorf("CSV %s %s %s: %q, GET /portal/usage has none", r[0], r[1], p.PeriodKey, r[2+i])
				}
				continue
			}
			if got, err := strconv.ParseFloat(r[2+i], 64); err != nil || got != v {
				t.Errorf("CSV %s %s %s: %q, GET /portal/usage %v", r[0], r[1], p.PeriodKey, r[2+i], v)
			}
			checked++
		}
	}
	if checked < want+4 {
		t.Errorf("%d CSV values checked, want the %d meters' values and their groups'", checked, want)
	}

	// The dashboard's other pages send the pinned key back to its view;
	// another customer is not found, as the API answers.
	for _, hash := range []string{"#/config", "#/customer/cust_a"} {
		mustDo(t, tab, chromedp.Navigate(ts.URL+"/ui/"+hash))
		waitPortal(t, tab)
	}
	mustDo(t, tab, chromedp.Navigate(ts.URL+"/ui/#/customer/cust_b"))
	waitReady(t, tab, "not-found")
	if text := mustEval[string](t, tab, `document.getElementById('not-found').textContent`); !strings.Contains(text, "cust_b") {
		t.Errorf("another customer's page: %q", text)
	}
	ts.MustDo(t, 404, "GET", "/customers/cust_b", pinnedKey, "")

	// Sign out, from the portal view, forgets the key.
	mustDo(t, tab, chromedp.Navigate(ts.URL+"/ui/portal.html"))
	waitReady(t, tab, "portal")
	mustDo(t, tab, chromedp.Click(chromedp.ID("signout")))
	waitAcross(t, tab, `location.pathname === '/ui/' && document.getElementById('apikey') && !sessionStorage.getItem('odometer.key')`)
}
