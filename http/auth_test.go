package http

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// routePath returns a concrete path for a route's pattern.
func routePath(pattern string) string {
	return strings.NewReplacer("{eventType}", "api.calls", "{id}", "key_does_not_exist").Replace(pattern)
}

func TestAuth_Required(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		for _, rt := range routes {
			path := routePath(rt.path)
			t.Run(rt.method+" "+rt.path, func(t *testing.T) {
				if rt.scope == "" {
					r := srv.Do(t, rt.method, path, "", "")
					if got, want := r.Status, http.StatusOK; got != want {
						t.Fatalf("public route without a key: status %d, want %d: %s", got, want, r.Body)
					}
					return
				}
				for _, tt := range []struct {
					name   string
					key    string
					header []string
					err    string
				}{
					{"ErrNoKey", "", nil, "Missing API key: send it in the x-apikey header (or Authorization: Bearer)"},
					{"ErrEmptyBearer", "", []string{"Authorization", "Bearer "}, "Missing API key: send it in the x-apikey header (or Authorization: Bearer)"},
					{"ErrBasic", "", []string{"Authorization", "Basic " + srv.AdminKey}, "Missing API key: send it in the x-apikey header (or Authorization: Bearer)"},
					{"ErrKeyInQuery", "", nil, "Missing API key: send it in the x-apikey header (or Authorization: Bearer)"},
					{"ErrWrongKey", "odo_0000000000000000000000000000000000000000000000", nil, "Invalid API key"},
					{"ErrWrongBearer", "", []string{"Authorization", "Bearer odo_nope"}, "Invalid API key"},
					{"ErrKeyPrefix", srv.AdminKey[:len(srv.AdminKey)-1], nil, "Invalid API key"},
					{"ErrKeyWithSuffix", srv.AdminKey + "0", nil, "Invalid API key"},
				} {
					t.Run(tt.name, func(t *testing.T) {
						p := path
						if tt.name == "ErrKeyInQuery" {
							p += "?x-apikey=" + srv.AdminKey + "&apikey=" + srv.AdminKey
						}
						r := srv.Do(t, rt.method, p, tt.key, `{"customerId": "c", "value": 1}`, tt.header...)
						checkRefusal(t, r, http.StatusUnauthorized, tt.err, "")
					})
				}
			})
		}
		srv.mustCount(t, 0)
	})
}

func TestAuth_Scopes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		keys := []struct {
			scope odometer.Scope
			key   string
		}{
			{odometer.ScopeIngest, srv.IngestKey},
			{odometer.ScopeRead, srv.ReadKey},
			{odometer.ScopeAdmin, srv.AdminKey},
		}
		// How a key is sent: both ways work alike.
		senders := []struct {
			name string
			send func(key string) (string, []string)
		}{
			{"XAPIKey", func(k string) (string, []string) { return k, nil }},
			{"Bearer", func(k string) (string, []string) { return "", []string{"Authorization", "Bearer " + k} }},
			{"BearerLowercase", func(k string) (string, []string) { return "", []string{"Authorization", "bearer  " + k} }},
		}
		for _, rt := range routes {
			if rt.scope == "" {
				continue
			}
			path := routePath(rt.path)
			for _, k := range keys {
				for _, s := range senders {
					t.Run(rt.method+" "+rt.path+"/"+string(k.scope)+"/"+s.name, func(t *testing.T) {
						key, hdr := s.send(k.key)
						// An empty body: an allowed request fails past the
						// key check, or succeeds, and stores nothing.
						r := srv.Do(t, rt.method, path, key, "", hdr...)
						allowed := k.scope == odometer.ScopeAdmin || k.scope == rt.scope
						switch {
						case !allowed && r.Status != http.StatusForbidden:
							t.Fatalf("%s key: status %d, want 403: %s", k.scope, r.Status, r.Body)
						case !allowed:
							want := "This key's scope (" + string(k.scope) + ") does not allow this; it needs " + string(rt.scope)
							if got := r.Error(); got != want {
								t.Fatalf("error %q, want %q", got, want)
							}
						case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
							t.Fatalf("%s key: status %d, want it allowed: %s", k.scope, r.Status, r.Body)
						}
					})
				}
			}
		}
		srv.mustCount(t, 0)

		// The same keys, on requests that succeed.
		for _, tt := range []struct {
			name, method, path, body string
			key                      string
			status                   int
		}{
			{"IngestPosts", "POST", "/usage/api.calls", `{"customerId": "c", "value": 1}`, srv.IngestKey, http.StatusCreated},
			{"IngestPostsBatch", "POST", "/usagebatch", `[{"eventType": "api.calls", "customerId": "c", "value": 1}]`, srv.IngestKey, http.StatusCreated},
			{"AdminPosts", "POST", "/usage/api.calls", `{"customerId": "c", "value": 1}`, srv.AdminKey, http.StatusCreated},
			{"ReadReads", "GET", "/events", "", srv.ReadKey, http.StatusOK},
			{"ReadReadsAggregations", "GET", "/aggregations", "", srv.ReadKey, http.StatusOK},
			{"ReadReadsConfig", "GET", "/config", "", srv.ReadKey, http.StatusOK},
			{"ReadReadsUsage", "GET", "/usage?customerId=c&eventType=api.calls", "", srv.ReadKey, http.StatusOK},
			{"AdminReads", "GET", "/events", "", srv.AdminKey, http.StatusOK},
			{"AdminTriggers", "POST", "/aggregations/trigger", "", srv.AdminKey, http.StatusOK},
			{"AdminListsKeys", "GET", "/keys", "", srv.AdminKey, http.StatusOK},
		} {
			t.Run(tt.name, func(t *testing.T) {
				srv.MustDo(t, tt.status, tt.method, tt.path, tt.key, tt.body)
			})
		}
		srv.mustCount(t, 3)
	})
}

func TestAuth_EnvAdminKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		const env = "an admin key from the environment"
		h := odometer.HashKey(env)
		srv.API.AdminKeyHash = &h
		srv.MustDo(t, http.StatusOK, "GET", "/keys", env, "")
		srv.MustDo(t, http.StatusOK, "GET", "/keys", "", "", "Authorization", "Bearer "+env)
		srv.MustDo(t, http.StatusCreated, "POST", "/usage/api.calls", env, `{"customerId": "c", "value": 1}`)
		// The store's keys still work beside it.
		srv.MustDo(t, http.StatusOK, "GET", "/keys", srv.AdminKey, "")
		checkRefusal(t, srv.Do(t, "GET", "/keys", env+"x", ""), http.StatusUnauthorized, "Invalid API key", "")
	})
}

// createdKey is the answer of POST /keys.
type createdKey struct {
	Key        string `json:"key"`
	ID         string `json:"id"`
	Name       string `json:"name"`
	Scope      string `json:"scope"`
	CustomerID string `json:"customerId"`
	Prefix     string `json:"prefix"`
	CreatedAt  string `json:"createdAt"`
}

func TestKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)

		var k createdKey
		r := srv.MustDo(t, http.StatusCreated, "POST", "/keys", srv.AdminKey, `{"scope": "ingest", "name": "web app"}`)
		r.Decode(t, &k)
		if !strings.HasPrefix(k.Key, odometer.KeyPrefix) || len(k.Key) < 32 {
			t.Fatalf("key %q, want a long key starting with %s", k.Key, odometer.KeyPrefix)
		}
		if k.ID == "" || k.Scope != "ingest" || k.Name != "web app" || k.CreatedAt != "2026-01-13T10:30:00.000Z" {
			t.Fatalf("created key %+v", k)
		}
		if !strings.HasPrefix(k.Key, k.Prefix) || len(k.Prefix) >= len(k.Key)/2 {
			t.Fatalf("prefix %q of key %q: want a short prefix of it", k.Prefix, k.Key)
		}
		if _, ok := r.Map(t)["hash"]; ok {
			t.Fatal("POST /keys shows the key's hash")
		}

		t.Run("Works", func(t *testing.T) {
			srv.MustDo(t, http.StatusCreated, "POST", "/usage/api.calls", k.Key, `{"customerId": "c", "value": 1}`)
			checkRefusal(t, srv.Do(t, "GET", "/events", k.Key, ""), http.StatusForbidden, "This key's scope (ingest) does not allow this; it needs read", "")
		})

		t.Run("ListedWithoutSecret", func(t *testing.T) {
			r := srv.MustDo(t, http.StatusOK, "GET", "/keys", srv.AdminKey, "")
			if strings.Contains(string(r.Body), k.Key) || strings.Contains(string(r.Body), k.Key[len(k.Prefix):]) {
				t.Fatalf("GET /keys shows the key: %s", r.Body)
			}
			for _, secret := range []string{srv.AdminKey, srv.IngestKey, srv.ReadKey} {
				if strings.Contains(string(r.Body), secret) {
					t.Fatalf("GET /keys shows a key: %s", r.Body)
				}
			}
			var list []map[string]any
			r.Decode(t, &list)
			if got, want := len(list), 4; got != want {
				t.Fatalf("%d keys, want %d", got, want)
			}
			found := false
			for _, m := range list {
				if _, ok := m["key"]; ok {
					t.Fatalf("GET /keys has a key field: %v", m)
				}
				if _, ok := m["hash"]; ok {
					t.Fatalf("GET /keys has a hash field: %v", m)
				}
				if m["id"] == k.ID {
					found = true
					if got, want := m["prefix"], k.Prefix; got != want {
						t.Fatalf("prefix %v, want %v", got, want)
					}
				}
			}
			if !found {
				t.Fatalf("key %s is not listed", k.ID)
			}
		})

		t.Run("Revoked", func(t *testing.T) {
			m := srv.MustDo(t, http.StatusOK, "DELETE", "/keys/"+k.ID, srv.AdminKey, "").Map(t)
			if got, want := m["id"], k.ID; got != want {
				t.Fatalf("id %v, want %v", got, want)
			}
			checkRefusal(t, srv.Do(t, "POST", "/usage/api.calls", k.Key, `{"customerId": "c", "value": 1}`), http.StatusUnauthorized, "Invalid API key", "")
			checkRefusal(t, srv.Do(t, "POST", "/usage/api.calls", "", `{"customerId": "c", "value": 1}`, "Authorization", "Bearer "+k.Key), http.StatusUnauthorized, "Invalid API key", "")
			checkRefusal(t, srv.Do(t, "DELETE", "/keys/"+k.ID, srv.AdminKey, ""), http.StatusNotFound, "Key not found: "+k.ID, "")
			srv.mustCount(t, 1)
			// Listed as revoked.
			var list []map[string]any
			srv.MustDo(t, http.StatusOK, "GET", "/keys", srv.AdminKey, "").Decode(t, &list)
			for _, m := range list {
				if m["id"] == k.ID && m["revokedAt"] == nil {
					t.Fatalf("revoked key listed without revokedAt: %v", m)
				}
			}
		})

		t.Run("RevokeOwnKey", func(t *testing.T) {
			var admin createdKey
			srv.MustDo(t, http.StatusCreated, "POST", "/keys", srv.AdminKey, `{"scope": "admin"}`).Decode(t, &admin)
			srv.MustDo(t, http.StatusOK, "DELETE", "/keys/"+admin.ID, admin.Key, "")
			checkRefusal(t, srv.Do(t, "GET", "/keys", admin.Key, ""), http.StatusUnauthorized, "Invalid API key", "")
		})

		for _, tt := range []struct{ name, body, err, prefix string }{
			{"ErrScope", `{"scope": "root"}`, "scope must be one of: ingest, read, admin", ""},
			{"ErrNoScope", `{}`, "scope must be one of: ingest, read, admin", ""},
			{"ErrPinnedIngest", `{"scope": "ingest", "customerId": "c"}`, "only a read key can be pinned to a customer", ""},
			{"ErrPinnedAdmin", `{"scope": "admin", "customerId": "c"}`, "only a read key can be pinned to a customer", ""},
			{"ErrPinnedCustomer", `{"scope": "read", "customerId": "a\u0001"}`, "customerId must be valid UTF-8 without control characters", ""},
			{"ErrName", `{"scope": "read", "name": "` + strings.Repeat("n", 256) + `"}`, "name must be at most 255 bytes", ""},
			{"ErrEmptyBody", ``, "", "Request body is empty"},
			{"ErrMalformedJSON", `{"scope": `, "", "Invalid JSON"},
			{"ErrScopeType", `{"scope": 1}`, "", "Request body must be a JSON object"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := srv.Do(t, "POST", "/keys", srv.AdminKey, tt.body)
				checkRefusal(t, r, http.StatusBadRequest, tt.err, tt.prefix)
				var list []any
				srv.MustDo(t, http.StatusOK, "GET", "/keys", srv.AdminKey, "").Decode(t, &list)
				if got, want := len(list), 5; got != want {
					t.Fatalf("%d keys, want %d", got, want)
				}
			})
		}
	})
}

func TestAuth_PinnedCustomer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		srv := MustOpenServer(t, open)
		srv.MustDo(t, http.StatusCreated, "POST", "/usagebatch", srv.IngestKey, `[
			{"eventType": "api.calls", "customerId": "cust_a", "value": 1, "timestamp": "2026-01-13T09:10:00Z"},
			{"eventType": "api.calls", "customerId": "cust_b", "value": 20},
			{"eventType": "api.calls", "customerId": "cust_a", "value": 2, "timestamp": "2026-01-13T10:00:00Z"},
			{"eventType": "storage.bytes", "customerId": "cust_b", "value": 30}
		]`)
		srv.MustDo(t, http.StatusOK, "POST", "/aggregations/trigger", srv.AdminKey, "")
		var k createdKey
		srv.MustDo(t, http.StatusCreated, "POST", "/keys", srv.AdminKey, `{"scope": "read", "customerId": "cust_a", "name": "cust_a's page"}`).Decode(t, &k)
		if got, want := k.CustomerID, "cust_a"; got != want {
			t.Fatalf("customerId %q, want %q", got, want)
		}

		t.Run("ErrOtherCustomer", func(t *testing.T) {
			for _, path := range []string{
				"/events?customerId=cust_b",
				"/aggregations?customerId=cust_b",
				"/aggregations?customerId=cust_b&period=daily",
				"/usage?customerId=cust_b&eventType=api.calls",
				"/events?customerId=nobody",
			} {
				checkRefusal(t, srv.Do(t, "GET", path, k.Key, ""), http.StatusNotFound, "Not found", "")
			}
		})

		t.Run("Events", func(t *testing.T) {
			for _, path := range []string{"/events", "/events?customerId=cust_a", "/events?eventType=api.calls"} {
				var got []storedEvent
				srv.MustDo(t, http.StatusOK, "GET", path, k.Key, "").Decode(t, &got)
				if len(got) != 2 {
					t.Fatalf("GET %s: %d events, want 2", path, len(got))
				}
				for _, e := range got {
					if e.CustomerID != "cust_a" {
						t.Fatalf("GET %s: event of %s", path, e.CustomerID)
					}
				}
			}
			// An unpinned read key sees both.
			var all []storedEvent
			srv.MustDo(t, http.StatusOK, "GET", "/events", srv.ReadKey, "").Decode(t, &all)
			if got, want := len(all), 4; got != want {
				t.Fatalf("unpinned key: %d events, want %d", got, want)
			}
		})

		t.Run("Aggregations", func(t *testing.T) {
			for _, path := range []string{"/aggregations", "/aggregations?customerId=cust_a"} {
				var got []aggregationJSON
				srv.MustDo(t, http.StatusOK, "GET", path, k.Key, "").Decode(t, &got)
				// Two hours, and the four other periods.
				if len(got) != 6 {
					t.Fatalf("GET %s: %d aggregations, want 6", path, len(got))
				}
				for _, a := range got {
					if a.CustomerID != "cust_a" {
						t.Fatalf("GET %s: aggregation of %s", path, a.CustomerID)
					}
				}
			}
			var all []aggregationJSON
			srv.MustDo(t, http.StatusOK, "GET", "/aggregations", srv.ReadKey, "").Decode(t, &all)
			if got, want := len(all), 11; got != want {
				t.Fatalf("unpinned key: %d aggregations, want %d", got, want)
			}
			// The pinned key sees neither revision nor webhook state (the
			// vendor's); otherwise the same aggregations as an unpinned key.
			var mine, theirs []map[string]any
			srv.MustDo(t, http.StatusOK, "GET", "/aggregations", k.Key, "").Decode(t, &mine)
			srv.MustDo(t, http.StatusOK, "GET", "/aggregations?customerId=cust_a", srv.ReadKey, "").Decode(t, &theirs)
			if len(mine) != 6 || len(theirs) != 6 {
				t.Fatalf("%d and %d aggregations, want 6", len(mine), len(theirs))
			}
			for i := range theirs {
				for _, internal := range []string{"revision", "webhookStatus"} {
					if _, ok := mine[i][internal]; ok {
						t.Errorf("a pinned key sees %s: %v", internal, mine[i])
					}
					if _, ok := theirs[i][internal]; !ok {
						t.Errorf("an unpinned key lacks %s: %v", internal, theirs[i])
					}
					delete(theirs[i], internal)
				}
				if !reflect.DeepEqual(mine[i], theirs[i]) {
					t.Errorf("aggregation %d: pinned %v, unpinned %v", i, mine[i], theirs[i])
				}
			}
		})

		t.Run("Usage", func(t *testing.T) {
			var u usageAnswer
			srv.MustDo(t, http.StatusOK, "GET", "/usage?eventType=api.calls&window=day", k.Key, "").Decode(t, &u)
			if got, want := u.CustomerID, "cust_a"; got != want {
				t.Fatalf("customerId %q, want %q", got, want)
			}
			if len(u.Usage) != 1 || u.Usage[0].Value != 3 || u.Usage[0].Count != 2 {
				t.Fatalf("usage %+v, want one day of 3 from 2 events", u.Usage)
			}
		})

		t.Run("Config", func(t *testing.T) {
			var c struct {
				Webhooks []any `json:"webhooks"`
			}
			r := srv.MustDo(t, http.StatusOK, "GET", "/config", k.Key, "")
			r.Decode(t, &c)
			if c.Webhooks == nil || len(c.Webhooks) != 0 {
				t.Fatalf("a pinned key sees webhooks %s", r.Body)
			}
		})

		t.Run("ErrScope", func(t *testing.T) {
			checkRefusal(t, srv.Do(t, "POST", "/usage/api.calls", k.Key, `{"customerId": "cust_a", "value": 1}`),
				http.StatusForbidden, "This key's scope (read) does not allow this; it needs ingest", "")
			checkRefusal(t, srv.Do(t, "POST", "/aggregations/trigger", k.Key, ""),
				http.StatusForbidden, "This key's scope (read) does not allow this; it needs admin", "")
		})
		srv.mustCount(t, 4)
	})
}
