package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
)

type sendOptions struct {
	clientOptions
	format        string
	source        string
	output        string
	batchSize     int
	maxBatchBytes int
	concurrency   int
	retries       int
	progressEvery time.Duration
}

func newSendCommand() *cobra.Command {
	var o sendOptions
	cmd := &cobra.Command{
		Use:   "send FILE|-",
		Short: "Import usage events from an NDJSON or CSV file",
		Long: `Import usage events from a file ("-" for standard input) through POST /usagebatch,
in batches of up to 1000, each sent gzipped (Content-Encoding: gzip).

NDJSON: one event object per line, with the fields of /usagebatch:
  {"eventType": "api.calls", "customerId": "cust_123", "value": 1, "id": "...", "timestamp": "2026-01-13T10:00:00Z", "metadata": {...}}
CSV: a header row naming the columns eventType, customerId, value, and optionally
id, timestamp and metadata (a JSON object), in any order.

An event without an id gets one derived from the input's identity (--source, or
the file's absolute path), its line number and the line itself. Running the same
file again, after a failure or an interruption, so sends the same ids, and the
server counts every event once: what was stored before comes back as duplicates.
Fixing a refused line and running the file again sends only that line anew.

Answers 5xx and failed connections are retried with backoff, with the same ids.
A batch with invalid events (422) is sent again without them, and each invalid
line is reported. A summary ends the run (stored, duplicates, refused with the
reasons, seconds); the exit status is 1 if any line was refused or the run stopped.`,
		Example: `  odometer send events.ndjson
  odometer send usage-2026-01.csv --source billing-2026-01
  gzip -dc events.ndjson.gz | odometer send - --source events-2026-01-13 --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSend(cmd, o, args[0])
		},
	}
	addClientFlags(cmd, &o.clientOptions)
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "auto", "input format: ndjson, csv, or auto (by the file's extension, else its first byte)")
	f.StringVar(&o.source, "source", "", "name of the input for the ids of events without one (default: the file's absolute path)")
	f.StringVarP(&o.output, "output", "o", outputTable, "summary format: table or json")
	f.IntVar(&o.batchSize, "batch-size", odometer.MaxBatch, "events per request (at most 1000)")
	f.IntVar(&o.maxBatchBytes, "batch-bytes", 8<<20, "largest body of one request, in bytes (the server's default limit is 10 MiB)")
	f.IntVar(&o.concurrency, "concurrency", 2, "requests in flight")
	f.IntVar(&o.retries, "retries", 10, "tries of one batch on 5xx answers and failed connections before giving up")
	f.DurationVar(&o.progressEvery, "progress-every", 10*time.Second, "interval of the progress lines when standard error is not a terminal (0: none)")
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"auto", "ndjson", "csv"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// sendItem is one event to send: its line, and its JSON object with an id.
type sendItem struct {
	line int
	id   string
	body []byte
}

// refusal is a line that was not stored, and why.
type refusal struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// sendSummary is the outcome of a send.
type sendSummary struct {
	Source      string         `json:"source"`
	Events      int            `json:"events"`
	Stored      int            `json:"stored"`
	Duplicates  int            `json:"duplicates"`
	Refused     int            `json:"refused"`
	Reasons     map[string]int `json:"reasons"`
	Refusals    []refusal      `json:"refusals"`
	Seconds     float64        `json:"seconds"`
	Interrupted bool           `json:"interrupted,omitempty"`
	Error       string         `json:"error,omitempty"`
}

// retryBase is the first wait before a retry; each next one doubles, up
// to 15 seconds.
var retryBase = 250 * time.Millisecond

// maxRefusalsShown bounds the refusals listed one by one.
const maxRefusalsShown = 1000

func runSend(cmd *cobra.Command, o sendOptions, arg string) error {
	if o.output != outputTable && o.output != outputJSON {
		return fmt.Errorf("--output must be table or json, not %q", o.output)
	}
	if o.batchSize < 1 || o.batchSize > odometer.MaxBatch {
		return fmt.Errorf("--batch-size must be from 1 to %d", odometer.MaxBatch)
	}
	if o.concurrency < 1 || o.concurrency > 64 {
		return errors.New("--concurrency must be from 1 to 64")
	}
	if o.retries < 1 {
		return errors.New("--retries must be at least 1")
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()

	// The input is read twice: once to count its lines (for the progress)
	// and once to send it. Standard input is kept in a temporary file.
	path, identity := arg, o.source
	if arg == "-" {
		tmp, err := os.CreateTemp("", "odometer-send-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		if _, err := io.Copy(tmp, cmd.InOrStdin()); err != nil {
			tmp.Close()
			return fmt.Errorf("read standard input: %w", err)
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		path = tmp.Name()
		if identity == "" {
			identity = "stdin"
			fmt.Fprintln(stderr, "Reading standard input without --source: the ids of events without one derive from their line only; give --source NAME to tell inputs apart.")
		}
	} else if identity == "" {
		abs, err := filepath.Abs(arg)
		if err != nil {
			return err
		}
		if r, err := filepath.EvalSymlinks(abs); err == nil {
			abs = r
		}
		identity = abs
	}
	format, err := inputFormat(o.format, arg, path)
	if err != nil {
		return err
	}
	total, err := countLines(path)
	if err != nil {
		return err
	}
	if format == "csv" && total > 0 {
		total--
	}
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()

	s := &sender{
		c: c, o: o, stderr: stderr,
		sum: sendSummary{Source: arg, Reasons: map[string]int{}, Refusals: []refusal{}},
		prog: &progress{w: stderr, terminal: isTerminal(stderr), total: total, every: o.progressEvery,
			start: time.Now()},
	}
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	batches := make(chan []sendItem, o.concurrency)
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if err := s.send(ctx, b); err != nil {
					s.fail(err)
					cancel()
				}
			}
		}()
	}
	s.prog.begin()
	readErr := readInput(ctx, file, format, identity, o.batchSize, o.maxBatchBytes, batches, s.refuse)
	close(batches)
	wg.Wait()
	s.prog.end()

	sum := &s.sum
	sum.Seconds = time.Since(s.prog.start).Seconds()
	runErr := s.err
	if runErr == nil && readErr != nil && !errors.Is(readErr, context.Canceled) {
		runErr = readErr
	}
	if cmd.Context().Err() != nil {
		sum.Interrupted = true
		runErr = errors.New("interrupted: run the same command again to send the rest; the events already stored are recognized by their ids and not counted twice")
	}
	if runErr != nil {
		sum.Error = runErr.Error()
	}
	printSummary(cmd.OutOrStdout(), o.output, sum)
	if runErr != nil {
		return runErr
	}
	if sum.Refused > 0 {
		return fmt.Errorf("%d events refused", sum.Refused)
	}
	return nil
}

// inputFormat decides the format: as told, by the extension, or by the
// first byte that is not a space.
func inputFormat(format, name, path string) (string, error) {
	switch format {
	case "ndjson", "csv":
		return format, nil
	case "auto":
	default:
		return "", fmt.Errorf("--format must be ndjson, csv or auto, not %q", format)
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return "csv", nil
	case ".ndjson", ".jsonl", ".json":
		return "ndjson", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		b, err := r.ReadByte()
		if err != nil {
			return "ndjson", nil
		}
		if b == '{' {
			return "ndjson", nil
		}
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' && b != 0xEF && b != 0xBB && b != 0xBF {
			return "csv", nil
		}
	}
}

// countLines counts the lines of a file that hold something.
func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, filled := 0, false
	buf := make([]byte, 1<<20)
	for {
		k, err := f.Read(buf)
		for _, b := range buf[:k] {
			switch b {
			case '\n':
				if filled {
					n++
				}
				filled = false
			case ' ', '\t', '\r':
			default:
				filled = true
			}
		}
		if err == io.EOF {
			if filled {
				n++
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// eventID derives the id of an event without one from the input's
// identity, the line number and the line's bytes: the same line of the
// same input gets the same id on every run.
func eventID(identity string, line int, content []byte) string {
	h := sha256.New()
	h.Write([]byte(identity))
	h.Write([]byte{'\n'})
	h.Write([]byte(strconv.Itoa(line)))
	h.Write([]byte{'\n'})
	h.Write(content)
	return "send:" + hex.EncodeToString(h.Sum(nil))[:32]
}

// readInput parses the input into batches. Lines that are not events are
// refused on the spot.
func readInput(ctx context.Context, r io.Reader, format, identity string, batchSize, maxBytes int,
	out chan<- []sendItem, refuse func(line int, reason string)) error {
	var batch []sendItem
	size := 2
	emit := func(it sendItem) error {
		if len(batch) > 0 && (len(batch) >= batchSize || size+len(it.body)+1 > maxBytes) {
			select {
			case out <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
			batch, size = nil, 2
		}
		batch = append(batch, it)
		size += len(it.body) + 1
		return nil
	}
	var err error
	if format == "csv" {
		err = readCSV(r, identity, emit, refuse)
	} else {
		err = readNDJSON(r, identity, emit, refuse)
	}
	if err != nil {
		return err
	}
	if len(batch) > 0 {
		select {
		case out <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func readNDJSON(r io.Reader, identity string, emit func(sendItem) error, refuse func(int, string)) error {
	br := bufio.NewReaderSize(r, 1<<20)
	for line := 1; ; line++ {
		raw, err := br.ReadBytes('\n')
		if len(raw) > 0 {
			if line == 1 {
				raw = bytes.TrimPrefix(raw, []byte("\xEF\xBB\xBF"))
			}
			b := bytes.TrimSpace(raw)
			if len(b) > 0 {
				it, reason := ndjsonItem(identity, line, b)
				if reason != "" {
					refuse(line, reason)
				} else if err := emit(it); err != nil {
					return err
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// ndjsonItem makes the event of one line, adding an id when it has none.
func ndjsonItem(identity string, line int, b []byte) (sendItem, string) {
	if !utf8.Valid(b) {
		return sendItem{}, "not valid UTF-8"
	}
	var probe struct {
		ID json.RawMessage `json:"id"`
	}
	if b[0] != '{' || json.Unmarshal(b, &probe) != nil {
		return sendItem{}, "not a JSON object"
	}
	it := sendItem{line: line}
	if len(probe.ID) > 0 && string(probe.ID) != "null" {
		json.Unmarshal(probe.ID, &it.id)
		it.body = append([]byte(nil), b...)
		return it, ""
	}
	it.id = eventID(identity, line, b)
	inner := bytes.TrimSpace(b[1 : len(b)-1])
	body := make([]byte, 0, len(b)+len(it.id)+10)
	body = append(body, b[:len(b)-1]...)
	if len(inner) > 0 {
		body = append(body, ',')
	}
	body = append(body, `"id":"`...)
	body = append(body, it.id...)
	body = append(body, `"}`...)
	it.body = body
	return it, ""
}

var csvColumns = map[string]bool{"eventType": true, "customerId": true, "value": true, "id": true, "timestamp": true, "metadata": true}

func readCSV(r io.Reader, identity string, emit func(sendItem) error, refuse func(int, string)) error {
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<20))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("CSV header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\xEF\xBB\xBF"))
		if !csvColumns[h] {
			return fmt.Errorf("CSV header: unknown column %q; allowed: eventType, customerId, value, id, timestamp, metadata", h)
		}
		if _, dup := col[h]; dup {
			return fmt.Errorf("CSV header: column %q appears twice", h)
		}
		col[h] = i
	}
	for _, need := range []string{"eventType", "customerId", "value"} {
		if _, ok := col[need]; !ok {
			return fmt.Errorf("CSV header: column %q is missing; the header must name eventType, customerId and value", need)
		}
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		line, _ := cr.FieldPos(0)
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			refuse(pe.StartLine, "not a CSV record: "+pe.Err.Error())
			continue
		}
		if err != nil {
			return err
		}
		if len(rec) != len(header) {
			refuse(line, fmt.Sprintf("has %d fields; the header has %d", len(rec), len(header)))
			continue
		}
		it, reason := csvItem(identity, line, rec, col)
		if reason != "" {
			refuse(line, reason)
			continue
		}
		if err := emit(it); err != nil {
			return err
		}
	}
}

// csvItem makes the event of one CSV record.
func csvItem(identity string, line int, rec []string, col map[string]int) (sendItem, string) {
	get := func(name string) (string, bool) {
		i, ok := col[name]
		if !ok {
			return "", false
		}
		return rec[i], true
	}
	for _, f := range rec {
		if !utf8.ValidString(f) {
			return sendItem{}, "not valid UTF-8"
		}
	}
	vs, _ := get("value")
	v, err := strconv.ParseFloat(strings.TrimSpace(vs), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return sendItem{}, "value must be a number"
	}
	var b bytes.Buffer
	str := func(s string) {
		q, _ := json.Marshal(s)
		b.Write(q)
	}
	et, _ := get("eventType")
	cu, _ := get("customerId")
	b.WriteString(`{"eventType":`)
	str(et)
	b.WriteString(`,"customerId":`)
	str(cu)
	b.WriteString(`,"value":`)
	b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	if ts, ok := get("timestamp"); ok && strings.TrimSpace(ts) != "" {
		b.WriteString(`,"timestamp":`)
		str(strings.TrimSpace(ts))
	}
	if m, ok := get("metadata"); ok && strings.TrimSpace(m) != "" {
		m = strings.TrimSpace(m)
		if m[0] != '{' || !json.Valid([]byte(m)) {
			return sendItem{}, "metadata must be a JSON object"
		}
		b.WriteString(`,"metadata":`)
		b.WriteString(m)
	}
	it := sendItem{line: line}
	if id, ok := get("id"); ok && id != "" {
		it.id = id
	} else {
		it.id = eventID(identity, line, []byte(strings.Join(rec, "\x1f")))
	}
	b.WriteString(`,"id":`)
	str(it.id)
	b.WriteByte('}')
	it.body = b.Bytes()
	return it, ""
}

// sender sends batches and keeps the summary.
type sender struct {
	c      *odohttp.Client
	o      sendOptions
	stderr io.Writer
	prog   *progress

	mu  sync.Mutex
	sum sendSummary
	err error
}

func (s *sender) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// refuse records a line that will not be stored, and says so at once.
func (s *sender) refuse(line int, reason string) {
	s.mu.Lock()
	s.sum.Events++
	s.sum.Refused++
	s.sum.Reasons[reason]++
	shown := len(s.sum.Refusals) < maxRefusalsShown
	if shown {
		s.sum.Refusals = append(s.sum.Refusals, refusal{line, reason})
	}
	n := s.sum.Refused
	s.mu.Unlock()
	s.prog.add(1)
	switch {
	case shown:
		s.prog.printf("line %d: refused: %s\n", line, reason)
	case n == maxRefusalsShown+1:
		s.prog.printf("more lines refused; the summary counts them by reason\n")
	}
}

func (s *sender) stored(res odohttp.BatchResult) {
	s.mu.Lock()
	s.sum.Events += res.Count
	s.sum.Stored += res.Count - res.Duplicates
	s.sum.Duplicates += res.Duplicates
	s.mu.Unlock()
	s.prog.add(res.Count)
}

// send sends one batch until it is stored, retrying what may succeed
// later, dropping the refused events, and splitting it when the server
// refuses it whole without saying which event is at fault. Only an error
// that stops the whole run is returned.
func (s *sender) send(ctx context.Context, items []sendItem) error {
	for try := 1; len(items) > 0; {
		body := make([]byte, 0, 2+len(items)*160)
		body = append(body, '[')
		for i, it := range items {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, it.body...)
		}
		body = append(body, ']')
		res, err := s.c.SendBatch(ctx, body)
		if err == nil {
			s.stored(res)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ae *odohttp.APIError
		if !errors.As(err, &ae) || ae.Temporary() {
			if try >= s.o.retries {
				return fmt.Errorf("gave up after %d tries: %w", try, err)
			}
			wait := min(retryBase<<min(try-1, 10), 15*time.Second)
			wait += time.Duration(rand.Float64() * float64(wait) / 5)
			if ae != nil && ae.RetryAfter > wait {
				wait = min(ae.RetryAfter, time.Minute)
			}
			s.prog.printf("lines %d to %d: %v; trying again in %s\n", items[0].line, items[len(items)-1].line, err, wait.Round(time.Millisecond))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			try++
			continue
		}
		switch ae.Status {
		case 400, 409, 413, 422:
		default:
			// Not about the events: a wrong key, a wrong URL.
			return explain(err)
		}
		switch ae.Status {
		case 422:
			if len(ae.ValidationErrors) > 0 {
				bad := map[int]bool{}
				for _, v := range ae.ValidationErrors {
					if v.Index >= 0 && v.Index < len(items) && !bad[v.Index] {
						bad[v.Index] = true
						s.refuse(items[v.Index].line, strings.Join(v.Errors, "; "))
					}
				}
				if len(bad) > 0 {
					items = without(items, bad)
					continue
				}
			}
		case 409:
			// The message names the id: drop that event and go on.
			if i := conflicting(items, ae.Message); i >= 0 {
				s.refuse(items[i].line, ae.Message)
				items = without(items, map[int]bool{i: true})
				continue
			}
		}
		// Refused whole, no event named: halve until the culprit is alone.
		if len(items) == 1 {
			s.refuse(items[0].line, ae.Message)
			return nil
		}
		half := len(items) / 2
		if err := s.send(ctx, items[:half]); err != nil {
			return err
		}
		items = items[half:]
	}
	return nil
}

func without(items []sendItem, drop map[int]bool) []sendItem {
	out := make([]sendItem, 0, len(items)-len(drop))
	for i, it := range items {
		if !drop[i] {
			out = append(out, it)
		}
	}
	return out
}

// conflicting returns the index of the event whose id a 409 message
// quotes, or -1.
// The last event with the id is the one in conflict: with an earlier one
// of the batch, or with the one stored.
func conflicting(items []sendItem, msg string) int {
	for i := len(items) - 1; i >= 0; i-- {
		if id := items[i].id; id != "" && strings.Contains(msg, strconv.Quote(id)) {
			return i
		}
	}
	return -1
}

func printSummary(w io.Writer, format string, sum *sendSummary) {
	if format == outputJSON {
		b, _ := json.MarshalIndent(sum, "", "  ")
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	rate := 0.0
	if sum.Seconds > 0 {
		rate = float64(sum.Events) / sum.Seconds
	}
	state := "Sent"
	if sum.Interrupted {
		state = "Interrupted"
	} else if sum.Error != "" {
		state = "Stopped"
	}
	fmt.Fprintf(w, "%s %s: %d events in %.2fs (%.0f events/s)\n", state, sum.Source, sum.Events, sum.Seconds, rate)
	fmt.Fprintf(w, "  stored:     %d\n", sum.Stored)
	fmt.Fprintf(w, "  duplicates: %d (stored before: not counted again)\n", sum.Duplicates)
	fmt.Fprintf(w, "  refused:    %d\n", sum.Refused)
	reasons := make([]string, 0, len(sum.Reasons))
	for r := range sum.Reasons {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if sum.Reasons[reasons[i]] != sum.Reasons[reasons[j]] {
			return sum.Reasons[reasons[i]] > sum.Reasons[reasons[j]]
		}
		return reasons[i] < reasons[j]
	})
	for _, r := range reasons {
		fmt.Fprintf(w, "    %6d  %s\n", sum.Reasons[r], r)
	}
}

// progress shows how far a send is: a bar redrawn in place on a terminal,
// a line now and then elsewhere.
type progress struct {
	w        io.Writer
	terminal bool
	total    int
	every    time.Duration
	start    time.Time

	mu   sync.Mutex
	done int
	stop chan struct{}
	wg   sync.WaitGroup
}

func (p *progress) begin() {
	interval := p.every
	if p.terminal {
		interval = 200 * time.Millisecond
	}
	if interval <= 0 {
		return
	}
	p.stop = make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.mu.Lock()
				p.draw()
				p.mu.Unlock()
			}
		}
	}()
}

func (p *progress) end() {
	if p.stop != nil {
		close(p.stop)
		p.wg.Wait()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal {
		p.draw()
		fmt.Fprintln(p.w)
	}
}

func (p *progress) add(n int) {
	p.mu.Lock()
	p.done += n
	p.mu.Unlock()
}

// printf prints a message, on a terminal above the bar.
func (p *progress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, format, args...)
	if p.terminal {
		p.draw()
	}
}

func (p *progress) draw() {
	line := progressLine(p.done, p.total, time.Since(p.start), p.terminal)
	if p.terminal {
		fmt.Fprint(p.w, "\r\033[K"+line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// progressLine tells how far along done of total events are after
// elapsed: with a bar of 30 cells for a terminal.
func progressLine(done, total int, elapsed time.Duration, bar bool) string {
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	pct := 100.0
	if total > 0 {
		pct = min(100, 100*float64(done)/float64(total))
	}
	eta := "?"
	if rate > 0 && total >= done {
		eta = (time.Duration(float64(total-done)/rate*float64(time.Second)) + time.Second/2).Truncate(time.Second).String()
	}
	if !bar {
		return fmt.Sprintf("progress: %d/%d events (%.0f%%), %.0f events/s, ETA %s", done, total, pct, rate, eta)
	}
	const cells = 30
	full := int(pct / 100 * cells)
	return fmt.Sprintf("[%s%s] %3.0f%% %d/%d  %.0f events/s  ETA %s",
		strings.Repeat("=", full), strings.Repeat(" ", cells-full), pct, done, total, rate, eta)
}
