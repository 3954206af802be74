// Package http serves the Odometer API over HTTP: the template's routes,
// byte for byte where the contract says so, and Odometer's extensions.
package http

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"sync"
	"time"

	"github.com/odometer-dev/odometer"
)

// Server holds what the handlers need. Set the fields, then call Handler.
type Server struct {
	Events     odometer.EventStore
	Keys       odometer.KeyStore
	Aggs       odometer.AggregationStore
	Deliveries odometer.DeliveryStore
	// Customers, when nil, is Aggs if it keeps customers too (every store does).
	Customers odometer.CustomerStore
	Alerts    odometer.AlertStore
	// Kick, when set, wakes the webhook sender after a trigger or a retry.
	Kick       func()
	Aggregator *odometer.Aggregator
	Config     func() *odometer.Config
	Now        func() time.Time
	Logger     *slog.Logger
	Version    string
	// AdminKeyHash, when set, is the hash of the key from ODOMETER_API_KEY,
	// accepted as an admin key.
	AdminKeyHash *[32]byte
	// Ready reports whether the store is open and migrated.
	Ready func(context.Context) error
	// MaxEventBytes and MaxBatchBytes limit request bodies.
	MaxEventBytes int64
	MaxBatchBytes int64
	// MaxBodyBytes limits every other body.
	MaxBodyBytes int64
	// Metrics, when nil, are made by Handler; GET /metrics serves them.
	Metrics *Metrics
	// PortalSecret signs portal links; none can be made without it.
	PortalSecret []byte
	// PublicURL is the server's address as its users reach it, which
	// makes portal links absolute; empty: the request's host.
	PublicURL string
	// RateLimit, when set, limits each key's requests: past its rate a
	// request is answered 429 with Retry-After.
	RateLimit *RateLimiter

	metricsHandler http.Handler

	// ui is the dashboard's state: GET /stats's cache and counts.
	ui *uiState

	endpoints []string

	touchMu sync.Mutex
	touched map[string]time.Time
}

// Defaults of the body limits.
const (
	DefaultMaxEventBytes = 1 << 20
	DefaultMaxBatchBytes = 10 << 20
	DefaultMaxBodyBytes  = 64 << 10
)

// route is one entry of the API: registered from this table, documented in
// openapi.json, and the test checks that both agree.
type route struct {
	method, path string
	// scope is what the key needs; "" for a public route.
	scope   odometer.Scope
	handler func(s *Server, w http.ResponseWriter, r *http.Request)
}

var routes = []route{
	{"GET", "/", "", (*Server).handleInfo},
	{"GET", "/ping", "", (*Server).handlePing},
	{"GET", "/healthz", "", (*Server).handleHealth},
	{"GET", "/readyz", "", (*Server).handleReady},
	{"GET", "/openapi.json", "", (*Server).handleOpenAPI},
	{"POST", "/usage/{eventType}", odometer.ScopeIngest, (*Server).handleUsageEvent},
	{"POST", "/usagebatch", odometer.ScopeIngest, (*Server).handleUsageBatch},
	{"GET", "/usage", odometer.ScopeRead, (*Server).handleUsageQuery},
	{"GET", "/config", odometer.ScopeRead, (*Server).handleConfig},
	{"GET", "/events", odometer.ScopeRead, (*Server).handleEvents},
	{"DELETE", "/events", odometer.ScopeAdmin, (*Server).handleDeleteEvents},
	{"GET", "/aggregations", odometer.ScopeRead, (*Server).handleAggregations},
	{"POST", "/aggregations/trigger", odometer.ScopeAdmin, (*Server).handleTrigger},
	{"POST", "/keys", odometer.ScopeAdmin, (*Server).handleCreateKey},
	{"GET", "/keys", odometer.ScopeAdmin, (*Server).handleKeys},
	{"DELETE", "/keys/{id}", odometer.ScopeAdmin, (*Server).handleRevokeKey},
	{"PUT", "/customers/{id}", odometer.ScopeAdmin, (*Server).handlePutCustomer},
	{"GET", "/customers/{id}", odometer.ScopeRead, (*Server).handleCustomer},
	{"GET", "/customers", odometer.ScopeRead, (*Server).handleCustomers},
	{"GET", "/customers/{id}/alerts", odometer.ScopeRead, (*Server).handleCustomerAlerts},
	{"GET", "/deliveries", odometer.ScopeAdmin, (*Server).handleDeliveries},
	{"GET", "/deliveries/{id}", odometer.ScopeAdmin, (*Server).handleDelivery},
	{"POST", "/webhooks/retry", odometer.ScopeAdmin, (*Server).handleRetryEndpoint},
	{"POST", "/deliveries/{id}/retry", odometer.ScopeAdmin, (*Server).handleRetryDelivery},
	{"POST", "/alerts", odometer.ScopeAdmin, (*Server).handleCreateAlert},
	{"GET", "/alerts", odometer.ScopeRead, (*Server).handleAlerts},
	{"DELETE", "/alerts/{id}", odometer.ScopeAdmin, (*Server).handleDeleteAlert},
	{"GET", "/metrics", odometer.ScopeAdmin, (*Server).handleMetrics},
	{"GET", "/stats", odometer.ScopeRead, (*Server).handleStats},
	{"POST", "/customers/{id}/portal", odometer.ScopeAdmin, (*Server).handleCreatePortal},
	{"GET", "/portal/usage", odometer.ScopeRead, (*Server).handlePortalUsage},
	{"GET", "/stats/usage", odometer.ScopeRead, (*Server).handleStatsUsage},
	{"GET", "/webhooks", odometer.ScopeRead, (*Server).handleWebhooks},
}

// Handler returns the API's handler.
func (s *Server) Handler() http.Handler {
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Customers == nil {
		s.Customers, _ = s.Aggs.(odometer.CustomerStore)
	}
	if s.MaxEventBytes == 0 {
		s.MaxEventBytes = DefaultMaxEventBytes
	}
	if s.MaxBatchBytes == 0 {
		s.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s.touched = map[string]time.Time{}
	s.endpoints = nil
	s.setupMetrics()
	s.setupUI()

	mux := http.NewServeMux()
	methods := map[string][]string{}
	for _, rt := range routes {
		rt := rt
		pattern := rt.path
		if pattern == "/" {
			pattern = "/{$}"
		}
		methods[pattern] = append(methods[pattern], rt.method)
		s.endpoints = append(s.endpoints, rt.method+" "+rt.path)
		h := func(w http.ResponseWriter, r *http.Request) { rt.handler(s, w, r) }
		if rt.scope != "" {
			h = s.authorize(rt.scope, s.rateLimit(h))
		}
		mux.HandleFunc(rt.method+" "+pattern, h)
	}
	// A known path with another method: 405, in JSON.
	for pattern, allowed := range methods {
		allow := ""
		for i, m := range allowed {
			if i > 0 {
				allow += ", "
			}
			allow += m
		}
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "Method " + r.Method + " is not allowed here; allowed: " + allow})
		})
	}
	// The dashboard's page and files: public, outside the API's table.
	mux.HandleFunc("GET /ui/", s.handleUI)
	// /ui is the dashboard's address without its slash: sent on, in JSON,
	// where ServeMux would answer its own HTML redirect page.
	mux.HandleFunc("/ui", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "Not found"})
			return
		}
		w.Header().Set("Location", "/ui/")
		writeJSON(w, http.StatusMovedPermanently, map[string]string{"message": "The dashboard is at /ui/", "location": "/ui/"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Not found"})
	})
	return s.recoverer(s.logRequests(s.instrument(canonicalPaths(mux))))
}

// canonicalPaths answers a path that is not in canonical form (//events,
// /./keys, /usage/../keys) with a JSON 404 that names the canonical path.
// ServeMux would redirect it, with an HTML page for a body; a client of an
// API is better told that its URL is wrong, and never a redirect that
// re-sends a signed or authorized request elsewhere.
func canonicalPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// As ServeMux: escaped slashes (%2F) are part of a segment, and
		// CONNECT and "*" are not paths.
		if p := r.URL.EscapedPath(); r.Method != http.MethodConnect && r.RequestURI != "*" {
			if c := cleanPath(p); c != p {
				writeJSON(w, http.StatusNotFound, map[string]string{"error": "Not found: did you mean " + c + "?"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// cleanPath is ServeMux's canonical form of a path: rooted, no empty, "."
// or ".." segments, a trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyAPIKey
)

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

// statusWriter remembers the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID()
		w.Header().Set("X-Request-Id", id)
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), keyRequestID, id)))
		level := slog.LevelDebug
		if sw.status >= 500 {
			level = slog.LevelWarn
		}
		// The path is logged, never the query or the headers: they may hold keys.
		s.Logger.Log(r.Context(), level, "request", "id", id, "method", r.Method, "path", r.URL.Path,
			"status", sw.status, "duration", time.Since(start).Round(time.Microsecond))
	})
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Logger.Error("panic", "id", w.Header().Get("X-Request-Id"), "panic", v, "stack", string(debug.Stack()))
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "Internal error.", "requestId": w.Header().Get("X-Request-Id")})
			}
		}()
		next.ServeHTTP(w, r)
	})
}
