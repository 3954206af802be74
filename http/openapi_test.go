package http

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// openAPI is the parsed openapi.json.
type openAPI map[string]any

func loadOpenAPI(tb testing.TB) openAPI {
	tb.Helper()
	var doc openAPI
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		tb.Fatalf("openapi.json: %v", err)
	}
	return doc
}

// obj returns v as a JSON object, or nil.
func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// httpMethods are the operation keys of an OpenAPI path item.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operations returns the document's operations by "METHOD path".
func (doc openAPI) operations() map[string]map[string]any {
	ops := map[string]map[string]any{}
	for path, item := range obj(doc["paths"]) {
		for _, m := range httpMethods {
			if op := obj(obj(item)[m]); op != nil {
				ops[strings.ToUpper(m)+" "+path] = op
			}
		}
	}
	return ops
}

// resolve follows a local $ref.
func (doc openAPI) resolve(tb testing.TB, v map[string]any) map[string]any {
	tb.Helper()
	for i := 0; i < 10; i++ {
		ref, ok := v["$ref"].(string)
		if !ok {
			return v
		}
		v = doc.pointer(ref)
		if v == nil {
			tb.Fatalf("unresolved $ref %s", ref)
		}
	}
	tb.Fatal("$ref loop")
	return nil
}

// pointer returns the object at a local JSON pointer such as
// #/components/schemas/Event, or nil.
func (doc openAPI) pointer(ref string) map[string]any {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	cur := map[string]any(doc)
	for _, part := range strings.Split(rest, "/") {
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		cur = obj(cur[part])
		if cur == nil {
			return nil
		}
	}
	return cur
}

func TestOpenAPI_Document(t *testing.T) {
	doc := loadOpenAPI(t)

	t.Run("Ops", func(t *testing.T) {
		// The ops the document lists are the registry's, in its order.
		enum, _ := obj(obj(obj(doc["components"])["schemas"])["Op"])["enum"].([]any)
		got := fmt.Sprint(enum)
		want := fmt.Sprint(odometer.Ops)
		if got != want {
			t.Fatalf("openapi.json lists ops %s, the registry %s", got, want)
		}
	})

	t.Run("Version", func(t *testing.T) {
		v, _ := doc["openapi"].(string)
		if !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(v) {
			t.Fatalf("openapi %q, want 3.1.x", v)
		}
		info := obj(doc["info"])
		if info["title"] == "" || info["title"] == nil || info["version"] == "" || info["version"] == nil {
			t.Fatalf("info %v lacks a title or a version", info)
		}
	})

	t.Run("Routes", func(t *testing.T) {
		var registered, documented []string
		for _, rt := range routes {
			registered = append(registered, rt.method+" "+rt.path)
		}
		for k := range doc.operations() {
			documented = append(documented, k)
		}
		sort.Strings(registered)
		sort.Strings(documented)
		if !slices.Equal(registered, documented) {
			t.Fatalf("routes and openapi.json differ:\nroutes:  %q\ndocument: %q", registered, documented)
		}
	})

	schemes := obj(obj(doc["components"])["securitySchemes"])
	t.Run("SecuritySchemes", func(t *testing.T) {
		apiKey, bearer := obj(schemes["apiKey"]), obj(schemes["bearer"])
		if apiKey["type"] != "apiKey" || apiKey["in"] != "header" || apiKey["name"] != "x-apikey" {
			t.Fatalf("apiKey scheme %v, want an apiKey in the x-apikey header", apiKey)
		}
		if bearer["type"] != "http" || bearer["scheme"] != "bearer" {
			t.Fatalf("bearer scheme %v, want http bearer", bearer)
		}
	})

	ops := doc.operations()
	opIDs := map[string]string{}
	for _, rt := range routes {
		key := rt.method + " " + rt.path
		op := ops[key]
		if op == nil {
			continue // reported by Routes
		}
		t.Run(key, func(t *testing.T) {
			id, _ := op["operationId"].(string)
			if id == "" {
				t.Fatal("no operationId")
			} else if other, ok := opIDs[id]; ok {
				t.Fatalf("operationId %s also names %s", id, other)
			}
			opIDs[id] = key

			responses := obj(op["responses"])
			if len(responses) == 0 {
				t.Fatal("no responses")
			}
			for code, r := range responses {
				if n, err := strconv.Atoi(code); code != "default" && (err != nil || n < 100 || n > 599) {
					t.Fatalf("response code %q", code)
				}
				if desc, _ := doc.resolve(t, obj(r))["description"].(string); desc == "" {
					t.Fatalf("response %s has no description", code)
				}
			}

			// Security: none for a public route; otherwise the key in
			// either header, with the route's scope.
			sec, ok := op["security"].([]any)
			if !ok {
				t.Fatal("no security requirement (public routes say [])")
			}
			if rt.scope == "" {
				if len(sec) != 0 {
					t.Fatalf("public route with security %v", sec)
				}
				if _, ok := op["x-scope"]; ok {
					t.Fatalf("public route with x-scope %v", op["x-scope"])
				}
				return
			}
			var names []string
			for _, req := range sec {
				for name, scopes := range obj(req) {
					if schemes[name] == nil {
						t.Fatalf("security scheme %s is not defined", name)
					}
					if got, want := fmt.Sprint(scopes), "["+string(rt.scope)+"]"; got != want {
						t.Fatalf("scheme %s with scopes %s, want %s", name, got, want)
					}
					names = append(names, name)
				}
			}
			sort.Strings(names)
			if got, want := names, []string{"apiKey", "bearer"}; !slices.Equal(got, want) {
				t.Fatalf("security schemes %q, want %q as alternatives", got, want)
			}
			if got, want := op["x-scope"], string(rt.scope); got != want {
				t.Fatalf("x-scope %v, want %v", got, want)
			}
			for _, code := range []string{"401", "403"} {
				if responses[code] == nil {
					t.Fatalf("response %s is not documented", code)
				}
			}
		})
	}

	t.Run("PathParameters", func(t *testing.T) {
		param := regexp.MustCompile(`\{([^}]+)\}`)
		for key, op := range ops {
			path := strings.SplitN(key, " ", 2)[1]
			for _, m := range param.FindAllStringSubmatch(path, -1) {
				found := false
				for _, p := range op["parameters"].([]any) {
					p := doc.resolve(t, obj(p))
					if p["name"] == m[1] && p["in"] == "path" && p["required"] == true {
						found = true
					}
				}
				if !found {
					t.Fatalf("%s: path parameter %s is not documented as required", key, m[1])
				}
			}
		}
	})

	t.Run("Refs", func(t *testing.T) {
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				if ref, ok := v["$ref"].(string); ok && doc.pointer(ref) == nil {
					t.Errorf("unresolved $ref %s", ref)
				}
				for _, x := range v {
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(map[string]any(doc))
	})
}

// conforms checks value against a schema of the document: types, required
// and documented properties (an object may have no property its schema
// does not list, unless additionalProperties allows it), items, enum and
// const. It returns what does not conform.
func (doc openAPI) conforms(tb testing.TB, schema map[string]any, value any, at string) []string {
	tb.Helper()
	schema = doc.resolve(tb, schema)
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }

	if all, ok := schema["allOf"].([]any); ok {
		props := map[string]bool{}
		for _, s := range all {
			s := doc.resolve(tb, obj(s))
			for p := range obj(s["properties"]) {
				props[p] = true
			}
			// Each part alone would refuse the other's properties: check
			// its own, then the union below.
			if m, ok := value.(map[string]any); ok {
				part := map[string]any{}
				for k, v := range m {
					if _, mine := obj(s["properties"])[k]; mine {
						part[k] = v
					}
				}
				for _, r := range asSlice(s["required"]) {
					if _, ok := m[r.(string)]; !ok {
						fail("required property %s is missing", r)
					}
				}
				errs = append(errs, doc.conforms(tb, s, part, at)...)
			}
		}
		if m, ok := value.(map[string]any); ok {
			for k := range m {
				if !props[k] {
					fail("property %s is not documented", k)
				}
			}
		}
		return errs
	}
	if alts, ok := schema["anyOf"].([]any); ok {
		if !slices.ContainsFunc(alts, func(s any) bool { return len(doc.conforms(tb, obj(s), value, at)) == 0 }) {
			fail("matches none of anyOf")
		}
		return errs
	}

	if t, ok := schema["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				types = append(types, x.(string))
			}
		}
		if got := jsonType(value); !slices.Contains(types, got) && !(got == "integer" && slices.Contains(types, "number")) {
			fail("type %s, want %v", got, types)
			return errs
		}
	}
	if c, ok := schema["const"]; ok && fmt.Sprint(c) != fmt.Sprint(value) {
		fail("%v, want %v", value, c)
	}
	if e, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(e, func(x any) bool { return fmt.Sprint(x) == fmt.Sprint(value) }) {
		fail("%v is not one of %v", value, e)
	}
	switch v := value.(type) {
	case map[string]any:
		props := obj(schema["properties"])
		for _, r := range asSlice(schema["required"]) {
			if _, ok := v[r.(string)]; !ok {
				fail("required property %s is missing", r)
			}
		}
		additional := schema["additionalProperties"]
		for k, x := range v {
			if s := obj(props[k]); s != nil {
				errs = append(errs, doc.conforms(tb, s, x, at+"."+k)...)
			} else if s := obj(additional); s != nil {
				errs = append(errs, doc.conforms(tb, s, x, at+"."+k)...)
			} else if props != nil && additional != true {
				fail("property %s is not documented", k)
			}
		}
	case []any:
		if items := obj(schema["items"]); items != nil {
			for i, x := range v {
				errs = append(errs, doc.conforms(tb, items, x, at+"["+strconv.Itoa(i)+"]")...)
			}
		}
	}
	return errs
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if v == float64(int64(v)) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

// TestOpenAPI_Responses checks the answers of the server, for every route
// and many outcomes, against the document: each status is documented for
// its operation, and each body conforms to the documented schema.
func TestOpenAPI_Responses(t *testing.T) {
	doc := loadOpenAPI(t)
	ops := doc.operations()
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		pinned := srv.MustCreateKey(t, odometer.ScopeRead, "cust_a")
		var created createdKey
		var delivery string
		steps := []struct {
			op, method, path, key, body string
			status                      int
		}{
			{"GET /", "GET", "/", "", "", 200},
			{"GET /ping", "GET", "/ping", "", "", 200},
			{"GET /healthz", "GET", "/healthz", "", "", 200},
			{"GET /readyz", "GET", "/readyz", "", "", 200},
			{"GET /openapi.json", "GET", "/openapi.json", "", "", 200},

			{"POST /usage/{eventType}", "POST", "/usage/api.calls", srv.IngestKey, `{"customerId": "cust_a", "value": 1, "id": "o-1", "metadata": {"k": "v"}}`, 201},
			{"POST /usage/{eventType}", "POST", "/usage/api.calls", srv.IngestKey, `{"customerId": "cust_a", "value": 1, "id": "o-1", "metadata": {"k": "v"}}`, 200},
			{"POST /usage/{eventType}", "POST", "/usage/api.calls", srv.IngestKey, `{"customerId": "cust_a", "value": 2, "id": "o-1"}`, 409},
			{"POST /usage/{eventType}", "POST", "/usage/storage.bytes", srv.IngestKey, `{"customerId": "cust_b", "value": 7, "timestamp": "2026-01-13T09:00:00Z"}`, 201},
			{"POST /usage/{eventType}", "POST", "/usage/nope", srv.IngestKey, `{"customerId": "cust_a", "value": 1}`, 400},
			{"POST /usage/{eventType}", "POST", "/usage/api.calls", srv.IngestKey, `{"customerId": "cust_a", "value": 1, "metadata": {"k": "` + strings.Repeat("x", DefaultMaxEventBytes) + `"}}`, 413},
			{"POST /usage/{eventType}", "POST", "/usage/api.calls", "", `{}`, 401},
			{"POST /usage/{eventType}", "POST", "/usage/api.calls", srv.ReadKey, `{}`, 403},

			{"POST /usagebatch", "POST", "/usagebatch", srv.IngestKey, `[{"eventType": "response.time.ms", "customerId": "cust_a", "value": 120}, {"eventType": "api.calls", "customerId": "cust_a", "value": 1, "id": "o-1", "metadata": {"k": "v"}}]`, 201},
			{"POST /usagebatch", "POST", "/usagebatch", srv.IngestKey, `[{"eventType": "api.calls", "customerId": "cust_a", "value": 1, "id": "o-1", "metadata": {"k": "v"}}]`, 200},
			{"POST /usagebatch", "POST", "/usagebatch", srv.IngestKey, `[{"eventType": "api.calls", "customerId": "cust_a", "value": 3, "id": "o-1"}]`, 409},
			{"POST /usagebatch", "POST", "/usagebatch", srv.IngestKey, `[{"eventType": "api.calls", "value": 1}, 5]`, 422},
			{"POST /usagebatch", "POST", "/usagebatch", srv.IngestKey, batchOf(1001, "cust_a", nil), 413},
			{"POST /usagebatch", "POST", "/usagebatch", srv.IngestKey, `{}`, 400},

			{"POST /aggregations/trigger", "POST", "/aggregations/trigger", srv.AdminKey, "", 200},
			{"POST /aggregations/trigger", "POST", "/aggregations/trigger", srv.ReadKey, "", 403},

			// cust_b's 09:00 hour has ended: its notification waits in the outbox.
			{"GET /deliveries", "GET", "/deliveries", srv.AdminKey, "", 200},
			{"GET /deliveries", "GET", "/deliveries?status=pending&customerId=cust_b&limit=1", srv.AdminKey, "", 200},
			{"GET /deliveries", "GET", "/deliveries?status=sent", srv.AdminKey, "", 400},
			{"GET /deliveries", "GET", "/deliveries", srv.ReadKey, "", 403},
			{"POST /deliveries/{id}/retry", "POST", "/deliveries/{delivery}/retry", srv.AdminKey, "", 202},
			{"POST /deliveries/{id}/retry", "POST", "/deliveries/dlv_nope/retry", srv.AdminKey, "", 404},
			{"POST /customers/{id}/portal", "POST", "/customers/cust_a/portal", srv.AdminKey, "", 409},
			{"POST /customers/{id}/portal", "POST", "/customers/cust_a/portal", srv.ReadKey, "", 403},
			{"GET /portal/usage", "GET", "/portal/usage?customerId=cust_a", srv.ReadKey, "", 200},
			{"GET /deliveries", "GET", "/deliveries?endpoint=https%3A%2F%2Fbilling.example.com%2Fhooks%2Fmetering&status=pending", srv.AdminKey, "", 200},
			{"GET /deliveries/{id}", "GET", "/deliveries/{delivery}", srv.AdminKey, "", 200},
			{"GET /deliveries/{id}", "GET", "/deliveries/dlv_nope", srv.AdminKey, "", 404},
			{"GET /deliveries/{id}", "GET", "/deliveries/{delivery}", srv.ReadKey, "", 403},
			{"POST /webhooks/retry", "POST", "/webhooks/retry?endpoint=https%3A%2F%2Fbilling.example.com%2Fhooks%2Fmetering", srv.AdminKey, "", 202},
			{"POST /webhooks/retry", "POST", "/webhooks/retry", srv.AdminKey, "", 400},
			{"POST /webhooks/retry", "POST", "/webhooks/retry?endpoint=https%3A%2F%2Fold.example.com%2F", srv.AdminKey, "", 404},
			{"POST /webhooks/retry", "POST", "/webhooks/retry?endpoint=x", srv.ReadKey, "", 403},
			{"GET /webhooks", "GET", "/webhooks", srv.ReadKey, "", 200},
			{"GET /webhooks", "GET", "/webhooks", pinned, "", 404},
			{"GET /webhooks", "GET", "/webhooks", srv.IngestKey, "", 403},

			{"GET /usage", "GET", "/usage?customerId=cust_a&eventType=api.calls&window=hour&from=2026-01-13", srv.ReadKey, "", 200},
			{"GET /usage", "GET", "/usage?eventType=api.calls", pinned, "", 200},
			{"GET /usage", "GET", "/usage?customerId=cust_b&eventType=api.calls", pinned, "", 404},
			{"GET /usage", "GET", "/usage?customerId=cust_a", srv.ReadKey, "", 400},

			{"GET /config", "GET", "/config", srv.ReadKey, "", 200},
			{"GET /config", "GET", "/config", pinned, "", 200},
			{"GET /config", "GET", "/config", "wrong", "", 401},

			{"GET /events", "GET", "/events?limit=2", srv.ReadKey, "", 200},
			{"GET /events", "GET", "/events?limit=0", srv.ReadKey, "", 400},
			{"GET /events", "GET", "/events?customerId=cust_b", pinned, "", 404},

			{"GET /aggregations", "GET", "/aggregations?limit=3", srv.ReadKey, "", 200},
			{"GET /aggregations", "GET", "/aggregations?period=minutely", srv.ReadKey, "", 400},
			{"GET /aggregations", "GET", "/aggregations?customerId=cust_b", pinned, "", 404},

			{"POST /keys", "POST", "/keys", srv.AdminKey, `{"scope": "read", "customerId": "cust_a", "name": "page"}`, 201},
			{"POST /keys", "POST", "/keys", srv.AdminKey, `{"scope": "owner"}`, 400},
			{"POST /keys", "POST", "/keys", srv.AdminKey, `{"name": "` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`, 413},
			{"GET /keys", "GET", "/keys", srv.AdminKey, "", 200},
			{"DELETE /keys/{id}", "DELETE", "/keys/{created}", srv.AdminKey, "", 200},
			{"DELETE /keys/{id}", "DELETE", "/keys/{created}", srv.AdminKey, "", 404},
			{"GET /keys", "GET", "/keys", srv.AdminKey, "", 200},

			{"PUT /customers/{id}", "PUT", "/customers/cust_a", srv.AdminKey, `{"name": "A", "timezone": "Asia/Kolkata", "billingAnchor": "2026-01-15T00:00:00+05:30", "metadata": {"plan": "pro"}}`, 200},
			{"PUT /customers/{id}", "PUT", "/customers/cust_p", srv.AdminKey, "", 200},
			{"PUT /customers/{id}", "PUT", "/customers/cust_a", srv.AdminKey, `{"timezone": "Mars/Base"}`, 400},
			{"PUT /customers/{id}", "PUT", "/customers/cust_a", srv.AdminKey, `{"name": "` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`, 413},
			{"PUT /customers/{id}", "PUT", "/customers/cust_a", srv.ReadKey, `{}`, 403},
			{"PUT /customers/{id}", "PUT", "/customers/cust_a", "", `{}`, 401},
			{"GET /customers/{id}", "GET", "/customers/cust_a", srv.ReadKey, "", 200},
			{"GET /customers/{id}", "GET", "/customers/cust_a", pinned, "", 200},
			{"GET /customers/{id}", "GET", "/customers/cust_b", srv.ReadKey, "", 200},
			{"GET /customers/{id}", "GET", "/customers/cust_b", pinned, "", 404},
			{"GET /customers/{id}", "GET", "/customers/cust_nobody", srv.ReadKey, "", 404},
			{"GET /customers/{id}", "GET", "/customers/cust_a", srv.IngestKey, "", 403},
			{"GET /customers", "GET", "/customers?limit=1", srv.ReadKey, "", 200},
			{"GET /customers", "GET", "/customers?q=cust_", srv.ReadKey, "", 200},
			{"GET /customers", "GET", "/customers", pinned, "", 200},
			{"GET /customers", "GET", "/customers?limit=0", srv.ReadKey, "", 400},
			{"GET /customers", "GET", "/customers?cursor=%21", srv.ReadKey, "", 400},
			{"GET /customers", "GET", "/customers", "", "", 401},
			{"POST /alerts", "POST", "/alerts", srv.AdminKey, `{"meter": "api.calls", "period": "daily", "threshold": 100, "customerId": "cust_a"}`, 201},
			{"POST /alerts", "POST", "/alerts", srv.AdminKey, `{"meter": "api.calls", "period": "daily", "threshold": 0}`, 400},
			{"POST /alerts", "POST", "/alerts", srv.ReadKey, `{}`, 403},
			{"GET /alerts", "GET", "/alerts", srv.ReadKey, "", 200},
			{"GET /alerts", "GET", "/alerts?customerId=cust_b", pinned, "", 404},
			{"GET /customers/{id}/alerts", "GET", "/customers/cust_a/alerts", srv.ReadKey, "", 200},
			{"GET /customers/{id}/alerts", "GET", "/customers/cust_a/alerts", pinned, "", 200},
			{"GET /customers/{id}/alerts", "GET", "/customers/cust_b/alerts", pinned, "", 404},
			{"GET /customers/{id}/alerts", "GET", "/customers/cust_nobody/alerts", srv.ReadKey, "", 404},
			{"GET /customers/{id}/alerts", "GET", "/customers/cust_a/alerts", "", "", 401},
			{"DELETE /alerts/{id}", "DELETE", "/alerts/alr_nope", srv.AdminKey, "", 404},

			{"GET /metrics", "GET", "/metrics", srv.AdminKey, "", 200},
			{"GET /stats", "GET", "/stats", srv.ReadKey, "", 200},
			{"GET /stats", "GET", "/stats", pinned, "", 404},
			{"GET /stats", "GET", "/stats", srv.IngestKey, "", 403},
			{"GET /stats/usage", "GET", "/stats/usage?meter=api.calls&window=hour&from=2026-01-13T00:00:00Z", srv.ReadKey, "", 200},
			{"GET /stats/usage", "GET", "/stats/usage?meter=nope", srv.ReadKey, "", 400},
			{"GET /stats/usage", "GET", "/stats/usage?meter=api.calls", pinned, "", 404},
			{"GET /stats/usage", "GET", "/stats/usage?meter=api.calls", "", "", 401},
			{"GET /metrics", "GET", "/metrics", srv.ReadKey, "", 403},
			{"DELETE /events", "DELETE", "/events", srv.AdminKey, "", 400},
			{"DELETE /events", "DELETE", "/events?customerId=cust_b", srv.AdminKey, "", 200},
			{"DELETE /events", "DELETE", "/events?customerId=cust_b", srv.IngestKey, "", 403},
		}
		registered := map[string]bool{}
		for _, rt := range routes {
			registered[rt.method+" "+rt.path] = true
		}
		seen := map[string]bool{}
		for i, st := range steps {
			if !registered[st.op] {
				continue // not a route of this build
			}
			seen[st.op] = true
			path := strings.NewReplacer("{created}", created.ID, "{delivery}", delivery).Replace(st.path)
			t.Run(fmt.Sprintf("%02d %s %d", i, st.op, st.status), func(t *testing.T) {
				r := srv.MustDo(t, st.status, st.method, path, st.key, st.body)
				switch {
				case st.op == "POST /keys" && st.status == 201:
					r.Decode(t, &created)
				case st.op == "GET /deliveries" && st.status == 200 && delivery == "":
					var ds []struct {
						ID string `json:"id"`
					}
					r.Decode(t, &ds)
					if len(ds) == 0 {
						t.Fatal("no delivery")
					}
					delivery = ds[0].ID
				}
				op := ops[st.op]
				if op == nil {
					t.Fatalf("operation %s is not documented", st.op)
				}
				resp := obj(obj(op["responses"])[strconv.Itoa(st.status)])
				if resp == nil {
					t.Fatalf("status %d is not documented for %s", st.status, st.op)
				}
				resp = doc.resolve(t, resp)
				if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/plain") {
					if obj(resp["content"])["text/plain"] == nil {
						t.Fatalf("%s %d: answered %s, not documented", st.op, st.status, ct)
					}
					return
				}
				schema := obj(obj(obj(resp["content"])["application/json"])["schema"])
				if schema == nil {
					t.Fatalf("%s %d: no application/json schema", st.op, st.status)
				}
				var v any
				r.Decode(t, &v)
				if errs := doc.conforms(t, schema, v, "body"); len(errs) > 0 {
					t.Fatalf("%s %d: the answer does not conform to the document:\n%s\n%s", st.op, st.status, strings.Join(errs, "\n"), r.Body)
				}
				if next := r.Header.Get("X-Next-Cursor"); next != "" && obj(resp["headers"])["X-Next-Cursor"] == nil {
					t.Fatalf("%s: X-Next-Cursor is not documented", st.op)
				}
			})
		}
		for _, rt := range routes {
			if !seen[rt.method+" "+rt.path] {
				t.Errorf("route %s %s is not exercised", rt.method, rt.path)
			}
		}
	})
}
