package http

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/odometer-dev/odometer"
)

// Compressed request bodies. SDKs and collectors send batches with
// Content-Encoding: gzip; a batch of 1000 events shrinks about tenfold.
// The body limits are limits on what the server holds, so they apply to
// the decompressed body: a few kilobytes that inflate to gigabytes (a zip
// bomb) are refused with 413 once the limit is passed, having read no more
// than the limit.

// acceptedEncodings is the Accept-Encoding of a 415 answer (RFC 7694).
const acceptedEncodings = "gzip, deflate"

// wireSlack is how much a compressed body may exceed the limit as sent:
// data that does not compress grows a little under gzip.
const wireSlack = 64 << 10

// contentCoding returns the body's one content coding: "" for none (or
// identity), "gzip" or "deflate". Anything else, including two codings
// stacked, is EUNSUPPORTED.
func contentCoding(h http.Header) (string, error) {
	var codings []string
	for _, v := range h.Values("Content-Encoding") {
		for _, c := range strings.Split(v, ",") {
			c = strings.ToLower(strings.TrimSpace(c))
			if c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	if len(codings) == 0 {
		return "", nil
	}
	if len(codings) == 1 {
		switch codings[0] {
		case "gzip", "x-gzip":
			return "gzip", nil
		case "deflate":
			return "deflate", nil
		}
	}
	return "", odometer.Errorf(odometer.EUNSUPPORTED,
		"Content-Encoding %s is not supported: send the body as it is, or compressed with gzip or deflate", strings.Join(codings, ", "))
}

// inflate reads the compressed body wire with coding and returns it
// decompressed, up to limit bytes: past that, ETOOLARGE. It holds at most
// limit bytes plus one chunk while reading, never a doubled buffer.
func inflate(wire io.Reader, coding string, limit int64) ([]byte, error) {
	var zr io.ReadCloser
	var err error
	switch coding {
	case "gzip":
		zr, err = gzip.NewReader(wire)
	case "deflate":
		// HTTP's deflate is the zlib format; some clients send raw
		// deflate, which has no zlib header.
		br := bufio.NewReader(wire)
		if head, perr := br.Peek(2); perr == nil && head[0]&0x0f == 8 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 {
			zr, err = zlib.NewReader(br)
		} else {
			zr = flate.NewReader(br)
		}
	}
	if err != nil {
		return nil, compressedError(coding, limit, err)
	}
	defer zr.Close()

	// Chunks that double from 4 KiB up to 256 KiB: a small event costs
	// little, and nothing is copied until the end.
	var chunks [][]byte
	var total int64
	size := 4 << 10
	for {
		if int64(size) > limit+1-total {
			size = int(limit + 1 - total)
		}
		chunk := make([]byte, size)
		n, err := io.ReadFull(zr, chunk)
		chunks = append(chunks, chunk[:n])
		total += int64(n)
		if total > limit {
			return nil, odometer.Errorf(odometer.ETOOLARGE, "Request body too large: the limit is %d bytes, decompressed", limit)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, compressedError(coding, limit, err)
		}
		if size < 256<<10 {
			size *= 2
		}
	}
	// The whole stream, trailer and checksum included, must be good.
	if _, err := zr.Read(make([]byte, 1)); err != nil && err != io.EOF {
		return nil, compressedError(coding, limit, err)
	}
	body := make([]byte, 0, total)
	for _, c := range chunks {
		body = append(body, c...)
	}
	return body, nil
}

// compressedError is the answer to a compressed body that could not be
// read: 413 if the body as sent was over the limit, else 400.
func compressedError(coding string, limit int64, err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return odometer.Errorf(odometer.ETOOLARGE, "Request body too large: the limit is %d bytes", limit)
	}
	return odometer.Errorf(odometer.EINVALID, "Request body is not valid %s data", coding)
}
