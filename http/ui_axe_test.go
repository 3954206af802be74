package http

// Accessibility: every page of the dashboard, in light and dark mode,
// checked by axe-core (the npm package) injected into headless Chromium.
// The test needs the path of axe.min.js in ODOMETER_AXE_JS (.ci/run
// installs a pinned axe-core and sets it); without it the test skips,
// unless CI is set, when it fails.

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/odometer-dev/odometer"
)

// axeSource returns axe-core's script, or skips the test.
func axeSource(t *testing.T) string {
	t.Helper()
	path := os.Getenv("ODOMETER_AXE_JS")
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set and ODOMETER_AXE_JS is not: install axe-core (npm install --prefix DIR axe-core) and set it to DIR/node_modules/axe-core/axe.min.js")
		}
		t.Skip("accessibility test skipped: set ODOMETER_AXE_JS to the path of axe-core's axe.min.js (npm install --prefix DIR axe-core); with CI set it fails instead")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and ODOMETER_AXE_JS cannot be read: %v", err)
		}
		t.Skipf("accessibility test skipped: ODOMETER_AXE_JS: %v", err)
	}
	return string(b)
}

// colorScheme makes the tab's pages see prefers-color-scheme: scheme.
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	})
}

// axeViolation is one rule that axe-core found broken.
type axeViolation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Nodes   int      `json:"nodes"`
	Targets []string `json:"targets"`
}

// runAxe checks the page as it is now: WCAG 2.0, 2.1 and 2.2 A and AA,
// and axe's best practices.
func runAxe(t *testing.T, tab context.Context, source string) []axeViolation {
	t.Helper()
	if !mustEval[bool](t, tab, `typeof window.axe === 'object'`) {
		// Through the DevTools protocol, as the console would: the page's
		// own policy, which allows no inline script, does not apply.
		mustEval[any](t, tab, source+"\n;null")
	}
	v, err := chromedp.Run(tab, chromedp.Evaluate[[]axeViolation](`axe.run(document, {resultTypes: ['violations'],
		runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})
		.then(r => r.violations.map(v => ({id: v.id, impact: v.impact || '', help: v.help, nodes: v.nodes.length,
			targets: v.nodes.slice(0, 4).map(n => n.target.join(' '))})))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe: %v", err)
	}
	return v
}

func TestUI_Accessibility(t *testing.T) {
	source := axeSource(t)
	browser := startBrowser(t)
	ts, _, _ := openUIServer(t)
	// Alerts on the customer page: one fired, one not.
	ts.MustDo(t, 201, "POST", "/alerts", ts.AdminKey, `{"meter": "api.calls", "period": "daily", "threshold": 5, "customerId": "cust_a"}`)
	ts.MustDo(t, 201, "POST", "/alerts", ts.AdminKey, `{"meter": "llm.tokens", "period": "monthly", "threshold": 1000000}`)
	ts.MustDo(t, 201, "POST", "/usage/api.calls", ts.IngestKey, `{"customerId": "cust_a", "value": 6}`)
	ev := &odometer.AlertEvaluator{Store: ts.Store, Config: ts.API.Config, Now: ts.Now, Customers: ts.Store}
	if res, err := ev.RunOnce(context.Background()); err != nil || res.Fired != 1 {
		t.Fatalf("alerts: %+v, %v", res, err)
	}
	pinnedKey := ts.MustCreateKey(t, odometer.ScopeRead, "cust_a")

	for _, scheme := range []string{"light", "dark"} {
		t.Run(scheme, func(t *testing.T) {
			tab := newTab(t, browser, 1280, 900)
			mustDo(t, tab, colorScheme(scheme))
			check := func(page string) {
				t.Helper()
				vs := runAxe(t, tab, source)
				var bad, other []string
				for _, v := range vs {
					line := fmt.Sprintf("%s (%s, %d nodes: %s): %s", v.ID, v.Impact, v.Nodes, strings.Join(v.Targets, " | "), v.Help)
					if v.Impact == "serious" || v.Impact == "critical" {
						bad = append(bad, line)
					} else {
						other = append(other, line)
					}
				}
				t.Logf("axe %s %s: %d serious or critical, %d other %v", page, scheme, len(bad), len(other), other)
				if len(bad) > 0 {
					t.Errorf("axe %s %s: %d serious or critical violations:\n%s", page, scheme, len(bad), strings.Join(bad, "\n"))
				}
			}
			mustDo(t, tab, chromedp.Navigate(ts.URL+"/ui/"), chromedp.WaitVisible(chromedp.ID("apikey")))
			check("signin")
			mustDo(t, tab, chromedp.SendKeys(chromedp.ID("apikey"), ts.AdminKey), chromedp.Click(chromedp.ID("signin")))
			waitReady(t, tab, "overview-totals")
			check("overview")
			screenshot(t, tab, "overview-"+scheme)
			goTo(t, tab, "#/customer/cust_a?range=30d&window=day", "customer")
			// The numbers behind a chart, opened, are checked too; and the
			// billing cycle and the alerts, one fired.
			mustEval[any](t, tab, `document.querySelectorAll('details.datatable').forEach(d => { d.open = true }); null`)
			if n := mustEval[int](t, tab, `document.querySelectorAll('#alerts tr[data-alert-id], #cycle-dates[data-period-start]').length`); n != 3 {
				t.Fatalf("the customer page shows %d alerts and cycle, want 3", n)
			}
			check("customer")
			screenshot(t, tab, "customer-"+scheme)
			goTo(t, tab, "#/deliveries", "deliveries")
			mustDo(t, tab, chromedp.Click(chromedp.CSS(`#deliveries tr[data-id] button.details`)))
			waitFor(t, tab, `document.querySelector('tr.detail pre.payload')`)
			check("webhooks")
			screenshot(t, tab, "webhooks-"+scheme)
			goTo(t, tab, "#/config", "config")
			check("configuration")
			goTo(t, tab, "#/customers?sort=usage&meter=api.calls&limit=5", "customers")
			check("customers")
			screenshot(t, tab, "customers-"+scheme)
			goTo(t, tab, "#/customer/cust_nobody", "customer-unknown")
			check("customer-unknown")
			mustEval[any](t, tab, `location.hash = '#/nope'; null`)
			waitFor(t, tab, `document.getElementById('not-found')`)
			check("not-found")
			// The portal view, as a key pinned to a customer sees it.
			mustEval[any](t, tab, `sessionStorage.setItem('odometer.key', `+strconv.Quote(pinnedKey)+`); location.href = '/ui/portal.html'; null`)
			waitPortal(t, tab)
			check("portal")
			screenshot(t, tab, "portal-pinned-"+scheme)
			mustEval[any](t, tab, `sessionStorage.setItem('odometer.key', `+strconv.Quote(ts.AdminKey)+`); null`)
		})
	}
}
