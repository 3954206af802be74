package http

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

const portalConfigJSON = `{
  "periods": ["daily", "monthly"],
  "events": { "api.calls": { "op": "sum", "description": "Total API calls" }, "llm.request": { "op": "count" } },
  "meters": { "llm.tokens": { "eventType": "llm.request", "op": "sum", "value": "$.tokens", "groupBy": ["model"], "description": "Tokens by model" } }
}`

// TestPortal_Browser: a portal link opens its customer's usage in the
// browser with no key, with the numbers the API gives, groups, and
// nothing of the vendor's; a tampered or expired link gets a clear page.
func TestPortal_Browser(t *testing.T) {
	browser := startBrowser(t)
	ts := MustOpenServerConfig(t, func(tb testing.TB) odometer.Store { return storetest.OpenSQLite(tb) }, portalConfigJSON)
	ts.API.PortalSecret = testPortalSecret
	ts.MustDo(t, http.StatusCreated, "POST", "/usagebatch", ts.IngestKey, `[
		{"eventType": "api.calls", "customerId": "cust_a", "value": 1234.5},
		{"eventType": "llm.request", "customerId": "cust_a", "value": 1, "metadata": {"model": "gpt-4o", "tokens": 1000}},
		{"eventType": "llm.request", "customerId": "cust_a", "value": 1, "metadata": {"model": "mini", "tokens": 0.25}},
		{"eventType": "api.calls", "customerId": "cust_secret_b", "value": 99}]`)
	ts.MustDo(t, http.StatusOK, "POST", "/aggregations/trigger", ts.AdminKey, "")
	var link struct {
		URL string `json:"url"`
	}
	ts.MustDo(t, http.StatusOK, "POST", "/customers/cust_a/portal", ts.AdminKey, `{"expiresIn": "2h"}`).Decode(t, &link)
	u, _ := url.Parse(link.URL)

	tab := newTab(t, browser, 1280, 900)
	mustDo(t, tab, chromedp.Navigate(link.URL))
	waitFor(t, tab, `document.body.dataset.ready === "portal"`)
	screenshot(t, tab, "portal")
	text := mustEval[string](t, tab, `document.body.innerText`)
	cell := func(row string) string {
		return mustEval[string](t, tab, `(() => { for (const tr of document.querySelectorAll("tbody tr")) if (tr.querySelector("th").textContent.trim() === `+"`"+row+"`"+`) return tr.querySelectorAll("td")[1].textContent; return "missing"; })()`)
	}
	var aggs []struct {
		Events map[string]float64 `json:"events"`
	}
	ts.MustDo(t, http.StatusOK, "GET", "/aggregations?period=monthly&customerId=cust_a", ts.ReadKey, "").Decode(t, &aggs)
	for row, want := range map[string]float64{"api.calls": aggs[0].Events["api.calls"], "llm.tokens": aggs[0].Events["llm.tokens"], "model gpt-4o": 1000, "model mini": 0.25} {
		got := strings.ReplaceAll(cell(row), ",", "")
		if got != strconv.FormatFloat(want, 'f', -1, 64) {
			t.Errorf("portal row %s shows %q, the API says %v", row, got, want)
		}
	}
	for _, leak := range []string{"cust_secret_b", "revision", "Revision", "webhook", "Webhook", "delivered", u.Fragment[:20]} {
		if strings.Contains(text, leak) {
			t.Errorf("the portal page shows %q:\n%s", leak, text)
		}
	}
	if n := mustEval[int](t, tab, `document.querySelectorAll("a[href]:not([download])").length`); n != 0 {
		t.Errorf("the portal page has %d links, want none to the vendor's pages", n)
	}
	if !strings.Contains(text, "Tokens by model") || !strings.Contains(text, "Download CSV") {
		t.Errorf("the portal page lacks descriptions or the download:\n%s", text)
	}
	// From the page, the token reaches nothing but its customer's view.
	for path, want := range map[string]int{"/portal/usage": 200, "/portal/usage?customerId=cust_secret_b": 404,
		"/aggregations": 403, "/events": 403, "/config": 403, "/deliveries": 403, "/customers/cust_a": 403} {
		js := `(() => { const x = new XMLHttpRequest(); x.open("GET", ` + strconv.Quote(path) + `, false);
			x.setRequestHeader("x-apikey", decodeURIComponent(location.hash.slice(1))); x.send(); return x.status; })()`
		if got := mustEval[int](t, tab, js); got != want {
			t.Errorf("from the portal page, GET %s answers %d, want %d", path, got, want)
		}
	}

	// A tampered link, and the same link once expired.
	tab = newTab(t, browser, 1280, 900)
	mustDo(t, tab, chromedp.Navigate(strings.Replace(link.URL, "#odp_", "#odp_x", 1)))
	waitFor(t, tab, `document.body.dataset.ready === "portal-error"`)
	if text := mustEval[string](t, tab, `document.body.innerText`); !strings.Contains(text, "not valid") || strings.Contains(text, "1234") {
		t.Errorf("tampered link page:\n%s", text)
	}
	screenshot(t, tab, "portal-invalid")
	ts.SetNow(ts.Now().Add(3 * time.Hour))
	tab = newTab(t, browser, 1280, 900)
	mustDo(t, tab, chromedp.Navigate(link.URL))
	waitFor(t, tab, `document.body.dataset.ready === "portal-error"`)
	if text := mustEval[string](t, tab, `document.body.innerText`); !strings.Contains(text, "expired") {
		t.Errorf("expired link page:\n%s", text)
	}
}
