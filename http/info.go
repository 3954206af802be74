package http

import (
	_ "embed"
	"net/http"

	"github.com/odometer-dev/odometer"
)

//go:embed openapi.json
var openapiJSON []byte

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"status": "ok", "service": "odometer", "version": s.Version, "endpoints": s.endpoints,
		"docs": "/openapi.json",
	})
}

func (s *Server) handlePing(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "timestamp": odometer.FormatTime(s.Now())})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		if err := s.Ready(r.Context()); err != nil {
			s.Logger.Warn("not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "The store is not ready"})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapiJSON)
}

// handleConfig is GET /config, with every webhook secret redacted. A key
// pinned to a customer sees no webhooks at all.
func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) {
	c := s.Config().Redacted()
	if pinned(r) != "" {
		c.Webhooks = nil
	}
	if c.Webhooks == nil {
		c.Webhooks = []odometer.Webhook{}
	}
	writeJSON(w, http.StatusOK, c)
}
