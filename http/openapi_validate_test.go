package http

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// The answers of the server, checked by an independent validator
// (github.com/pb33f/libopenapi-validator, see docs/DEPENDENCIES.md)
// against the document the server itself serves at /openapi.json: each
// status must be listed for its operation, each documented header present
// and well-formed, each body valid against its schema.

// responseChecker validates real answers against the served document.
type responseChecker struct {
	v   validator.Validator
	doc openAPI
	ops map[string]map[string]any
}

func newResponseChecker(tb testing.TB, served []byte) *responseChecker {
	tb.Helper()
	doc, err := libopenapi.NewDocument(served)
	if err != nil {
		tb.Fatalf("libopenapi: %v", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		tb.Fatalf("libopenapi-validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			tb.Errorf("the served document is not valid OpenAPI: %s: %s", e.Message, e.Reason)
		}
		tb.FailNow()
	}
	var parsed openAPI
	if err := json.Unmarshal(served, &parsed); err != nil {
		tb.Fatal(err)
	}
	return &responseChecker{v: v, doc: parsed, ops: parsed.operations()}
}

// check returns what is wrong with the answer (status, header, body) to
// req, which the route op ("POST /usage/{eventType}") served.
func (c *responseChecker) check(op string, req *http.Request, status int, header http.Header, body []byte) []string {
	var problems []string
	resp := &http.Response{StatusCode: status, Header: header, Body: io.NopCloser(bytes.NewReader(body)), Request: req}
	if ok, errs := c.v.ValidateHttpResponse(req, resp); !ok {
		for _, e := range errs {
			msg := e.Message
			if e.Reason != "" {
				msg += ": " + e.Reason
			}
			for _, se := range e.SchemaValidationErrors {
				msg += fmt.Sprintf("; at %s: %s", se.FieldPath, se.Reason)
			}
			problems = append(problems, msg)
		}
	}
	// The validator would take a "default" or "4XX" response for any
	// status: Odometer lists each status it answers, by number.
	if o := c.ops[op]; o == nil {
		problems = append(problems, "operation "+op+" is not in the document")
	} else if obj(o["responses"])[strconv.Itoa(status)] == nil {
		problems = append(problems, fmt.Sprintf("status %d is not listed for %s", status, op))
	}
	if header.Get("X-Request-Id") == "" {
		problems = append(problems, "no X-Request-Id")
	}
	ct := header.Get("Content-Type")
	switch {
	case op == "GET /metrics" && status == http.StatusOK:
		if !strings.HasPrefix(ct, "text/plain") {
			problems = append(problems, "Content-Type "+ct+", want Prometheus's text/plain")
		}
	case !strings.HasPrefix(ct, "application/json"):
		problems = append(problems, "Content-Type "+ct+", want application/json")
	}
	// A client told to wait is told how long (a readiness probe is not).
	if status == http.StatusTooManyRequests || (status == http.StatusServiceUnavailable && op != "GET /readyz") {
		if _, err := strconv.Atoi(header.Get("Retry-After")); err != nil {
			problems = append(problems, fmt.Sprintf("status %d without Retry-After in seconds", status))
		}
	}
	if strings.HasPrefix(ct, "application/json") && op != "GET /openapi.json" {
		problems = append(problems, jsBody(body)...)
	}
	return problems
}

// instantLike is a string that starts as a timestamp does; toISOString is
// how every one must be written.
var (
	instantLike = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T`)
	toISOString = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)
)

// jsBody returns what is wrong with a JSON answer against the rules of
// every answer: written as JSON.stringify writes it (odometer.Marshal),
// and every timestamp as toISOString writes it.
func jsBody(body []byte) []string {
	var problems []string
	text := bytes.TrimSuffix(body, []byte("\n"))
	if js, err := odometer.Restringify(text); err != nil {
		problems = append(problems, "the body is not JSON: "+err.Error())
	} else if !bytes.Equal(js, text) {
		problems = append(problems, "the body is not as JSON.stringify writes it: "+string(js))
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return problems
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if instantLike.MatchString(v) && !toISOString.MatchString(v) {
				problems = append(problems, fmt.Sprintf("timestamp %q is not as toISOString writes it", v))
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	return problems
}

// vreq is one request of the validation set.
type vreq struct {
	route        string // the route's "METHOD /pattern"
	method, path string
	key          string // admin, read, pinned, ingest, none, wrong, revoked, bearer
	body         string
	hdr          []string
	status       int
}

// keyKinds are the keys of the set, and the scopes they stand for.
var keyKinds = []string{"admin", "read", "pinned", "ingest", "none", "wrong", "revoked"}

// allows reports whether a key of kind may use a route needing scope.
func allows(kind string, scope odometer.Scope) bool {
	switch kind {
	case "admin":
		return true
	case "read", "pinned":
		return scope == odometer.ScopeRead
	case "ingest":
		return scope == odometer.ScopeIngest
	}
	return false
}

// samplePath is a route's path with its parameters filled in.
func samplePath(p string) string {
	return strings.NewReplacer("{eventType}", "api.calls", "{id}", "x").Replace(p)
}

func gzipString(tb testing.TB, s string) string {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.String()
}

// TestOpenAPI_Validator sends requests that reach every route, with good
// and bad input and with every kind of key, to real servers (one as
// configured, one rate-limited, one whose store is closed), and validates
// every answer against the served /openapi.json.
func TestOpenAPI_Validator(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ctx := context.Background()
		srv := MustOpenServer(t, open)
		srv.API.PortalSecret = testPortalSecret
		served := srv.MustDo(t, http.StatusOK, "GET", "/openapi.json", "", "").Body
		checker := newResponseChecker(t, served)

		// The keys: the server's own, one pinned to cust_a, one revoked.
		keys := map[string]string{"admin": srv.AdminKey, "read": srv.ReadKey, "ingest": srv.IngestKey,
			"pinned": srv.MustCreateKey(t, odometer.ScopeRead, "cust_a"), "none": "", "wrong": "odo_not_a_key"}
		revoked, rk := odometer.NewAPIKey(odometer.ScopeAdmin, "", "revoked", srv.Now())
		if err := srv.Store.CreateKey(ctx, rk); err != nil {
			t.Fatal(err)
		}
		if err := srv.Store.RevokeKey(ctx, rk.ID, srv.Now()); err != nil {
			t.Fatal(err)
		}
		keys["revoked"] = revoked

		// Deliveries: hour 08 of two customers completed and delivered
		// (a dry run), hour 09 completed and pending.
		srv.MustDo(t, http.StatusCreated, "POST", "/usagebatch", srv.IngestKey,
			`[{"eventType": "api.calls", "customerId": "cust_a", "value": 1, "timestamp": "2026-01-13T08:10:00Z"},
			  {"eventType": "api.calls", "customerId": "cust_b", "value": 2, "timestamp": "2026-01-13T08:20:00Z"}]`)
		srv.MustDo(t, http.StatusOK, "POST", "/aggregations/trigger", srv.AdminKey, "")
		dry := &odometer.Dispatcher{Store: srv.Store, Config: srv.API.Config, Now: srv.Now, DryRun: true,
			Logger: slog.New(slog.DiscardHandler)}
		if n, err := dry.RunOnce(ctx); err != nil || n == 0 {
			t.Fatalf("dry run: %d delivered, %v", n, err)
		}
		srv.MustDo(t, http.StatusCreated, "POST", "/usagebatch", srv.IngestKey,
			`[{"eventType": "api.calls", "customerId": "cust_a", "value": 3, "timestamp": "2026-01-13T09:10:00Z"}]`)
		srv.MustDo(t, http.StatusOK, "POST", "/aggregations/trigger", srv.AdminKey, "")
		firstDelivery := func(status string) string {
			ds, _, err := srv.Store.FindDeliveries(ctx, odometer.DeliveryFilter{Status: status, Limit: 1})
			if err != nil || len(ds) == 0 {
				t.Fatalf("no %s delivery: %v", status, err)
			}
			return ds[0].ID
		}
		delivered, pending := firstDelivery(odometer.DeliveryDelivered), firstDelivery(odometer.DeliveryPending)

		// An alert that fires: GET /deliveries shows its delivery too.
		srv.MustDo(t, http.StatusCreated, "POST", "/alerts", srv.AdminKey, `{"meter": "api.calls", "period": "daily", "threshold": 1, "customerId": "cust_a"}`)
		srv.MustDo(t, http.StatusCreated, "POST", "/usage/api.calls", srv.IngestKey, `{"customerId": "cust_a", "value": 5}`)
		alerts := &odometer.AlertEvaluator{Store: srv.Store, Config: srv.API.Config, Now: srv.Now}
		if res, err := alerts.RunOnce(ctx); err != nil || res.Fired != 1 {
			t.Fatalf("alerts: %+v, %v", res, err)
		}

		event := `{"customerId": "cust_a", "value": 1.5, "metadata": {"region": "eu<1>&"}}`
		batch := `[{"eventType": "api.calls", "customerId": "cust_a", "value": 2}, {"eventType": "storage.bytes", "customerId": "cust_b", "value": 1e21}]`
		bomb := "[" + strings.Repeat(" ", DefaultMaxBatchBytes+1) + "]"
		var reqs []vreq
		add := func(route, method, path, key, body string, status int, hdr ...string) {
			reqs = append(reqs, vreq{route, method, path, key, body, hdr, status})
		}

		// Every route with every kind of key: public routes answer all;
		// keyed routes refuse a missing, wrong or revoked key (401) and a
		// key without the scope (403).
		for _, rt := range routes {
			route := rt.method + " " + rt.path
			for _, kind := range keyKinds {
				switch {
				case rt.scope == "":
					status := http.StatusOK
					add(route, rt.method, samplePath(rt.path), kind, "", status)
				case kind == "none" || kind == "wrong" || kind == "revoked":
					add(route, rt.method, samplePath(rt.path), kind, "{}", http.StatusUnauthorized)
				case !allows(kind, rt.scope):
					add(route, rt.method, samplePath(rt.path), kind, "{}", http.StatusForbidden)
				}
			}
		}

		// Good and bad input, route by route.
		add("POST /usage/{eventType}", "POST", "/usage/api.calls", "ingest", event, 201)
		add("POST /usage/{eventType}", "POST", "/usage/api.calls", "bearer", `{"customerId": "cust_a", "value": 1, "id": "v-1"}`, 201)
		add("POST /usage/{eventType}", "POST", "/usage/api.calls", "admin", `{"customerId": "cust_a", "value": 1, "id": "v-1"}`, 200)
		add("POST /usage/{eventType}", "POST", "/usage/api.calls", "ingest", `{"customerId": "cust_a", "value": 2, "id": "v-1"}`, 409)
		add("POST /usage/{eventType}", "POST", "/usage/api.calls", "ingest", `{"customerId": "cust_b", "value": -0}`, 201, "Idempotency-Key", "v-2")
		add("POST /usage/{eventType}", "POST", "/usage/api.calls", "ingest", gzipString(t, event), 201, "Content-Encoding", "gzip")
		add("POST /usage/{eventType}", "POST", "/usage/api.calls", "ingest", event, 415, "Content-Encoding", "br")
		add("POST /usage/{eventType}", "POST", "/usage/api.calls", "ingest", "not gzip", 400, "Content-Encoding", "gzip")
		add("POST /usage/{eventType}", "POST", "/usage/nope", "ingest", event, 400)
		add("POST /usage/{eventType}", "POST", "/usage/api.calls", "ingest", `{"value": 1}`, 400)
		add("POST /usage/{eventType}", "POST", "/usage/api.calls", "ingest", `{"customerId": "c", "value": "1"}`, 400)
		add("POST /usage/{eventType}", "POST", "/usage/api.calls", "ingest", `{"customerId": "c", "value": 1, "timestamp": "2020-01-01T00:00:00Z"}`, 400)
		add("POST /usage/{eventType}", "POST", "/usage/api.calls", "ingest", `[1]`, 400)
		add("POST /usage/{eventType}", "POST", "/usage/api.calls", "ingest", `{"customerId": "c", "value": 1, "metadata": {"k": "`+strings.Repeat("x", DefaultMaxEventBytes)+`"}}`, 413)
		add("POST /usage/{eventType}", "POST", "/usage/api.calls", "ingest", gzipString(t, bomb), 413, "Content-Encoding", "gzip")

		add("POST /usagebatch", "POST", "/usagebatch", "ingest", batch, 201)
		add("POST /usagebatch", "POST", "/usagebatch", "ingest", `[{"eventType": "api.calls", "customerId": "cust_a", "value": 1, "id": "v-1"}]`, 200)
		add("POST /usagebatch", "POST", "/usagebatch", "ingest", `[{"eventType": "api.calls", "customerId": "cust_a", "value": 9, "id": "v-1"}]`, 409)
		add("POST /usagebatch", "POST", "/usagebatch", "ingest", gzipString(t, batch), 201, "Content-Encoding", "gzip")
		add("POST /usagebatch", "POST", "/usagebatch", "ingest", batch, 415, "Content-Encoding", "zstd")
		add("POST /usagebatch", "POST", "/usagebatch", "ingest", gzipString(t, bomb), 413, "Content-Encoding", "gzip")
		add("POST /usagebatch", "POST", "/usagebatch", "ingest", `[{"eventType": "api.calls", "value": 1}, 5]`, 422)
		add("POST /usagebatch", "POST", "/usagebatch", "ingest", batchOf(1001, "cust_a", nil), 413)
		add("POST /usagebatch", "POST", "/usagebatch", "ingest", `[]`, 400)
		add("POST /usagebatch", "POST", "/usagebatch", "ingest", `{"eventType": "api.calls"}`, 400)
		add("POST /usagebatch", "POST", "/usagebatch", "ingest", `[{`, 400)

		for _, kind := range []string{"read", "pinned", "admin"} {
			add("GET /usage", "GET", "/usage?customerId=cust_a&eventType=api.calls&window=hour&from=2026-01-13", kind, "", 200)
			add("GET /config", "GET", "/config", kind, "", 200)
			add("GET /events", "GET", "/events?customerId=cust_a&limit=2", kind, "", 200)
			add("GET /aggregations", "GET", "/aggregations?customerId=cust_a&limit=3", kind, "", 200)
		}
		add("GET /usage", "GET", "/usage?eventType=api.calls&window=day&timezone=Europe/Oslo", "pinned", "", 200)
		add("GET /usage", "GET", "/usage?customerId=cust_b&eventType=api.calls", "pinned", "", 404)
		add("GET /usage", "GET", "/usage?customerId=cust_a", "read", "", 400)
		add("GET /usage", "GET", "/usage?customerId=cust_a&eventType=api.calls&window=minute", "read", "", 400)
		add("GET /usage", "GET", "/usage?customerId=cust_a&eventType=api.calls&from=yesterday", "read", "", 400)
		add("GET /usage", "GET", "/usage?customerId=cust_a&eventType=api.calls&timezone=Mars/Olympus", "read", "", 400)
		add("GET /events", "GET", "/events?eventType=api.calls&from=2026-01-13T00:00:00Z&to=2026-01-14", "read", "", 200)
		add("GET /events", "GET", "/events?limit=0", "read", "", 400)
		add("GET /events", "GET", "/events?from=noon", "read", "", 400)
		add("GET /events", "GET", "/events?cursor=bad", "read", "", 400)
		add("GET /events", "GET", "/events?customerId=cust_b", "pinned", "", 404)
		add("GET /aggregations", "GET", "/aggregations?period=hourly&complete=true", "read", "", 200)
		add("GET /aggregations", "GET", "/aggregations?period=minutely", "read", "", 400)
		add("GET /aggregations", "GET", "/aggregations?complete=maybe", "read", "", 400)
		add("GET /aggregations", "GET", "/aggregations?customerId=cust_b", "pinned", "", 404)
		add("GET /stats", "GET", "/stats", "read", "", 200)
		add("GET /stats", "GET", "/stats", "admin", "", 200)
		add("GET /stats", "GET", "/stats", "pinned", "", 404)

		add("POST /aggregations/trigger", "POST", "/aggregations/trigger", "admin", "", 200)
		add("GET /deliveries", "GET", "/deliveries", "admin", "", 200)
		add("GET /deliveries", "GET", "/deliveries?status=delivered&limit=1", "admin", "", 200)
		add("GET /deliveries", "GET", "/deliveries?status=pending&customerId=cust_a", "admin", "", 200)
		add("GET /deliveries", "GET", "/deliveries?status=sent", "admin", "", 400)
		add("GET /deliveries", "GET", "/deliveries?limit=-1", "admin", "", 400)
		add("POST /deliveries/{id}/retry", "POST", "/deliveries/"+pending+"/retry", "admin", "", 202)
		add("POST /deliveries/{id}/retry", "POST", "/deliveries/"+delivered+"/retry", "admin", "", 409)
		add("POST /deliveries/{id}/retry", "POST", "/deliveries/msg_nope/retry", "admin", "", 404)

		add("GET /customers", "GET", "/customers?sort=usage&meter=api.calls", "read", "", 200)
		add("GET /customers", "GET", "/customers?sort=usage&meter=api.calls&order=asc&limit=1", "pinned", "", 200)
		add("GET /customers", "GET", "/customers?sort=usage&meter=nope", "read", "", 400)
		add("GET /customers", "GET", "/customers?sort=usage&meter=api.calls&cursor=bad", "read", "", 400)
		add("POST /customers/{id}/portal", "POST", "/customers/cust_a/portal", "admin", `{"expiresIn": "2h"}`, 200)
		add("POST /customers/{id}/portal", "POST", "/customers/cust_a/portal", "admin", `{"expiresIn": "100d"}`, 400)
		add("GET /portal/usage", "GET", "/portal/usage?customerId=cust_a", "read", "", 200)
		add("GET /portal/usage", "GET", "/portal/usage", "pinned", "", 200)
		add("GET /portal/usage", "GET", "/portal/usage", "read", "", 400)
		add("GET /portal/usage", "GET", "/portal/usage?customerId=cust_b", "pinned", "", 404)

		add("POST /keys", "POST", "/keys", "admin", `{"scope": "read", "customerId": "cust_a", "name": "page"}`, 201)
		add("POST /keys", "POST", "/keys", "admin", `{"scope": "ingest"}`, 201)
		add("POST /keys", "POST", "/keys", "admin", gzipString(t, `{"scope": "ingest", "name": "gz"}`), 201, "Content-Encoding", "gzip")
		add("POST /keys", "POST", "/keys", "admin", `{"scope": "ingest"}`, 415, "Content-Encoding", "compress")
		add("POST /keys", "POST", "/keys", "admin", `{"scope": "owner"}`, 400)
		add("POST /keys", "POST", "/keys", "admin", `{"scope": "ingest", "customerId": "cust_a"}`, 400)
		add("POST /keys", "POST", "/keys", "admin", `{"scope": "read", "extra": 1}`, 400)
		add("POST /keys", "POST", "/keys", "admin", `{"name": "`+strings.Repeat("x", DefaultMaxBodyBytes)+`"}`, 413)
		add("GET /keys", "GET", "/keys", "admin", "", 200)
		_, spare := odometer.NewAPIKey(odometer.ScopeIngest, "", "spare", srv.Now())
		if err := srv.Store.CreateKey(ctx, spare); err != nil {
			t.Fatal(err)
		}
		add("DELETE /keys/{id}", "DELETE", "/keys/"+spare.ID, "admin", "", 200)
		add("DELETE /keys/{id}", "DELETE", "/keys/"+rk.ID, "admin", "", 404)
		add("DELETE /keys/{id}", "DELETE", "/keys/key_nope", "admin", "", 404)

		add("POST /alerts", "POST", "/alerts", "admin", `{"meter": "api.calls", "period": "daily", "threshold": 10000}`, 201)
		add("POST /alerts", "POST", "/alerts", "admin", `{"meter": "storage.bytes", "period": "monthly", "threshold": 1e9, "customerId": "cust_b"}`, 201)
		add("POST /alerts", "POST", "/alerts", "admin", gzipString(t, `{"meter": "api.calls", "period": "hourly", "threshold": 0.5}`), 201, "Content-Encoding", "gzip")
		add("POST /alerts", "POST", "/alerts", "admin", `{"meter": "api.calls", "period": "daily", "threshold": 1}`, 415, "Content-Encoding", "br")
		add("POST /alerts", "POST", "/alerts", "admin", `{"meter": "nope", "period": "daily", "threshold": 1}`, 400)
		add("POST /alerts", "POST", "/alerts", "admin", `{"meter": "response.time.ms", "period": "daily", "threshold": 1}`, 400)
		add("POST /alerts", "POST", "/alerts", "admin", `{"meter": "api.calls", "period": "billing", "threshold": 1}`, 400)
		add("POST /alerts", "POST", "/alerts", "admin", `{"meter": "api.calls", "period": "daily", "threshold": "NaN"}`, 400)
		add("POST /alerts", "POST", "/alerts", "admin", `{"meter": "api.calls", "period": "daily", "threshold": -1}`, 400)
		add("POST /alerts", "POST", "/alerts", "admin", `{"meter": "api.calls", "period": "daily", "threshold": 1, "repeat": true}`, 400)
		add("POST /alerts", "POST", "/alerts", "admin", `{"meter": "api.calls", "period": "daily", "threshold": 1, "customerId": "`+strings.Repeat("x", DefaultMaxBodyBytes)+`"}`, 413)
		for _, kind := range []string{"read", "pinned", "admin"} {
			add("GET /alerts", "GET", "/alerts", kind, "", 200)
			add("GET /alerts", "GET", "/alerts?customerId=cust_a", kind, "", 200)
		}
		add("GET /alerts", "GET", "/alerts?customerId=cust_b", "pinned", "", 404)
		// cust_a's alert fired above; the alert of every customer has not.
		for _, kind := range []string{"read", "pinned", "admin"} {
			add("GET /customers/{id}/alerts", "GET", "/customers/cust_a/alerts", kind, "", 200)
		}
		add("GET /customers/{id}/alerts", "GET", "/customers/cust_b/alerts", "read", "", 200)
		add("GET /customers/{id}/alerts", "GET", "/customers/cust_b/alerts", "pinned", "", 404)
		add("GET /customers/{id}/alerts", "GET", "/customers/cust_nobody/alerts", "read", "", 404)
		spareAlert := &odometer.Alert{ID: "alr_spare", Meter: "api.calls", Period: "daily", Threshold: 3, CreatedAt: srv.Now()}
		if err := srv.Store.CreateAlert(ctx, spareAlert); err != nil {
			t.Fatal(err)
		}
		add("DELETE /alerts/{id}", "DELETE", "/alerts/alr_spare", "admin", "", 200)
		add("DELETE /alerts/{id}", "DELETE", "/alerts/alr_spare", "admin", "", 404)

		add("GET /metrics", "GET", "/metrics", "admin", "", 200)
		add("DELETE /events", "DELETE", "/events", "admin", "", 400)
		add("DELETE /events", "DELETE", "/events?from=noon", "admin", "", 400)
		add("DELETE /events", "DELETE", "/events?customerId=cust_b&eventType=storage.bytes", "admin", "", 200)
		add("DELETE /events", "DELETE", "/events?all=true", "admin", "", 200)

		keys["bearer"] = srv.IngestKey
		results := &validationTally{routes: map[string]map[int]int{}, kinds: map[string]bool{}}
		for i, q := range reqs {
			runValidation(t, checker, srv, keys, q, fmt.Sprintf("%03d", i), results)
		}

		// A rate-limited server: past its burst every keyed route is 429.
		limitedServer := MustOpenServer(t, open)
		limitedServer.API.RateLimit = NewRateLimiter(0.001, 1, limitedServer.Now)
		limitedServer.Server.Config.Handler = limitedServer.API.Handler()
		lkeys := map[string]string{"admin": limitedServer.AdminKey}
		runValidation(t, checker, limitedServer, lkeys, vreq{"GET /config", "GET", "/config", "admin", "", nil, 200}, "limited-first", results)
		for _, rt := range routes {
			if rt.scope != "" {
				runValidation(t, checker, limitedServer, lkeys, vreq{rt.method + " " + rt.path, rt.method, samplePath(rt.path), "admin", "{}", nil, http.StatusTooManyRequests}, "limited", results)
			}
		}

		// A server whose store is closed: every route still answers
		// something the document lists (the key is ODOMETER_API_KEY's,
		// which needs no store).
		broken := MustOpenServer(t, open)
		envKey := "odo_env_admin_key_for_validation"
		h := odometer.HashKey(envKey)
		broken.API.AdminKeyHash = &h
		if err := broken.Store.Close(); err != nil {
			t.Fatal(err)
		}
		bkeys := map[string]string{"admin": envKey}
		for _, rt := range routes {
			body := "{}"
			switch rt.path {
			case "/usage/{eventType}":
				body = event
			case "/usagebatch":
				body = batch
			case "/keys":
				body = `{"scope": "read"}`
			case "/alerts":
				body = `{"meter": "api.calls", "period": "daily", "threshold": 1}`
			}
			path := samplePath(rt.path)
			if rt.method == "DELETE" && rt.path == "/events" {
				path += "?customerId=cust_a"
			}
			runValidation(t, checker, broken, bkeys, vreq{rt.method + " " + rt.path, rt.method, path, "admin", body, nil, 0}, "closed-store", results)
		}

		var missing []string
		for _, rt := range routes {
			if results.routes[rt.method+" "+rt.path] == nil {
				missing = append(missing, rt.method+" "+rt.path)
			}
		}
		if len(missing) > 0 {
			t.Errorf("routes not reached: %v", missing)
		}
		pairs := 0
		var statuses []int
		seen := map[int]bool{}
		for _, byStatus := range results.routes {
			pairs += len(byStatus)
			for s := range byStatus {
				if !seen[s] {
					seen[s] = true
					statuses = append(statuses, s)
				}
			}
		}
		sort.Ints(statuses)
		reportFigures(t, "OpenAPI validation: %d requests, %d of %d routes, %d route-status pairs (statuses %v), key kinds %d, %d answers not conforming",
			results.requests, len(results.routes), len(routes), pairs, statuses, len(results.kinds), results.failed)
	})
}

// validationTally counts what the validation set covered.
type validationTally struct {
	requests, failed int
	routes           map[string]map[int]int // route → status → requests
	kinds            map[string]bool
}

// runValidation sends q to ts and validates the answer; a want of 0 takes
// any status the document lists.
func runValidation(t *testing.T, c *responseChecker, ts *TestServer, keys map[string]string, q vreq, name string, tally *validationTally) {
	t.Helper()
	t.Run(fmt.Sprintf("%s %s %s %s", name, q.route, q.key, strconv.Itoa(q.status)), func(t *testing.T) {
		req, err := http.NewRequest(q.method, ts.URL+q.path, strings.NewReader(q.body))
		if err != nil {
			t.Fatal(err)
		}
		switch key := keys[q.key]; q.key {
		case "none":
		case "bearer":
			req.Header.Set("Authorization", "Bearer "+key)
		default:
			req.Header.Set("x-apikey", key)
		}
		for i := 0; i+1 < len(q.hdr); i += 2 {
			req.Header.Set(q.hdr[i], q.hdr[i+1])
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		tally.requests++
		tally.kinds[q.key] = true
		if tally.routes[q.route] == nil {
			tally.routes[q.route] = map[int]int{}
		}
		tally.routes[q.route][resp.StatusCode]++
		if q.status != 0 && resp.StatusCode != q.status {
			t.Errorf("status %d, want %d: %.300s", resp.StatusCode, q.status, b)
		}
		// The validator reads the request's path and query, not its body.
		vr, _ := http.NewRequest(q.method, "http://127.0.0.1:8080"+q.path, nil)
		vr.Header = req.Header.Clone()
		if problems := c.check(q.route, vr, resp.StatusCode, resp.Header, b); len(problems) > 0 {
			tally.failed++
			t.Errorf("%s %s → %d does not conform to /openapi.json:\n  %s\nbody: %.500s", q.method, q.path, resp.StatusCode, strings.Join(problems, "\n  "), b)
		}
	})
}

// reportFigures logs a test's closing figures and, when ODOMETER_FIGURES
// names a file, appends them to it, so that CI prints them after a plain
// go test run (which shows nothing of a passing package).
func reportFigures(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	t.Log(msg)
	if name := os.Getenv("ODOMETER_FIGURES"); name != "" {
		f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("ODOMETER_FIGURES: %v", err)
			return
		}
		defer f.Close()
		fmt.Fprintf(f, "%s: %s\n", t.Name(), msg)
	}
}

// TestOpenAPI_ValidatorRefuses: the checker of TestOpenAPI_Validator fails
// an answer the document does not describe: a status it does not list,
// a body that lacks a required field or has the wrong shape, a missing
// header, a content type other than JSON.
func TestOpenAPI_ValidatorRefuses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		checker := newResponseChecker(t, srv.MustDo(t, http.StatusOK, "GET", "/openapi.json", "", "").Body)
		jsonHeader := func(extra ...string) http.Header {
			h := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "X-Request-Id": {"0123456789abcdef"}}
			for i := 0; i+1 < len(extra); i += 2 {
				h.Set(extra[i], extra[i+1])
			}
			return h
		}
		for _, tt := range []struct {
			name, op, method, path string
			status                 int
			header                 http.Header
			body                   string
			want                   string // in the problems reported
		}{
			{"ErrStatusNotListed", "POST /deliveries/{id}/retry", "POST", "/deliveries/msg_1/retry", http.StatusTeapot, jsonHeader(), `{"error":"teapot"}`, "response code '418' does not exist"},
			{"ErrStatusNotListedPublic", "GET /ping", "GET", "/ping", http.StatusNotFound, jsonHeader(), `{"error":"Not found"}`, "response code '404' does not exist"},
			{"ErrRequiredField", "POST /usage/{eventType}", "POST", "/usage/api.calls", http.StatusCreated, jsonHeader(), `{"eventType":"api.calls","customerId":"c"}`, "missing properties 'message', 'id'"},
			{"ErrShape", "GET /events", "GET", "/events", http.StatusOK, jsonHeader(), `{"events":[]}`, "want array"},
			{"ErrFieldType", "GET /ping", "GET", "/ping", http.StatusOK, jsonHeader(), `{"status":"ok","timestamp":17}`, "got number, want string"},
			{"ErrNoRetryAfter", "GET /events", "GET", "/events", http.StatusTooManyRequests, jsonHeader(), `{"error":"slow down","retryAfter":1}`, "Required header 'Retry-After'"},
			{"ErrNotJSON", "GET /events", "GET", "/events", http.StatusNotFound, http.Header{"Content-Type": {"text/html"}, "X-Request-Id": {"1"}}, `<html></html>`, "content type 'text/html' of the GET response received has not been defined"},
			{"ErrNoRequestID", "GET /keys", "GET", "/keys", http.StatusOK, http.Header{"Content-Type": {"application/json"}}, `[]`, "Required header 'X-Request-Id'"},
			{"ErrTimeFormat", "GET /ping", "GET", "/ping", http.StatusOK, jsonHeader(), `{"status":"ok","timestamp":"2026-01-13T10:30:00.38Z"}`, "is not as toISOString writes it"},
			{"ErrNanoseconds", "GET /keys", "GET", "/keys", http.StatusOK, jsonHeader(), `[{"id":"key_1","scope":"read","prefix":"odo_12","createdAt":"2026-01-13T10:30:00.123456789Z"}]`, "is not as toISOString writes it"},
			{"ErrHTMLEscaped", "GET /keys", "GET", "/keys", http.StatusOK, jsonHeader(), `[{"id":"key_1","name":"\u003cb\u003e","scope":"read","prefix":"odo_12","createdAt":"2026-01-13T10:30:00.123Z"}]`, "not as JSON.stringify writes it"},
			{"ErrLineSeparatorEscaped", "GET /keys", "GET", "/keys", http.StatusOK, jsonHeader(), `[{"id":"key_1","name":"a\u2028b","scope":"read","prefix":"odo_12","createdAt":"2026-01-13T10:30:00.123Z"}]`, "not as JSON.stringify writes it"},
			{"ErrKeyOrder", "GET /aggregations", "GET", "/aggregations", http.StatusOK, jsonHeader(), `[{"events":{"10":1,"9":2}}]`, "not as JSON.stringify writes it"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				req, _ := http.NewRequest(tt.method, "http://127.0.0.1:8080"+tt.path, nil)
				problems := strings.Join(checker.check(tt.op, req, tt.status, tt.header, []byte(tt.body)), "; ")
				if !strings.Contains(problems, tt.want) {
					t.Fatalf("%s %s → %d %s: problems %q, want %q among them", tt.method, tt.path, tt.status, tt.body, problems, tt.want)
				}
			})
		}
		t.Run("OK", func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://127.0.0.1:8080/ping", nil)
			if problems := checker.check("GET /ping", req, http.StatusOK, jsonHeader(), []byte(`{"status":"ok","timestamp":"2026-01-13T10:30:00.000Z"}`+"\n")); len(problems) > 0 {
				t.Fatalf("a good answer was refused: %v", problems)
			}
		})
	})
}
