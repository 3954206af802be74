package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// binary is the odometer binary built by TestMain; moduleRoot is the
// directory of go.mod.
var binary, moduleRoot string

// readyTimeout bounds how long a started server may take to answer
// GET /readyz.
const readyTimeout = 10 * time.Second

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	root, err := findModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests:", err)
		return 1
	}
	moduleRoot = root
	dir, err := os.MkdirTemp("", "odometer-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "odometer")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	build := exec.Command("go", "build", "-o", binary, "./cmd/odometer")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "tests: go build ./cmd/odometer: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// findModuleRoot walks up from the working directory to the go.mod of the
// module.
func findModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// lockedBuffer collects a child's output; the exec package writes to it
// from its own goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serverOptions say how to start the binary.
type serverOptions struct {
	DB     string
	Config string // empty: no --config flag
	Dir    string // working directory; empty: a new temporary one
	Key    string // ODOMETER_API_KEY; empty: unset
	Env    []string
}

// server is a running odometer process.
type server struct {
	URL    string
	Addr   string
	Key    string
	Client *http.Client

	cmd    *exec.Cmd
	output *lockedBuffer
	done   chan struct{}
}

var errAddrInUse = errors.New("address already in use")

// startServer starts `odometer serve` and waits until GET /readyz answers
// 200. The process is killed when the test ends.
func startServer(t testing.TB, o serverOptions) *server {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	for attempt := 1; ; attempt++ {
		s, err := tryStartServer(o)
		if s != nil {
			t.Cleanup(s.Kill)
		}
		if err == nil {
			return s
		}
		// Another process may take the free port between its discovery
		// and the server's listen.
		if errors.Is(err, errAddrInUse) && attempt < 3 {
			continue
		}
		t.Fatal(err)
	}
}

func tryStartServer(o serverOptions) (*server, error) {
	s, err := spawnServer(o)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(); err != nil {
		s.Kill()
		if strings.Contains(s.output.String(), "address already in use") {
			return s, fmt.Errorf("%w: %v", errAddrInUse, err)
		}
		return s, err
	}
	return s, nil
}

// spawnServer starts `odometer serve` and returns at once, ready or not.
func spawnServer(o serverOptions) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--addr", addr, "--db", o.DB}
	if o.Config != "" {
		args = append(args, "--config", o.Config)
	}
	cmd := exec.Command(binary, args...)
	cmd.Dir = o.Dir
	dieWithParent(cmd)
	cmd.Env = append(childEnv(), o.Env...)
	if o.Key != "" {
		cmd.Env = append(cmd.Env, "ODOMETER_API_KEY="+o.Key)
	}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	s := &server{
		URL: "http://" + addr, Addr: addr, Key: o.Key,
		cmd: cmd, output: out, done: make(chan struct{}),
		Client: &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				Proxy:               nil,
				MaxIdleConnsPerHost: 64,
				DisableCompression:  true,
			},
		},
	}
	go func() {
		cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

func (s *server) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer probe.CloseIdleConnections()
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("odometer serve exited before it was ready (%v); its output:\n%s", s.cmd.ProcessState, s.output.String())
		default:
		}
		resp, err := probe.Get(s.URL + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("odometer serve not ready after %v (last: %s); its output:\n%s", readyTimeout, last, s.output.String())
}

// Kill ends the process with SIGKILL, at once, and waits for it.
func (s *server) Kill() {
	select {
	case <-s.done:
	default:
		s.cmd.Process.Kill()
		<-s.done
	}
	s.Client.CloseIdleConnections()
}

// Output is what the process wrote to stdout and stderr.
func (s *server) Output() string { return s.output.String() }

// childEnv is the environment of the tests without the variables that
// would change how the server runs.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "ODOMETER_") || name == "DRY_RUN" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// freeAddr returns a loopback address with a port free at the time of the
// call.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// do sends a request with the admin key and returns the status and the
// body. A status of 2xx with a body that could not be read is returned
// with both: the status is what says whether the server acted.
func (s *server) do(ctx context.Context, method, path string, body []byte) (int, []byte, http.Header, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, r)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("x-apikey", s.Key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

// getJSON GETs path and decodes a 200 answer into v.
func (s *server) getJSON(t testing.TB, path string, v any) http.Header {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status, body, h, err := s.do(ctx, "GET", path, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if got, want := status, http.StatusOK; got != want {
		t.Fatalf("GET %s: status %d, want %d: %s", path, got, want, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: decode: %v: %s", path, err, body)
	}
	return h
}
