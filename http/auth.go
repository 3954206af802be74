package http

import (
	"net/http"
	"strings"
	"time"

	"github.com/odometer-dev/odometer"
)

// authorize wraps h: the request needs a live key with scope.
func (s *Server) authorize(scope odometer.Scope, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("x-apikey")
		if key == "" {
			if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
				key = strings.TrimSpace(a[7:])
			}
		}
		if key == "" {
			s.writeError(w, r, odometer.Errorf(odometer.EUNAUTHORIZED, "Missing API key: send it in the x-apikey header (or Authorization: Bearer)"))
			return
		}
		var k *odometer.APIKey
		var err error
		if strings.HasPrefix(key, odometer.PortalPrefix) {
			k, err = s.portalKey(r, key)
		} else {
			k, err = s.lookupKey(r, key)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !k.Allows(scope) {
			s.writeError(w, r, odometer.Errorf(odometer.EFORBIDDEN, "This key's scope (%s) does not allow this; it needs %s", k.Scope, scope))
			return
		}
		h(w, r.WithContext(contextWithKey(r.Context(), k)))
	}
}

// lookupKey finds the key by its SHA-256, so that neither the lookup nor
// the comparison takes time that depends on how much of a key matched.
func (s *Server) lookupKey(r *http.Request, key string) (*odometer.APIKey, error) {
	h := odometer.HashKey(key)
	if s.AdminKeyHash != nil && odometer.EqualHash(h, *s.AdminKeyHash) {
		return &odometer.APIKey{ID: "env", Name: "ODOMETER_API_KEY", Scope: odometer.ScopeAdmin}, nil
	}
	k, err := s.Keys.FindKeyByHash(r.Context(), h)
	if odometer.ErrorCode(err) == odometer.ENOTFOUND {
		return nil, odometer.Errorf(odometer.EUNAUTHORIZED, "Invalid API key")
	}
	if err != nil {
		return nil, err
	}
	s.touch(k.ID)
	return k, nil
}

// touch records a key's last use, at most once a minute per key, off the
// request's path.
func (s *Server) touch(id string) {
	now := s.Now()
	s.touchMu.Lock()
	last, ok := s.touched[id]
	if ok && now.Sub(last) < time.Minute {
		s.touchMu.Unlock()
		return
	}
	s.touched[id] = now
	s.touchMu.Unlock()
	go func() {
		ctx, cancel := contextTimeout(5 * time.Second)
		defer cancel()
		if err := s.Keys.TouchKey(ctx, id, now); err != nil {
			s.Logger.Debug("touch key", "key", id, "err", err)
		}
	}()
}

// pinned returns the customer the request's key is pinned to, or "".
func pinned(r *http.Request) string {
	if k := keyFromContext(r.Context()); k != nil && k.Scope == odometer.ScopeRead {
		return k.CustomerID
	}
	return ""
}

// customerFilter applies a pinned key's customer to the customerId asked
// for. A pinned key asking for another customer sees ENOTFOUND, as if that
// customer did not exist.
func customerFilter(r *http.Request, asked string) (string, error) {
	p := pinned(r)
	if p == "" {
		return asked, nil
	}
	if asked != "" && asked != p {
		return "", odometer.Errorf(odometer.ENOTFOUND, "Not found")
	}
	return p, nil
}
