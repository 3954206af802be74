package http

import (
	"net/http"

	"github.com/odometer-dev/odometer"
)

// statuses maps each error code to its HTTP status: the one table.
var statuses = map[string]int{
	odometer.EINVALID:       http.StatusBadRequest,
	odometer.EUNPROCESSABLE: http.StatusUnprocessableEntity,
	odometer.ECONFLICT:      http.StatusConflict,
	odometer.ENOTFOUND:      http.StatusNotFound,
	odometer.EUNAUTHORIZED:  http.StatusUnauthorized,
	odometer.EFORBIDDEN:     http.StatusForbidden,
	odometer.ETOOLARGE:      http.StatusRequestEntityTooLarge,
	odometer.EUNSUPPORTED:   http.StatusUnsupportedMediaType,
	odometer.EUNAVAILABLE:   http.StatusServiceUnavailable,
	odometer.EINTERNAL:      http.StatusInternalServerError,
}

// writeError answers err as JSON. An error without a code is logged with
// the request id and shown as "Internal error.", never as itself.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := odometer.ErrorCode(err)
	status, ok := statuses[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	body := map[string]any{"error": odometer.ErrorMessage(err)}
	if e, ok := err.(*odometer.Error); ok {
		for k, v := range e.Details {
			body[k] = v
		}
	}
	if status == http.StatusInternalServerError {
		s.Logger.Error("internal error", "id", requestID(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
		body["requestId"] = requestID(r.Context())
	}
	if status == http.StatusUnsupportedMediaType {
		w.Header().Set("Accept-Encoding", acceptedEncodings) // RFC 7694
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
		s.Logger.Warn("store unavailable", "id", requestID(r.Context()), "err", err)
	}
	writeJSON(w, status, body)
}

// writeJSON answers v as JSON, written as JavaScript's JSON.stringify
// writes it (odometer.Marshal): every API answer goes through here.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := odometer.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"Internal error."}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
