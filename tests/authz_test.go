package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// apiRoute is one route as the running server lists it, with the scope
// and the statuses that openapi.json documents for it.
type apiRoute struct {
	method, path string
	scope        string // "" for a public route
	documented   map[int]bool
}

func (r apiRoute) String() string { return r.method + " " + r.path }

// listRoutes reads the routes from GET / and their scopes and statuses
// from GET /openapi.json, so that a new route is in the matrix as soon as
// it is served. The two lists must agree.
func listRoutes(t *testing.T, srv *server) []apiRoute {
	t.Helper()
	var info struct {
		Endpoints []string `json:"endpoints"`
	}
	srv.getJSON(t, "/", &info)
	var spec struct {
		Paths map[string]map[string]struct {
			Security  []map[string][]string `json:"security"`
			Responses map[string]any        `json:"responses"`
		} `json:"paths"`
	}
	srv.getJSON(t, "/openapi.json", &spec)

	documented := map[string]apiRoute{}
	for path, ops := range spec.Paths {
		for method, op := range ops {
			r := apiRoute{method: strings.ToUpper(method), path: path, documented: map[int]bool{}}
			for _, sec := range op.Security {
				for _, scopes := range sec {
					if len(scopes) > 0 {
						r.scope = scopes[0]
					}
				}
			}
			for code := range op.Responses {
				if n, err := strconv.Atoi(code); err == nil {
					r.documented[n] = true
				}
			}
			documented[r.String()] = r
		}
	}
	var routes []apiRoute
	served := map[string]bool{}
	for _, e := range info.Endpoints {
		served[e] = true
		r, ok := documented[e]
		if !ok {
			t.Errorf("GET / lists %q, which openapi.json does not document", e)
			continue
		}
		routes = append(routes, r)
	}
	for e := range documented {
		if !served[e] {
			t.Errorf("openapi.json documents %q, which GET / does not list", e)
		}
	}
	if len(routes) < 15 {
		t.Fatalf("only %d routes listed by GET /", len(routes))
	}
	sort.Slice(routes, func(i, j int) bool { return routes[i].String() < routes[j].String() })
	return routes
}

// routeSample is a request that the route, given a key with its scope,
// must answer with status: the matrix's cell for an allowed key.
type routeSample struct {
	path   string
	body   string
	status int
}

// routeSamples are the requests of the known routes. A route without one
// (a new route) is sent with its path's parameters filled in and no body,
// and an allowed key must get a status that openapi.json documents for it,
// other than 401 and 403.
var routeSamples = map[string]routeSample{
	"POST /usage/{eventType}":     {"/usage/api.calls", `{"customerId": "cust_pinned", "value": 1}`, http.StatusCreated},
	"POST /usagebatch":            {"/usagebatch", `[{"eventType": "api.calls", "customerId": "cust_pinned", "value": 1}]`, http.StatusCreated},
	"GET /usage":                  {"/usage?customerId=cust_pinned&eventType=api.calls", "", http.StatusOK},
	"GET /config":                 {"/config", "", http.StatusOK},
	"GET /events":                 {"/events", "", http.StatusOK},
	"DELETE /events":              {"/events?customerId=cust_nobody", "", http.StatusOK},
	"GET /aggregations":           {"/aggregations", "", http.StatusOK},
	"POST /aggregations/trigger":  {"/aggregations/trigger", "", http.StatusOK},
	"POST /keys":                  {"/keys", `{"scope": "read", "name": "matrix"}`, http.StatusCreated},
	"GET /keys":                   {"/keys", "", http.StatusOK},
	"DELETE /keys/{id}":           {"/keys/key_does_not_exist", "", http.StatusNotFound},
	"GET /deliveries":             {"/deliveries", "", http.StatusOK},
	"POST /deliveries/{id}/retry": {"/deliveries/msg_does_not_exist/retry", "", http.StatusNotFound},
	"GET /metrics":                {"/metrics", "", http.StatusOK},
	"PUT /customers/{id}":         {"/customers/cust_matrix", `{"name": "Matrix", "timezone": "Asia/Kolkata"}`, http.StatusOK},
	"GET /customers/{id}":         {"/customers/cust_pinned", "", http.StatusOK},
	"GET /customers":              {"/customers", "", http.StatusOK},
	"GET /customers/{id}/alerts":  {"/customers/cust_pinned/alerts", "", http.StatusOK},
	"POST /alerts":                {"/alerts", `{"meter": "api.calls", "period": "daily", "threshold": 100}`, http.StatusCreated},
	"GET /alerts":                 {"/alerts", "", http.StatusOK},
	"DELETE /alerts/{id}":         {"/alerts/alr_does_not_exist", "", http.StatusNotFound},
	"GET /":                       {"/", "", http.StatusOK},
	"GET /ping":                   {"/ping", "", http.StatusOK},
	"GET /healthz":                {"/healthz", "", http.StatusOK},
	"GET /readyz":                 {"/readyz", "", http.StatusOK},
	"GET /openapi.json":           {"/openapi.json", "", http.StatusOK},
	// The matrix's server has no portal secret: the route says so.
	"POST /customers/{id}/portal": {"/customers/cust_pinned/portal", `{"expiresIn": "1h"}`, http.StatusConflict},
	"GET /portal/usage":           {"/portal/usage?customerId=cust_pinned", "", http.StatusOK},
}

// credential is one column of the matrix.
type credential struct {
	name  string
	key   string
	scope string // what the key may do: "" none, or ingest, read, admin
}

// TestAuthorizationMatrix sends every route the server lists with every
// kind of credential: none, a wrong key, a revoked key, and keys of each
// scope, one of them pinned to a customer. No key, a wrong or revoked key
// is 401 on every route that needs a key; a key without the scope is 403;
// a key with it gets the route's answer. Every status must be one that
// openapi.json documents for the route.
func TestAuthorizationMatrix(t *testing.T) {
	srv, keys := startHostileServer(t)
	seedCustomers(t, srv)
	creds := []credential{
		{"none", "", ""},
		{"wrong", keys["wrong"], ""},
		{"revoked", keys["revoked"], ""},
		{"ingest", keys["ingest"], "ingest"},
		{"read", keys["read"], "read"},
		{"pinned", keys["pinned"], "read"},
		{"admin", keys["admin"], "admin"},
	}
	routes := listRoutes(t, srv)
	var cells, mismatches, unsampled int
	for _, rt := range routes {
		sample, ok := routeSamples[rt.String()]
		if !ok {
			unsampled++
			sample = routeSample{path: strings.NewReplacer("{eventType}", "api.calls", "{id}", "does_not_exist").Replace(rt.path)}
		}
		for _, c := range creds {
			cells++
			t.Run(rt.method+" "+rt.path+"/"+c.name, func(t *testing.T) {
				var body []byte
				if sample.body != "" {
					body = []byte(sample.body)
				}
				a := srv.mustSend(t, rt.method, sample.path, c.key, body)
				allowed := rt.scope == "" || c.scope == "admin" || (c.scope != "" && c.scope == rt.scope)
				var want string
				switch {
				case rt.scope == "" || (allowed && sample.status != 0):
					if a.Status != sample.status {
						want = strconv.Itoa(sample.status)
					}
				case allowed:
					if a.Status == http.StatusUnauthorized || a.Status == http.StatusForbidden || a.Status >= 500 {
						want = "an answer past the key check"
					}
				case c.scope == "":
					if a.Status != http.StatusUnauthorized {
						want = "401"
					}
				default:
					if a.Status != http.StatusForbidden {
						want = "403"
					}
				}
				if want != "" {
					mismatches++
					t.Fatalf("status %d, want %s: %.300s", a.Status, want, a.Body)
				}
				if !rt.documented[a.Status] {
					mismatches++
					t.Errorf("status %d is not among the statuses openapi.json documents for %s", a.Status, rt)
				}
				if a.Status >= 400 && !a.jsonError() {
					t.Errorf("status %d without a JSON error: %.300q", a.Status, a.Body)
				}
			})
		}
	}
	report(t, "authorization matrix: %d routes × %d credentials = %d cells; %d without a sample request; mismatches %d",
		len(routes), len(creds), cells, unsampled, mismatches)
}

// seedCustomers stores events of two customers, cust_pinned and
// cust_other, and aggregates them.
func seedCustomers(t *testing.T, srv *server) {
	t.Helper()
	var batch []map[string]any
	for i := range 10 {
		for _, c := range []string{"cust_pinned", "cust_other"} {
			batch = append(batch, map[string]any{"eventType": "api.calls", "customerId": c, "value": i + 1, "id": fmt.Sprintf("seed-%s-%d", c, i)})
		}
	}
	b, _ := json.Marshal(batch)
	if a := srv.mustSend(t, "POST", "/usagebatch", srv.Key, b); a.Status != http.StatusCreated {
		t.Fatalf("POST /usagebatch: status %d: %s", a.Status, a.Body)
	}
	if a := srv.mustSend(t, "POST", "/aggregations/trigger", srv.Key, nil); a.Status != http.StatusOK {
		t.Fatalf("POST /aggregations/trigger: status %d: %s", a.Status, a.Body)
	}
}

// customersIn returns the distinct customerId fields of a JSON array of
// objects, or of an object with a customerId.
func customersIn(t *testing.T, body []byte) []string {
	t.Helper()
	var list []map[string]any
	if err := json.Unmarshal(body, &list); err != nil {
		var one map[string]any
		if err := json.Unmarshal(body, &one); err != nil {
			t.Fatalf("not JSON: %.300s", body)
		}
		list = []map[string]any{one}
	}
	seen := map[string]bool{}
	for _, m := range list {
		if c, ok := m["customerId"].(string); ok {
			seen[c] = true
		}
	}
	var out []string
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// TestPinnedKeyIsolation: a read key pinned to cust_pinned sees that
// customer's data and nothing of cust_other's, however it asks: by
// customerId in any spelling, with a cursor taken from an unpinned
// listing, or on the admin routes, which it may not use at all.
func TestPinnedKeyIsolation(t *testing.T) {
	srv, keys := startHostileServer(t)
	seedCustomers(t, srv)
	pinned := keys["pinned"]
	_, otherKeyID := srv.createKey(t, "ingest", "")
	// Alerts of each customer, and one of every customer: a pinned key
	// sees its own customer's only.
	for _, body := range []string{
		`{"meter": "api.calls", "period": "daily", "threshold": 100, "customerId": "cust_pinned"}`,
		`{"meter": "api.calls", "period": "daily", "threshold": 100, "customerId": "cust_other"}`,
		`{"meter": "api.calls", "period": "hourly", "threshold": 5}`,
	} {
		if a := srv.mustSend(t, "POST", "/alerts", srv.Key, []byte(body)); a.Status != http.StatusCreated {
			t.Fatalf("POST /alerts: status %d: %s", a.Status, a.Body)
		}
	}
	probes, leaks := 0, 0

	// Another customer's data, by customerId: 404, as if it did not exist.
	for _, path := range []string{
		"/events?customerId=cust_other",
		"/events?customerId=cust_other&eventType=api.calls",
		"/events?customerId=CUST_PINNED",
		"/events?customerId=cust_pinned%00",
		"/events?customerId=cust_pinned%20",
		"/aggregations?customerId=cust_other",
		"/aggregations?customerId=cust_other&period=daily",
		"/aggregations?customerId=cust_other&complete=false",
		"/usage?customerId=cust_other&eventType=api.calls",
		"/usage?customerId=cust_other&eventType=api.calls&window=hour",
		"/customers/cust_other",
		"/customers/CUST_PINNED",
		"/customers/cust_pinned%20",
		"/customers/cust_nobody",
		"/alerts?customerId=cust_other",
		"/customers/cust_other/alerts",
	} {
		probes++
		a := srv.mustSend(t, "GET", path, pinned, nil)
		if a.Status != http.StatusNotFound || a.errorText() != "Not found" {
			leaks++
			t.Errorf("GET %s with a pinned key: status %d, want 404 Not found: %.300s", path, a.Status, a.Body)
		}
	}

	// Its own data, with or without the customerId: its customer only.
	for _, path := range []string{"/events", "/events?customerId=cust_pinned", "/aggregations", "/aggregations?period=daily",
		"/usage?eventType=api.calls", "/usage?customerId=cust_pinned&eventType=api.calls", "/alerts", "/alerts?customerId=cust_pinned"} {
		probes++
		a := srv.mustSend(t, "GET", path, pinned, nil)
		if a.Status != http.StatusOK {
			t.Errorf("GET %s with a pinned key: status %d: %.300s", path, a.Status, a.Body)
			continue
		}
		if got := customersIn(t, a.Body); !slices.Equal(got, []string{"cust_pinned"}) {
			leaks++
			t.Errorf("GET %s with a pinned key shows customers %q, want only cust_pinned", path, got)
		}
	}

	// The customers it lists: its own, whatever it searches for, and
	// whatever cursor an unpinned listing gave.
	customerPaths := []string{"/customers", "/customers?limit=1", "/customers?q=cust_", "/customers?q=cust_other"}
	for cursor := srv.mustSend(t, "GET", "/customers?limit=1", srv.Key, nil).Header.Get("X-Next-Cursor"); cursor != ""; {
		customerPaths = append(customerPaths, "/customers?cursor="+url.QueryEscape(cursor))
		cursor = srv.mustSend(t, "GET", "/customers?limit=1&cursor="+url.QueryEscape(cursor), srv.Key, nil).Header.Get("X-Next-Cursor")
	}
	// And by this cycle's usage, with the cursors of an unpinned listing
	// by usage.
	const byUsage = "/customers?sort=usage&meter=api.calls"
	customerPaths = append(customerPaths, byUsage, byUsage+"&order=asc", byUsage+"&q=cust_other", byUsage+"&limit=1")
	for cursor := srv.mustSend(t, "GET", byUsage+"&limit=1", srv.Key, nil).Header.Get("X-Next-Cursor"); cursor != ""; {
		customerPaths = append(customerPaths, byUsage+"&cursor="+url.QueryEscape(cursor), byUsage+"&order=asc&cursor="+url.QueryEscape(cursor))
		cursor = srv.mustSend(t, "GET", byUsage+"&limit=1&cursor="+url.QueryEscape(cursor), srv.Key, nil).Header.Get("X-Next-Cursor")
	}
	for _, path := range customerPaths {
		probes++
		a := srv.mustSend(t, "GET", path, pinned, nil)
		var list []struct {
			ID string `json:"id"`
		}
		if a.Status != http.StatusOK || json.Unmarshal(a.Body, &list) != nil {
			t.Errorf("GET %s with a pinned key: status %d: %.300s", path, a.Status, a.Body)
			continue
		}
		for _, c := range list {
			if c.ID != "cust_pinned" {
				leaks++
				t.Errorf("GET %s with a pinned key lists %s", path, c.ID)
			}
		}
		if (path == "/customers" || path == byUsage) && len(list) != 1 {
			t.Errorf("GET /customers with a pinned key: %.300s, want cust_pinned", a.Body)
		}
	}

	// A cursor from an unpinned listing does not widen the pinned view.
	for _, base := range []string{"/events", "/aggregations"} {
		a := srv.mustSend(t, "GET", base+"?limit=1", srv.Key, nil)
		cursor := a.Header.Get("X-Next-Cursor")
		if cursor == "" {
			t.Fatalf("GET %s?limit=1: no X-Next-Cursor", base)
		}
		for page := 0; cursor != "" && page < 100; page++ {
			probes++
			a = srv.mustSend(t, "GET", base+"?limit=3&cursor="+url.QueryEscape(cursor), pinned, nil)
			if a.Status != http.StatusOK && a.Status != http.StatusBadRequest {
				t.Errorf("GET %s with an unpinned cursor: status %d: %.300s", base, a.Status, a.Body)
				break
			}
			if a.Status == http.StatusOK {
				for _, c := range customersIn(t, a.Body) {
					if c != "cust_pinned" {
						leaks++
						t.Errorf("GET %s with a pinned key and an unpinned cursor shows %s", base, c)
					}
				}
			}
			cursor = a.Header.Get("X-Next-Cursor")
		}
	}

	// Every read route the server lists, new ones included: nothing of
	// the other customer in the answer.
	for _, rt := range listRoutes(t, srv) {
		if rt.method != "GET" || rt.scope != "read" {
			continue
		}
		path := strings.NewReplacer("{eventType}", "api.calls", "{id}", "cust_other").Replace(rt.path)
		if sample, ok := routeSamples[rt.String()]; ok {
			path = sample.path
		}
		probes++
		a := srv.mustSend(t, "GET", path, pinned, nil)
		if strings.Contains(string(a.Body), "cust_other") {
			leaks++
			t.Errorf("GET %s with a pinned key shows cust_other: %.300s", path, a.Body)
		}
	}

	// The admin routes, whatever they name: 403, and nothing changes.
	for _, tt := range []struct{ method, path, body string }{
		{"DELETE", "/keys/" + otherKeyID, ""},
		{"DELETE", "/events?customerId=cust_other", ""},
		{"DELETE", "/events?customerId=cust_pinned", ""},
		{"GET", "/deliveries?customerId=cust_other", ""},
		{"GET", "/keys", ""},
		{"POST", "/keys", `{"scope": "admin"}`},
		{"POST", "/aggregations/trigger", ""},
		{"POST", "/alerts", `{"meter": "api.calls", "period": "daily", "threshold": 1, "customerId": "cust_pinned"}`},
		{"DELETE", "/alerts/alr_does_not_exist", ""},
		{"POST", "/usage/api.calls", `{"customerId": "cust_other", "value": 1000}`},
		{"POST", "/usage/api.calls", `{"customerId": "cust_pinned", "value": 1000}`},
		{"PUT", "/customers/cust_pinned", `{"name": "mine now"}`},
		{"PUT", "/customers/cust_other", `{"name": "taken"}`},
	} {
		probes++
		var body []byte
		if tt.body != "" {
			body = []byte(tt.body)
		}
		a := srv.mustSend(t, tt.method, tt.path, pinned, body)
		if a.Status != http.StatusForbidden {
			leaks++
			t.Errorf("%s %s with a pinned key: status %d, want 403: %.300s", tt.method, tt.path, a.Status, a.Body)
		}
	}
	// The other key still works; both customers still have their events.
	if a := srv.mustSend(t, "GET", "/keys", srv.Key, nil); strings.Contains(revokedIDs(t, a.Body), otherKeyID) {
		t.Errorf("the other key was revoked by a pinned key's request: %s", a.Body)
	}
	for _, c := range []string{"cust_pinned", "cust_other"} {
		if got := len(srv.eventIDs(t, c)); got != 10 {
			t.Errorf("%s has %d events after the pinned key's requests, want 10", c, got)
		}
	}
	// The configuration, without webhooks, for a pinned key.
	probes++
	a := srv.mustSend(t, "GET", "/config", pinned, nil)
	var cfg struct {
		Webhooks []any `json:"webhooks"`
	}
	if a.Status != http.StatusOK || json.Unmarshal(a.Body, &cfg) != nil || len(cfg.Webhooks) != 0 {
		t.Errorf("GET /config with a pinned key: status %d: %.300s", a.Status, a.Body)
	}
	report(t, "pinned key isolation: %d probes; leaks %d", probes, leaks)
}

// revokedIDs returns the ids of the revoked keys of a GET /keys answer,
// joined by spaces.
func revokedIDs(t *testing.T, body []byte) string {
	t.Helper()
	var list []struct {
		ID        string `json:"id"`
		RevokedAt any    `json:"revokedAt"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("GET /keys: %v", err)
	}
	var ids []string
	for _, k := range list {
		if k.RevokedAt != nil {
			ids = append(ids, k.ID)
		}
	}
	return strings.Join(ids, " ")
}
