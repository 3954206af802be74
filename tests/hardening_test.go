package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSlowLoris opens connections that send their headers a byte at a
// time and never finish them. The server, run with a header timeout of
// one second, must close each soon after that second, and answer a
// well-behaved client all along.
func TestSlowLoris(t *testing.T) {
	srv, _ := startHostileServer(t)
	const conns = 32
	const timeout = time.Second // ODOMETER_READ_HEADER_TIMEOUT of startHostileServer
	good := startGoodClient(srv)

	start := time.Now()
	closedAfter := make([]time.Duration, conns)
	sentBytes := make([]int, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", srv.Addr)
			if err != nil {
				t.Errorf("connection %d: %v", i, err)
				return
			}
			defer conn.Close()
			closed := make(chan time.Duration, 1)
			go func() {
				io.Copy(io.Discard, conn) // returns when the server closes
				closed <- time.Since(start)
			}()
			head := "POST /usage/api.calls HTTP/1.1\r\nHost: " + srv.Addr + "\r\nx-apikey: " + hostileAdminKey + "\r\nX-Slow: "
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			deadline := time.After(10 * time.Second)
			for n := 0; ; n++ {
				select {
				case d := <-closed:
					closedAfter[i] = d
					return
				case <-deadline:
					t.Errorf("connection %d still open after 10 s, %d bytes sent", i, sentBytes[i])
					return
				case <-tick.C:
					b := byte('x')
					if n < len(head) {
						b = head[n]
					}
					if _, err := conn.Write([]byte{b}); err == nil {
						sentBytes[i]++
					}
				}
			}
		}()
	}
	wg.Wait()
	good.Stop(t)

	var slowest, fastest time.Duration
	for i, d := range closedAfter {
		if d == 0 {
			continue
		}
		if d < timeout-100*time.Millisecond {
			t.Errorf("connection %d closed after %v, before the header timeout of %v", i, d, timeout)
		}
		if fastest == 0 || d < fastest {
			fastest = d
		}
		slowest = max(slowest, d)
	}
	if slowest > 5*timeout {
		t.Errorf("the last slow connection was closed after %v, want within a few header timeouts (%v)", slowest, timeout)
	}
	if got := good.requests.Load(); got < 5 {
		t.Errorf("the well-behaved client made only %d requests while the slow connections were open", got)
	}
	if n := hostileStored(t, srv); n != 0 {
		t.Errorf("%d events stored by the slow connections", n)
	}
	report(t, "slow loris: %d connections closed after %v to %v (header timeout %v); well-behaved client: %d requests, %d acknowledged, %d failed, slowest %v",
		conns, fastest.Round(time.Millisecond), slowest.Round(time.Millisecond), timeout,
		good.requests.Load(), len(good.acked), len(good.failures), good.slowest.Round(time.Millisecond))
}

// TestIDNormalization: ids are compared byte for byte and never
// normalized. Two ids that look the same but differ in Unicode
// normalization (NFC "é" and NFD "e" + U+0301), or in script (Latin "a"
// and Cyrillic "а"), are two ids: both events are stored and counted. The
// same holds for customer ids, whose aggregations stay apart.
func TestIDNormalization(t *testing.T) {
	srv, keys := startHostileServer(t)
	pairs := []struct{ name, a, b string }{
		{"NFCvsNFD", "caf\u00e9", "cafe\u0301"},
		{"LatinVsCyrillic", "paypal", "p\u0430yp\u0430l"},
		{"PrecomposedHangul", "\ud55c", "\u1112\u1161\u11ab"},
		{"Ligature", "\ufb01le", "file"},
	}
	stored := 0
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			if p.a == p.b {
				t.Fatal("the pair is one string")
			}
			for i, id := range []string{p.a, p.b} {
				body, _ := json.Marshal(map[string]any{"customerId": "cust_" + id, "value": i + 1, "id": "evt_" + id})
				a := srv.mustSend(t, "POST", "/usage/api.calls", keys["ingest"], body)
				if a.Status != http.StatusCreated {
					t.Fatalf("POST id %q: status %d, want 201 (a new id): %s", "evt_"+id, a.Status, a.Body)
				}
				stored++
				// The same bytes again are a duplicate.
				a = srv.mustSend(t, "POST", "/usage/api.calls", keys["ingest"], body)
				if a.Status != http.StatusOK || !strings.Contains(string(a.Body), `"duplicate":true`) {
					t.Fatalf("POST id %q again: status %d, want 200 duplicate: %s", "evt_"+id, a.Status, a.Body)
				}
			}
			for _, id := range []string{p.a, p.b} {
				ids := srv.eventIDs(t, "cust_"+id)
				if len(ids) != 1 || ids[0] != "evt_"+id {
					t.Fatalf("events of customer %q: %q, want one with id %q", "cust_"+id, ids, "evt_"+id)
				}
			}
		})
	}
	if got := len(srv.eventIDs(t, "")); got != stored {
		t.Errorf("%d events stored, want %d", got, stored)
	}
	report(t, "id normalization: %d look-alike pairs, %d events stored, each id once", len(pairs), stored)
}

// TestRateLimit runs the binary with a limit of 2 requests a second per
// key in bursts of 6: the seventh quick request of a key gets 429 with
// Retry-After and a JSON error and stores nothing, while other keys and
// the public routes go on; after Retry-After the key works again.
func TestRateLimit(t *testing.T) {
	srv, keys := startHostileServer(t, "ODOMETER_RATE_LIMIT=2", "ODOMETER_RATE_BURST=6")
	post := func(i int) *answer {
		return srv.mustSend(t, "POST", "/usage/api.calls", keys["ingest"], []byte(fmt.Sprintf(`{"customerId": "c", "value": 1, "id": "rl-%d"}`, i)))
	}
	var created, limited int
	retryAfter := ""
	start := time.Now()
	for i := range 12 {
		a := post(i)
		switch a.Status {
		case http.StatusCreated:
			created++
		case http.StatusTooManyRequests:
			limited++
			if !a.jsonError() || !strings.Contains(a.errorText(), "Too many requests") {
				t.Errorf("429 without its JSON error: %s", a.Body)
			}
			retryAfter = a.Header.Get("Retry-After")
			if n, err := strconv.Atoi(retryAfter); err != nil || n < 1 || n > 2 {
				t.Errorf("Retry-After %q, want 1 or 2 seconds", retryAfter)
			}
		default:
			t.Fatalf("POST %d: status %d: %s", i, a.Status, a.Body)
		}
	}
	// The burst of 6, and what the bucket refilled, at 2 a second, while
	// the requests ran.
	most := 6 + int(2*time.Since(start).Seconds()) + 1
	if created < 6 || created > most || limited == 0 {
		t.Errorf("%d created and %d limited of 12 quick requests, want 6 to %d created", created, limited, most)
	}
	if got, want := len(srv.eventIDs(t, "c")), created; got != want {
		t.Errorf("%d events stored, want the %d created", got, want)
	}
	for _, path := range []string{"/ping", "/healthz", "/"} {
		if a := srv.mustSend(t, "GET", path, "", nil); a.Status != http.StatusOK {
			t.Errorf("GET %s while a key is limited: status %d", path, a.Status)
		}
	}
	if a := srv.mustSend(t, "GET", "/events", keys["read"], nil); a.Status != http.StatusOK {
		t.Errorf("another key while one is limited: status %d: %s", a.Status, a.Body)
	}
	secs, _ := strconv.Atoi(retryAfter)
	time.Sleep(time.Duration(secs) * time.Second)
	if a := post(100); a.Status != http.StatusCreated {
		t.Errorf("after Retry-After: status %d, want 201: %s", a.Status, a.Body)
	}

	t.Run("OffByDefault", func(t *testing.T) {
		plain, keys := startHostileServer(t)
		for i := range 60 {
			a := plain.mustSend(t, "POST", "/usage/api.calls", keys["ingest"], []byte(fmt.Sprintf(`{"customerId": "c", "value": 1, "id": "nl-%d"}`, i)))
			if a.Status != http.StatusCreated {
				t.Fatalf("request %d without a rate limit: status %d: %s", i, a.Status, a.Body)
			}
		}
	})
	report(t, "rate limit 2/s, burst 6: 12 quick requests, %d created, %d answered 429 (Retry-After %s s)", created, limited, retryAfter)
}

// secretsConfig has a webhook whose secret must be shown nowhere.
const secretsConfig = `{
  "periods": ["daily"],
  "events": { "api.calls": { "op": "sum" } },
  "webhooks": [
    { "url": "https://billing.example.com/hooks", "secret": "whsec_c2VjcmV0X25ldmVyX3Nob3du", "enabled": true },
    { "url": "https://other.example.com/hooks", "secret": "template-secret-never-shown", "enabled": false }
  ]
}`

// TestSecretsNotLogged runs the binary at log level debug and uses every
// kind of secret on it: the admin key from the environment, keys made
// over the API, wrong keys, keys put in a query string. None may appear in
// its output, nor the webhook secrets in GET /config.
func TestSecretsNotLogged(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "systemconfig.json")
	if err := os.WriteFile(cfg, []byte(secretsConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	const admin = "odo_secret_admin_key_from_the_environment_42"
	srv := startServer(t, serverOptions{DB: filepath.Join(dir, "odometer.db"), Config: cfg, Key: admin, Dir: dir,
		Env: []string{"ODOMETER_LOG_LEVEL=debug", "ODOMETER_LOG_FORMAT=json"}})
	secrets := []string{admin, "whsec_c2VjcmV0X25ldmVyX3Nob3du", "c2VjcmV0X25ldmVyX3Nob3du", "template-secret-never-shown"}
	hash := sha256.Sum256([]byte(admin))
	secrets = append(secrets, hex.EncodeToString(hash[:]))

	for _, scope := range []string{"ingest", "read", "admin"} {
		key, _ := srv.createKey(t, scope, "")
		secrets = append(secrets, key)
		h := sha256.Sum256([]byte(key))
		secrets = append(secrets, hex.EncodeToString(h[:]))
		// Used as a key, as a bearer token, and (wrongly) in a query.
		srv.mustSend(t, "GET", "/events", key, nil)
		srv.send("GET", "/events", "", nil, http.Header{"Authorization": {"Bearer " + key}})
		srv.mustSend(t, "GET", "/events?apikey="+key+"&x-apikey="+key, "", nil)
	}
	wrong := "odo_wrong_key_that_must_not_be_logged_0000000000"
	secrets = append(secrets, wrong)
	srv.mustSend(t, "GET", "/keys", wrong, nil)
	srv.mustSend(t, "POST", "/usage/api.calls", wrong, []byte(`{"customerId": "c", "value": 1}`))
	srv.mustSend(t, "GET", "/nowhere?token="+wrong, wrong, nil)
	srv.mustSend(t, "POST", "/usage/api.calls", admin, []byte(`{"customerId": "c", "value": 1}`))
	srv.mustSend(t, "POST", "/aggregations/trigger", admin, nil)
	keysList := srv.mustSend(t, "GET", "/keys", admin, nil)

	config := srv.mustSend(t, "GET", "/config", admin, nil)
	if config.Status != http.StatusOK {
		t.Fatalf("GET /config: status %d: %s", config.Status, config.Body)
	}
	for _, s := range secrets {
		if strings.Contains(string(config.Body), s) {
			t.Errorf("GET /config shows a secret: %s", config.Body)
		}
		if strings.Contains(string(keysList.Body), s) {
			t.Errorf("GET /keys shows a secret or a key's hash: %s", keysList.Body)
		}
	}
	srv.Kill()
	out := srv.Output()
	if !strings.Contains(out, `"msg":"request"`) {
		t.Fatalf("no request was logged at level debug; output:\n%s", out)
	}
	leaked := 0
	for _, s := range secrets {
		if strings.Contains(out, s) {
			leaked++
			t.Errorf("the server's output shows the secret %.12s…", s)
		}
	}
	lines := strings.Count(out, "\n")

	// A PostgreSQL URL's password is not shown when the store cannot
	// be reached.
	const pgPassword = "pg-password-never-shown"
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--config", cfg,
		"--db", "postgres://odometer:"+pgPassword+"@127.0.0.1:1/odometer?connect_timeout=2")
	cmd.Dir = dir
	cmd.Env = append(childEnv(), "ODOMETER_LOG_LEVEL=debug")
	pgOut, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("odometer serve with an unreachable PostgreSQL exited 0")
	}
	if strings.Contains(string(pgOut), pgPassword) {
		leaked++
		t.Errorf("the PostgreSQL password is in the output:\n%s", pgOut)
	}
	report(t, "secrets: %d secrets used, %d log lines read, %d leaked", len(secrets)+1, lines, leaked)
}
