package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"
)

// answer is the outcome of one request.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// errorText returns the "error" field of a JSON body, or "" if there is
// none.
func (a *answer) errorText() string {
	var v struct {
		Error string `json:"error"`
	}
	json.Unmarshal(a.Body, &v)
	return v.Error
}

// jsonError reports whether the answer is a JSON object with a non-empty
// "error" string, answered as JSON.
func (a *answer) jsonError() bool {
	ct := a.Header.Get("Content-Type")
	if len(ct) < 16 || ct[:16] != "application/json" {
		return false
	}
	var v map[string]any
	if json.Unmarshal(a.Body, &v) != nil {
		return false
	}
	s, ok := v["error"].(string)
	return ok && s != ""
}

// send sends a request with key in x-apikey ("" for none) and the given
// header, and returns the answer; err is a transport error.
func (s *server) send(method, path, key string, body []byte, header http.Header) (*answer, error) {
	return s.sendVia(s.Client, method, path, key, body, header)
}

// sendVia is send through another client.
func (s *server) sendVia(client *http.Client, method, path, key string, body []byte, header http.Header) (*answer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, r)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if key != "" {
		req.Header.Set("x-apikey", key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &answer{resp.StatusCode, resp.Header, b}, nil
}

// mustSend is send, failing the test on a transport error.
func (s *server) mustSend(t testing.TB, method, path, key string, body []byte) *answer {
	t.Helper()
	a, err := s.send(method, path, key, body, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return a
}

// createKey makes a key through POST /keys with the admin key and returns
// its secret and id.
func (s *server) createKey(t testing.TB, scope, customerID string) (secret, id string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"scope": scope, "customerId": customerID, "name": "test " + scope})
	a := s.mustSend(t, "POST", "/keys", s.Key, body)
	if a.Status != http.StatusCreated {
		t.Fatalf("POST /keys %s: status %d: %s", body, a.Status, a.Body)
	}
	var k struct {
		Key string `json:"key"`
		ID  string `json:"id"`
	}
	if err := json.Unmarshal(a.Body, &k); err != nil || k.Key == "" || k.ID == "" {
		t.Fatalf("POST /keys: %s: %v", a.Body, err)
	}
	return k.Key, k.ID
}

// eventIDs returns the ids of every stored event, read with the admin key
// page by page, by customer (or all when customerID is "").
func (s *server) eventIDs(t testing.TB, customerID string) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if customerID != "" {
			q.Set("customerId", customerID)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		a := s.mustSend(t, "GET", "/events?"+q.Encode(), s.Key, nil)
		if a.Status != http.StatusOK {
			t.Fatalf("GET /events: status %d: %s", a.Status, a.Body)
		}
		var page []struct {
			ID string `json:"_id"`
		}
		if err := json.Unmarshal(a.Body, &page); err != nil {
			t.Fatalf("GET /events: %v: %s", err, a.Body)
		}
		for _, e := range page {
			ids = append(ids, e.ID)
		}
		next := a.Header.Get("X-Next-Cursor")
		if next == "" || next == cursor || len(page) == 0 {
			return ids
		}
		cursor = next
	}
}

// report records a test's closing figures: in its log (shown under -v),
// and, when ODOMETER_FIGURES names a file, as a line appended to it, so
// that CI can print them after a plain go test run, which shows nothing of
// a passing package.
func report(t testing.TB, format string, args ...any) {
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
