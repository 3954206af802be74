package tests

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The hostile corpus: one file per request under testdata/hostile, each a
// block of "name: value" lines, a line "---", then the body. The fields:
//
//	method, path   the request line (path exactly as sent)
//	key            which key goes in x-apikey: none (default), admin,
//	               ingest, read, pinned (read, pinned to cust_pinned),
//	               revoked, wrong
//	header         "Name: value", added to the request; may repeat
//	status         the expected status: "400", or a range "400-499"
//	json           "no" when the Go server itself answers before the
//	               handler, with its own plain text (431, 400 for a
//	               malformed request); otherwise the answer must be a
//	               JSON object with an "error" string
//	error          text the "error" must contain
//	location       for a redirect, the Location it must name
//	repeat         the body is repeated this many times...
//	prefix, suffix ...between these (Go-quoted strings)
//	escapes        "hex": \xNN in the body stands for the byte NN
//	raw            "yes": the text after "---" is the request head, sent
//	               as written on a bare TCP connection (lines ended with
//	               CRLF; {KEY} is the admin key); a blank line starts the
//	               body
//	flood          with raw: add this many headers of 40 bytes each
//	big-header     with raw: add one header of this many bytes
//
// In path, header, prefix, suffix and a raw head, {{N*text}} stands for
// text repeated N times.
// Lines starting with "#" say what the case is.

// hostileCase is one file of the corpus.
type hostileCase struct {
	name      string
	raw       bool
	method    string
	path      string
	key       string
	header    [][2]string
	statusLo  int
	statusHi  int
	json      bool
	errText   string
	location  string
	flood     int
	bigHeader int
	body      []byte
}

// loadHostileCases reads every case of dir, sorted by name.
func loadHostileCases(t *testing.T, dir string) []*hostileCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.http"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var cases []*hostileCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseHostileCase(filepath.Base(f), b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		cases = append(cases, c)
	}
	return cases
}

func parseHostileCase(name string, b []byte) (*hostileCase, error) {
	head, body, ok := bytes.Cut(b, []byte("\n---\n"))
	if !ok {
		if !bytes.HasSuffix(b, []byte("\n---")) {
			return nil, fmt.Errorf("no line --- before the body")
		}
		head, body = b[:len(b)-4], nil
	}
	body = bytes.TrimSuffix(body, []byte("\n"))
	c := &hostileCase{name: strings.TrimSuffix(name, ".http"), key: "none", json: true}
	var prefix, suffix []byte
	repeat := 1
	escapes := false
	for _, line := range strings.Split(string(head), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("line %q is not name: value", line)
		}
		v = strings.TrimSpace(v)
		if k == "path" || k == "header" {
			v = expandRepeats(v)
		}
		var err error
		switch k {
		case "method":
			c.method = v
		case "path":
			c.path = v
		case "key":
			c.key = v
		case "header":
			hk, hv, _ := strings.Cut(v, ":")
			c.header = append(c.header, [2]string{strings.TrimSpace(hk), strings.TrimSpace(hv)})
		case "status":
			lo, hi, isRange := strings.Cut(v, "-")
			if c.statusLo, err = strconv.Atoi(lo); err == nil {
				c.statusHi = c.statusLo
				if isRange {
					c.statusHi, err = strconv.Atoi(hi)
				}
			}
		case "json":
			c.json = v != "no"
		case "error":
			c.errText = v
		case "location":
			c.location = v
		case "repeat":
			repeat, err = strconv.Atoi(v)
		case "prefix":
			var s string
			s, err = strconv.Unquote(v)
			prefix = []byte(expandRepeats(s))
		case "suffix":
			var s string
			s, err = strconv.Unquote(v)
			suffix = []byte(expandRepeats(s))
		case "escapes":
			escapes = v == "hex"
		case "raw":
			c.raw = v == "yes"
		case "flood":
			c.flood, err = strconv.Atoi(v)
		case "big-header":
			c.bigHeader, err = strconv.Atoi(v)
		default:
			return nil, fmt.Errorf("unknown field %q", k)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k, err)
		}
	}
	if escapes {
		var err error
		if body, err = unescapeHex(body); err != nil {
			return nil, err
		}
	}
	if c.statusLo == 0 {
		return nil, fmt.Errorf("no status")
	}
	if !c.raw && (c.method == "" || c.path == "") {
		return nil, fmt.Errorf("no method or path")
	}
	if c.raw {
		body = []byte(expandRepeats(string(body)))
	}
	c.body = append(append(prefix, bytes.Repeat(body, repeat)...), suffix...)
	return c, nil
}

var repeatRE = regexp.MustCompile(`\{\{(\d+)\*(.*?)\}\}`)

// expandRepeats replaces each {{N*text}} of s by text repeated N times.
func expandRepeats(s string) string {
	return repeatRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := repeatRE.FindStringSubmatch(m)
		n, _ := strconv.Atoi(sub[1])
		return strings.Repeat(sub[2], n)
	})
}

// unescapeHex replaces each \xNN of b by the byte NN.
func unescapeHex(b []byte) ([]byte, error) {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+3 < len(b) && b[i+1] == 'x' {
			v, err := hex.DecodeString(string(b[i+2 : i+4]))
			if err != nil {
				return nil, fmt.Errorf("bad escape %q", b[i:i+4])
			}
			out = append(out, v[0])
			i += 3
			continue
		}
		out = append(out, b[i])
	}
	return out, nil
}

// hostileKeys are the keys a case may name.
type hostileKeys map[string]string

// rawRequest is the bytes of a raw case: its head with CRLF line ends,
// the floods, then its body.
func (c *hostileCase) rawRequest(keys hostileKeys, addr string) []byte {
	head, body, _ := bytes.Cut(c.body, []byte("\n\n"))
	var b bytes.Buffer
	for _, line := range strings.Split(string(head), "\n") {
		line = strings.ReplaceAll(line, "{KEY}", keys["admin"])
		line = strings.ReplaceAll(line, "{HOST}", addr)
		b.WriteString(line + "\r\n")
	}
	for i := range c.flood {
		fmt.Fprintf(&b, "X-Flood-%05d: %s\r\n", i, strings.Repeat("f", 25))
	}
	if c.bigHeader > 0 {
		fmt.Fprintf(&b, "X-Big: %s\r\n", strings.Repeat("b", c.bigHeader))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// sendRaw writes a raw case on a new connection and reads one answer.
// status is 0 when the server closed the connection without one.
func sendRaw(addr string, req []byte) (*answer, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	// The server may answer and close before it has read everything (a
	// 431): a write error is not the outcome, the answer is.
	go conn.Write(req)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF || strings.Contains(err.Error(), "connection reset") {
			return &answer{Header: http.Header{}}, nil
		}
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &answer{resp.StatusCode, resp.Header, b}, nil
}

// send sends a case through the Go client.
func (c *hostileCase) send(s *server, keys hostileKeys) (*answer, error) {
	h := http.Header{}
	for _, kv := range c.header {
		h.Add(kv[0], kv[1])
	}
	var body []byte
	if len(c.body) > 0 {
		body = c.body
	}
	return s.sendVia(noRedirect(s), c.method, c.path, keys[c.key], body, h)
}

// noRedirect is the transport of the server without following redirects:
// a redirect is the answer to check.
func noRedirect(s *server) *http.Client {
	return &http.Client{
		Timeout:   60 * time.Second,
		Transport: s.Client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// leakWords reveal the server's insides and must reach no client.
var leakWords = []string{"sqlite", "SQLite", "SELECT", "INSERT", "/tmp/", "goroutine", ".go:", "panic"}

// goodClient posts valid events and reads while a test attacks the
// server, and records whether any of its requests failed.
type goodClient struct {
	srv      *server
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	acked    []string
	failures []string
	requests atomic.Int64
	slowest  time.Duration
}

// goodCustomer is the customer of the well-behaved client's events.
const goodCustomer = "good_client"

func startGoodClient(srv *server) *goodClient {
	g := &goodClient{srv: srv, stop: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

func (g *goodClient) run() {
	defer close(g.done)
	for n := 0; ; n++ {
		select {
		case <-g.stop:
			return
		case <-time.After(2 * time.Millisecond):
		}
		id := fmt.Sprintf("good-%06d", n)
		start := time.Now()
		a, err := g.srv.send("POST", "/usage/api.calls", g.srv.Key,
			[]byte(`{"customerId": "`+goodCustomer+`", "value": 1, "id": "`+id+`"}`), nil)
		took := time.Since(start)
		g.requests.Add(1)
		g.mu.Lock()
		g.slowest = max(g.slowest, took)
		switch {
		case err != nil:
			g.failures = append(g.failures, fmt.Sprintf("POST %s: %v", id, err))
		case a.Status != http.StatusCreated:
			g.failures = append(g.failures, fmt.Sprintf("POST %s: status %d: %s", id, a.Status, a.Body))
		default:
			g.acked = append(g.acked, id)
		}
		g.mu.Unlock()
	}
}

// Stop ends the client and fails t if any of its requests failed.
func (g *goodClient) Stop(t *testing.T) {
	t.Helper()
	close(g.stop)
	<-g.done
	for i, f := range g.failures {
		if i < 5 {
			t.Errorf("well-behaved client: %s", f)
		}
	}
	if len(g.failures) > 0 {
		t.Errorf("well-behaved client: %d of %d requests failed", len(g.failures), g.requests.Load())
	}
}

// hostileStored returns how many stored events the well-behaved client
// did not send.
func hostileStored(t *testing.T, srv *server) int {
	t.Helper()
	n := 0
	for _, id := range srv.eventIDs(t, "") {
		if !strings.HasPrefix(id, "good-") {
			n++
		}
	}
	return n
}

// hostileConfig is the configuration of the corpus's server.
const hostileConfig = `{
  "periods": ["hourly", "daily", "monthly"],
  "events": {
    "api.calls": { "op": "sum" },
    "storage.bytes": { "op": "max" },
    "latency.ms": { "op": "avg" }
  },
  "webhooks": []
}`

const hostileAdminKey = "odo_test_hostile_admin_key_0123456789"

// startHostileServer starts the binary with a one-second header timeout
// and makes the keys the cases name.
func startHostileServer(t *testing.T, env ...string) (*server, hostileKeys) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "systemconfig.json")
	if err := os.WriteFile(cfg, []byte(hostileConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, serverOptions{DB: filepath.Join(dir, "odometer.db"), Config: cfg, Key: hostileAdminKey, Dir: dir,
		Env: append([]string{"ODOMETER_READ_HEADER_TIMEOUT=1s", "ODOMETER_LOG_LEVEL=debug"}, env...)})
	keys := hostileKeys{"none": "", "admin": hostileAdminKey, "wrong": "odo_" + strings.Repeat("0", 48)}
	keys["ingest"], _ = srv.createKey(t, "ingest", "")
	keys["read"], _ = srv.createKey(t, "read", "")
	keys["pinned"], _ = srv.createKey(t, "read", "cust_pinned")
	var revokedID string
	keys["revoked"], revokedID = srv.createKey(t, "ingest", "")
	if a := srv.mustSend(t, "DELETE", "/keys/"+revokedID, hostileAdminKey, nil); a.Status != http.StatusOK {
		t.Fatalf("DELETE /keys/%s: status %d: %s", revokedID, a.Status, a.Body)
	}
	return srv, keys
}

// TestHostileCorpus sends every request of testdata/hostile to the real
// binary, one at a time, while a well-behaved client posts events beside
// them. Each must get its expected refusal, with a JSON error unless the
// Go server itself answers; none may store anything, reveal the server's
// insides, or disturb the well-behaved client.
func TestHostileCorpus(t *testing.T) {
	cases := loadHostileCases(t, filepath.Join(moduleRoot, "testdata", "hostile"))
	if len(cases) < 80 {
		t.Fatalf("%d cases in testdata/hostile, want at least 80", len(cases))
	}
	srv, keys := startHostileServer(t)
	good := startGoodClient(srv)

	var tried, refused, goAnswered, stored, failed int
	byStatus := map[int]int{}
	for _, c := range cases {
		ok := t.Run(c.name, func(t *testing.T) {
			tried++
			var a *answer
			var err error
			if c.raw {
				a, err = sendRaw(srv.Addr, c.rawRequest(keys, srv.Addr))
			} else {
				a, err = c.send(srv, keys)
			}
			if err != nil {
				t.Fatalf("%v", err)
			}
			byStatus[a.Status]++
			t.Logf("%d %.200q", a.Status, a.Body)
			if a.Status < c.statusLo || a.Status > c.statusHi {
				t.Errorf("status %d, want %d-%d: %.300q", a.Status, c.statusLo, c.statusHi, a.Body)
			}
			switch {
			case c.json && !a.jsonError():
				t.Errorf("status %d: not a JSON error (Content-Type %q): %.300q", a.Status, a.Header.Get("Content-Type"), a.Body)
			case c.json:
				refused++
				if c.errText != "" && !strings.Contains(a.errorText(), c.errText) {
					t.Errorf("error %.300q, want it to contain %q", a.errorText(), c.errText)
				}
			default:
				goAnswered++
			}
			if c.location != "" {
				if got := a.Header.Get("Location"); got != c.location {
					t.Errorf("Location %q, want %q", got, c.location)
				}
			}
			for _, w := range leakWords {
				if bytes.Contains(a.Body, []byte(w)) {
					t.Errorf("the answer reveals %q: %.300q", w, a.Body)
				}
			}
			if n := hostileStored(t, srv); n != stored {
				t.Errorf("%d events stored by this request", n-stored)
				stored = n
			}
			select {
			case <-srv.done:
				t.Fatalf("the server exited; its output:\n%s", srv.Output())
			default:
			}
		})
		if !ok {
			failed++
		}
	}
	good.Stop(t)
	acked := len(good.acked)
	ids := srv.eventIDs(t, goodCustomer)
	if got, want := len(ids), acked; got != want {
		t.Errorf("the well-behaved client has %d events stored, want %d", got, want)
	}
	statuses := make([]int, 0, len(byStatus))
	for s := range byStatus {
		statuses = append(statuses, s)
	}
	sort.Ints(statuses)
	var hist []string
	for _, s := range statuses {
		hist = append(hist, fmt.Sprintf("%d×%d", s, byStatus[s]))
	}
	report(t, "hostile corpus: cases tried %d; failed %d; JSON refusals %d; answered by the Go server %d; stored %d; "+
		"statuses %s; well-behaved client: %d requests, %d acknowledged, %d failed, slowest %v",
		tried, failed, refused, goAnswered, stored, strings.Join(hist, " "),
		good.requests.Load(), acked, len(good.failures), good.slowest.Round(time.Millisecond))
}
