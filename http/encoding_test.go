package http

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/odometer-dev/odometer"
	"github.com/odometer-dev/odometer/storetest"
)

// compress returns b compressed with coding: gzip, deflate (zlib, as HTTP
// names it) or raw-deflate (a bare deflate stream, as some clients send).
func compress(tb testing.TB, coding string, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w = zlib.NewWriter(&buf)
	case "raw-deflate":
		w, _ = flate.NewWriter(&buf, flate.DefaultCompression)
	default:
		tb.Fatalf("coding %q", coding)
	}
	if _, err := w.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// encodingBatch is a batch of n events with their own ids and times, so
// that two servers on the same clock store the same events.
func encodingBatch(n int) string {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"eventType": "api.calls", "customerId": "cust_<%d>&", "value": %d.5, "id": "req-%04d", "timestamp": "2026-01-13T09:%02d:00Z", "metadata": {"region": "eu", "n": %d}}`,
			i%7, i, i, i%60, i)
	}
	b.WriteString("]")
	return b.String()
}

// TestUsage_Compressed: a compressed batch, or event, is stored exactly as
// its plain twin, with the same answer.
func TestUsage_Compressed(t *testing.T) {
	batch := encodingBatch(1000)
	event := `{"customerId": "cust_1", "value": 0.1, "id": "one", "metadata": {"a": [1, 2]}}`
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		plain := MustOpenServer(t, open)
		pb := plain.MustDo(t, http.StatusCreated, "POST", "/usagebatch", plain.IngestKey, batch)
		pe := plain.MustDo(t, http.StatusCreated, "POST", "/usage/api.calls", plain.IngestKey, event)
		want := plain.Events(t)
		if len(want) != 1001 {
			t.Fatalf("%d events stored in plain, want 1001", len(want))
		}
		for _, coding := range []string{"gzip", "deflate", "raw-deflate"} {
			t.Run(coding, func(t *testing.T) {
				ts := MustOpenServer(t, open)
				header := coding
				if coding == "raw-deflate" {
					header = "deflate"
				}
				zb := compress(t, coding, []byte(batch))
				if len(zb)*5 > len(batch) {
					t.Fatalf("the batch compressed to %d of %d bytes: not a compressed body", len(zb), len(batch))
				}
				rb := ts.MustDo(t, http.StatusCreated, "POST", "/usagebatch", ts.IngestKey, string(zb), "Content-Encoding", header)
				re := ts.MustDo(t, http.StatusCreated, "POST", "/usage/api.calls", ts.IngestKey,
					string(compress(t, coding, []byte(event))), "Content-Encoding", strings.ToUpper(header))
				if !bytes.Equal(rb.Body, pb.Body) || !bytes.Equal(re.Body, pe.Body) {
					t.Fatalf("answers %s %s, plain %s %s", rb.Body, re.Body, pb.Body, pe.Body)
				}
				if got := ts.Events(t); !reflect.DeepEqual(got, want) {
					t.Fatalf("stored %d events that differ from the plain twin's %d", len(got), len(want))
				}
			})
		}
		t.Logf("1000-event batch: %d bytes plain, %d gzipped", len(batch), len(compress(t, "gzip", []byte(batch))))
	})
}

// TestUsage_CompressedRefused: encodings not understood get 415, broken
// compressed bodies 400, and nothing is stored.
func TestUsage_CompressedRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		batch := []byte(encodingBatch(3))
		gz := compress(t, "gzip", batch)
		badCRC := bytes.Clone(gz)
		badCRC[len(badCRC)-5] ^= 0xff
		for _, tt := range []struct {
			name, encoding string
			body           []byte
			status         int
			err            string
		}{
			{"ErrBrotli", "br", gz, http.StatusUnsupportedMediaType, "Content-Encoding br is not supported"},
			{"ErrZstd", "zstd", gz, http.StatusUnsupportedMediaType, "Content-Encoding zstd is not supported"},
			{"ErrStacked", "gzip, gzip", gz, http.StatusUnsupportedMediaType, "Content-Encoding gzip, gzip is not supported"},
			{"ErrCompress", "compress", gz, http.StatusUnsupportedMediaType, "Content-Encoding compress is not supported"},
			{"ErrNotGzip", "gzip", batch, http.StatusBadRequest, "Request body is not valid gzip data"},
			{"ErrTruncated", "gzip", gz[:len(gz)/2], http.StatusBadRequest, "Request body is not valid gzip data"},
			{"ErrChecksum", "gzip", badCRC, http.StatusBadRequest, "Request body is not valid gzip data"},
			{"ErrEmpty", "gzip", nil, http.StatusBadRequest, "Request body is not valid gzip data"},
			{"ErrNotDeflate", "deflate", []byte{0xff, 0xff, 0xff}, http.StatusBadRequest, "Request body is not valid deflate data"},
			{"ErrGzipOfNotJSON", "gzip", compress(t, "gzip", []byte("[{")), http.StatusBadRequest, "Invalid JSON"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				for _, path := range []string{"/usagebatch", "/usage/api.calls"} {
					r := ts.MustDo(t, tt.status, "POST", path, ts.IngestKey, string(tt.body), "Content-Encoding", tt.encoding)
					if !strings.Contains(r.Error(), tt.err) {
						t.Fatalf("POST %s: error %q, want it to contain %q", path, r.Error(), tt.err)
					}
					if tt.status == http.StatusUnsupportedMediaType {
						if got, want := r.Header.Get("Accept-Encoding"), "gzip, deflate"; got != want {
							t.Fatalf("Accept-Encoding %q, want %q", got, want)
						}
					}
				}
			})
		}
		t.Run("OKIdentity", func(t *testing.T) {
			ts.MustDo(t, http.StatusCreated, "POST", "/usagebatch", ts.IngestKey, string(batch), "Content-Encoding", "identity")
			ts.mustCount(t, 3)
		})
	})
}

// TestUsage_ZipBomb: a 10 KiB body that inflates to 10 MiB, past a 1 MiB
// batch limit, is refused with 413 having read no more than the limit:
// nothing is stored, and the server allocates about the limit, whatever the
// body would inflate to.
func TestUsage_ZipBomb(t *testing.T) {
	const limit = 1 << 20
	// A valid JSON array (of spaces, then one event) that inflates far past
	// the limit: only the size is wrong.
	bomb := func(inflated int) []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write([]byte("["))
		zw.Write(bytes.Repeat([]byte(" "), inflated))
		zw.Write([]byte(`{"eventType": "api.calls", "customerId": "c", "value": 1}]`))
		zw.Close()
		return buf.Bytes()
	}
	storetest.Each(t, func(t *testing.T, open func(testing.TB) odometer.Store) {
		ts := MustOpenServer(t, open)
		ts.API.MaxBatchBytes = limit
		var figures []string
		for _, inflated := range []int{10 << 20, 100 << 20} {
			body := bomb(inflated)
			if inflated == 10<<20 && (len(body) < 9<<10 || len(body) > 11<<10) {
				t.Fatalf("the bomb is %d bytes, want about 10 KiB", len(body))
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			r := ts.MustDo(t, http.StatusRequestEntityTooLarge, "POST", "/usagebatch", ts.IngestKey, string(body), "Content-Encoding", "gzip")
			runtime.ReadMemStats(&after)
			if got, want := r.Error(), fmt.Sprintf("Request body too large: the limit is %d bytes, decompressed", limit); got != want {
				t.Fatalf("error %q, want %q", got, want)
			}
			// Everything allocated while the request was served, by the
			// server and the test alike: an upper bound on the growth. It
			// is the limit, plus the decompressor's window and tables and
			// the request's own handling, whatever the body inflates to.
			alloc := after.TotalAlloc - before.TotalAlloc
			if alloc > limit+256<<10 {
				t.Fatalf("a %d-byte body inflating to %d bytes allocated %d bytes; the limit is %d", len(body), inflated, alloc, limit)
			}
			figures = append(figures, fmt.Sprintf("%d-byte gzip body inflating to %d MiB: 413, %d KiB allocated", len(body), inflated>>20, alloc>>10))
		}
		ts.mustCount(t, 0)
		// The same body under the limit is taken: the refusal was the size.
		ts.API.MaxBatchBytes = 11 << 20
		ts.MustDo(t, http.StatusCreated, "POST", "/usagebatch", ts.IngestKey, string(bomb(10<<20)), "Content-Encoding", "gzip")
		ts.mustCount(t, 1)
		reportFigures(t, "zip bomb: limit %d KiB; %s", limit>>10, strings.Join(figures, "; "))
	})
}
