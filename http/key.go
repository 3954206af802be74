package http

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/odometer-dev/odometer"
)

func contextWithKey(ctx context.Context, k *odometer.APIKey) context.Context {
	return context.WithValue(ctx, keyAPIKey, k)
}

func keyFromContext(ctx context.Context) *odometer.APIKey {
	k, _ := ctx.Value(keyAPIKey).(*odometer.APIKey)
	return k
}

func contextTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// handleCreateKey is POST /keys: the key is shown this once.
func (s *Server) handleCreateKey(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, s.MaxBodyBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in struct {
		Scope      string `json:"scope"`
		CustomerID string `json:"customerId"`
		Name       string `json:"name"`
	}
	if err := strictObject(body, &in, "scope", "customerId", "name"); err != nil {
		s.writeError(w, r, jsonError(body, err, `a JSON object such as {"scope": "ingest", "name": "web app"}`))
		return
	}
	scope, err := odometer.ParseScope(in.Scope)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.CustomerID != "" {
		if scope != odometer.ScopeRead {
			s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "only a read key can be pinned to a customer"))
			return
		}
		if err := odometer.ValidateCustomerID(in.CustomerID); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if len(in.Name) > 255 {
		s.writeError(w, r, odometer.Errorf(odometer.EINVALID, "name must be at most 255 bytes"))
		return
	}
	secret, k := odometer.NewAPIKey(scope, in.CustomerID, in.Name, s.Now())
	if err := s.Keys.CreateKey(r.Context(), k); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, keyWithSecret{secret, k})
}

// handleKeys is GET /keys: never the secret.
func (s *Server) handleKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.Keys.FindKeys(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if keys == nil {
		keys = []*odometer.APIKey{}
	}
	writeJSON(w, http.StatusOK, keys)
}

// handleRevokeKey is DELETE /keys/{id}: every later request with it is 401.
func (s *Server) handleRevokeKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.Keys.RevokeKey(r.Context(), id, s.Now()); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": "Key revoked", "id": id})
}

// keyWithSecret is the answer to POST /keys: the secret, shown this once,
// then the key as GET /keys shows it.
type keyWithSecret struct {
	secret string
	key    *odometer.APIKey
}

func (c keyWithSecret) MarshalJSON() ([]byte, error) {
	k, err := json.Marshal(c.key)
	if err != nil {
		return nil, err
	}
	secret, _ := json.Marshal(c.secret)
	b := append([]byte(`{"key":`), secret...)
	if len(k) > 2 { // not {}
		b = append(b, ',')
	}
	return append(b, k[1:]...), nil
}
