package http

// The customer directory in a real browser (see ui_e2e_test.go): its rows
// are GET /customers' (by a meter's usage this cycle, and by id), in the
// same order with the same numbers; search narrows; paging moves both
// ways; an unknown id says that no usage is recorded.

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// dirRow is a row of the directory as the page shows it.
type dirRow struct {
	ID    string `json:"id"`
	Value string `json:"value"`
	Count string `json:"count"`
	Text  string `json:"text"`
}

const readDirectory = `[...document.querySelectorAll('#directory tbody tr[data-customer]')].map(r => ({
  id: r.dataset.customer, value: r.dataset.value || '', count: r.dataset.count || '',
  text: (r.querySelector('td.value') || {}).textContent || ''}))`

func TestUI_Directory(t *testing.T) {
	browser := startBrowser(t)
	ts, _, _ := openUIServer(t)
	tab := newTab(t, browser, 1280, 900)

	// apiPage is GET /customers with q, and the next page's cursor.
	apiPage := func(q url.Values) ([]usageRow, string) {
		t.Helper()
		var rows []usageRow
		res := ts.MustDo(t, 200, "GET", "/customers?"+q.Encode(), ts.ReadKey, "")
		res.Decode(t, &rows)
		return rows, res.Header.Get("X-Next-Cursor")
	}
	// same checks that the page shows the API's rows: the same customers
	// in the same order, the same values and counts, and the values as
	// text.
	same := func(what string, want []usageRow) {
		t.Helper()
		got := mustEval[[]dirRow](t, tab, readDirectory)
		if len(got) != len(want) || len(want) == 0 {
			t.Fatalf("%s: the page shows %d rows %+v, the API answers %d", what, len(got), got, len(want))
		}
		for i, w := range want {
			g := got[i]
			if g.ID != w.ID {
				t.Errorf("%s, row %d: %s, the API %s", what, i, g.ID, w.ID)
			}
			if w.Usage == nil {
				if g.Value != "" {
					t.Errorf("%s, %s: a value %q sorted by id", what, g.ID, g.Value)
				}
				continue
			}
			if got, want := g.Value, strconv.FormatFloat(w.Usage.Value, 'g', -1, 64); got != want {
				t.Errorf("%s, %s: value %s, the API %s", what, w.ID, got, want)
			}
			if got, want := g.Count, strconv.FormatInt(w.Usage.Count, 10); got != want {
				t.Errorf("%s, %s: count %s, the API %s", what, w.ID, got, want)
			}
			if got, want := shownNumber(t, g.Text), w.Usage.Value; got != want {
				t.Errorf("%s, %s: shows %q, the API %v", what, w.ID, g.Text, want)
			}
		}
	}
	click := func(sel, ready string) {
		t.Helper()
		mustEval[any](t, tab, fmt.Sprintf(`delete document.body.dataset.ready; document.querySelector(%q).click(); null`, sel))
		waitReady(t, tab, ready)
	}
	choose := func(sel, value string) {
		t.Helper()
		mustEval[any](t, tab, fmt.Sprintf(`delete document.body.dataset.ready; (s => { s.value = %[2]q; s.dispatchEvent(new Event('change')); })(document.querySelector(%[1]q)); null`, sel, value))
		waitReady(t, tab, "customers")
	}

	// By api.calls this cycle (the month: uiConfig has no billing period),
	// highest first, five a page.
	signIn(t, tab, ts.URL, "#/customers?sort=usage&meter=api.calls&limit=5", ts.ReadKey, "customers")
	screenshot(t, tab, "customers")
	if on := mustEval[string](t, tab, `document.querySelector('#nav a.on').dataset.nav`); on != "customers" {
		t.Errorf("the nav marks %q", on)
	}
	byCalls := url.Values{"sort": {"usage"}, "meter": {"api.calls"}, "limit": {"5"}}
	p1, next := apiPage(byCalls)
	same("api.calls, page 1", p1)
	if p1[0].ID != "cust_a" || p1[0].Usage.Value <= p1[1].Usage.Value || p1[1].Usage.Value < p1[4].Usage.Value {
		t.Errorf("not highest first: %s", rowsText(p1))
	}
	for _, r := range p1 {
		if r.Usage.PeriodKey != "202601" {
			t.Errorf("%s: cycle %s, want January 2026", r.ID, r.Usage.PeriodKey)
		}
	}
	if next == "" {
		t.Fatal("13 customers in pages of 5: no second page")
	}
	// Options: every meter of GET /config, and the id.
	opts := mustEval[[]string](t, tab, `[...document.querySelectorAll('#dir-sort option')].map(o => o.value)`)
	if got, want := strings.Join(opts, " "), "id "+strings.Join(uiMeters, " "); got != want {
		t.Errorf("sort options %s, want %s", got, want)
	}

	// Next, next, and back.
	click("#dir-next", "customers")
	byCalls.Set("cursor", next)
	p2, next2 := apiPage(byCalls)
	same("api.calls, page 2", p2)
	if got := mustEval[string](t, tab, `document.getElementById('dir-page').textContent`); got != "Page 2" {
		t.Errorf("page label %q", got)
	}
	click("#dir-next", "customers")
	byCalls.Set("cursor", next2)
	p3, next3 := apiPage(byCalls)
	same("api.calls, page 3", p3)
	if next3 != "" || len(p1)+len(p2)+len(p3) != 13 {
		t.Errorf("pages of %d, %d, %d (next %q), want 13 customers", len(p1), len(p2), len(p3), next3)
	}
	if d := mustEval[string](t, tab, `document.getElementById('dir-next').getAttribute('aria-disabled') || ''`); d != "true" {
		t.Errorf("Next on the last page: aria-disabled=%q", d)
	}
	click("#dir-prev", "customers")
	same("api.calls, back to page 2", p2)
	click("#dir-prev", "customers")
	same("api.calls, back to page 1", p1)

	// Another meter, lowest first.
	choose("#dir-sort", "llm.tokens")
	choose("#dir-order", "asc")
	tokens, _ := apiPage(url.Values{"sort": {"usage"}, "meter": {"llm.tokens"}, "order": {"asc"}, "limit": {"5"}})
	same("llm.tokens, lowest first", tokens)
	if got := mustEval[string](t, tab, `document.getElementById('directory').dataset.meter + ' ' + document.getElementById('directory').dataset.order`); got != "llm.tokens asc" {
		t.Errorf("the table is sorted by %q", got)
	}
	screenshot(t, tab, "customers-tokens")

	// Search narrows, in the order chosen.
	mustDo(t, tab, chromedp.SendKeys(chromedp.ID("dir-q"), "cust_0"))
	click(`#dir-search button[type=submit]`, "customers")
	found, _ := apiPage(url.Values{"sort": {"usage"}, "meter": {"llm.tokens"}, "order": {"asc"}, "limit": {"5"}, "q": {"cust_0"}})
	same("search cust_0", found)
	for _, r := range found {
		if !strings.HasPrefix(r.ID, "cust_0") {
			t.Errorf("search cust_0 finds %s", r.ID)
		}
	}

	// By id: GET /customers' own order.
	choose("#dir-sort", "id")
	byID, _ := apiPage(url.Values{"limit": {"5"}, "q": {"cust_0"}})
	same("by id, cust_0", byID)

	// An id that has nothing: the search says no usage is recorded, and
	// so does the customer's page, opened from it or by its address.
	goTo(t, tab, "#/customers?sort=usage&meter=api.calls&q=nobody", "customers")
	if text := mustEval[string](t, tab, `document.getElementById('dir-empty').textContent`); !strings.Contains(text, "no usage recorded") {
		t.Errorf("a search that finds nothing says %q", text)
	}
	click(`#dir-empty a`, "customer-unknown")
	if text := mustEval[string](t, tab, `document.getElementById('no-usage').textContent`); !strings.Contains(text, "No usage recorded") || !strings.Contains(text, "nobody") {
		t.Errorf("the page of an unknown id says %q", text)
	}
	if mustEval[bool](t, tab, `!!document.getElementById('not-found') || !document.getElementById('msg').hidden`) {
		t.Errorf("an unknown id is shown as an error: %s", mustEval[string](t, tab, `document.getElementById('msg').textContent`))
	}
	goTo(t, tab, "#/customer/cust_a", "customer")
	goTo(t, tab, "#/customer/cust_nobody", "customer-unknown")
	screenshot(t, tab, "customer-unknown")

	// A key pinned to a customer has no directory: its sign-in leads to
	// its portal view, and the directory's address says "Not found".
	pinnedTab := newTab(t, browser, 1280, 900)
	mustDo(t, pinnedTab, chromedp.Navigate(ts.URL+"/ui/#/customers"),
		chromedp.WaitVisible(chromedp.ID("apikey")),
		chromedp.SendKeys(chromedp.ID("apikey"), ts.MustCreateKey(t, "read", "cust_a")),
		chromedp.Click(chromedp.ID("signin")))
	waitFor(t, pinnedTab, `document.getElementById('not-found')`)
	if hidden := mustEval[bool](t, pinnedTab, `document.querySelector('#nav a[data-nav=customers]').hidden`); !hidden {
		t.Error("the directory's link is shown to a pinned key")
	}
}
