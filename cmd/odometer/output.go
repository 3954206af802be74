package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/odometer-dev/odometer"
)

// Output formats of the commands that print records.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputCSV   = "csv"
)

// addOutputFlag adds --output (-o).
func addOutputFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "output", "o", outputTable, "output format: table, json or csv")
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputJSON, outputCSV}, cobra.ShellCompDirectiveNoFileComp))
}

func checkOutput(format string) error {
	switch format {
	case outputTable, outputJSON, outputCSV:
		return nil
	}
	return fmt.Errorf("--output must be table, json or csv, not %q", format)
}

// printer writes records as they come: a table (aligned when done), a JSON
// array of the records themselves, or CSV with a header row.
type printer struct {
	format string
	w      io.Writer
	header []string

	tw    *tabwriter.Writer
	cw    *csv.Writer
	count int
}

func newPrinter(w io.Writer, format string, header []string) *printer {
	p := &printer{format: format, w: w, header: header}
	switch format {
	case outputTable:
		p.tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(p.tw, strings.Join(header, "\t"))
	case outputCSV:
		p.cw = csv.NewWriter(w)
		p.cw.Write(header)
	}
	return p
}

// add prints one record: row in a table or CSV, record in JSON.
func (p *printer) add(row []string, record any) error {
	defer func() { p.count++ }()
	switch p.format {
	case outputTable:
		clean := make([]string, len(row))
		for i, c := range row {
			clean[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(c)
		}
		_, err := fmt.Fprintln(p.tw, strings.Join(clean, "\t"))
		return err
	case outputCSV:
		return p.cw.Write(row)
	}
	b, err := marshalIndent(record, "  ", "  ")
	if err != nil {
		return err
	}
	sep := ",\n  "
	if p.count == 0 {
		sep = "[\n  "
	}
	_, err = fmt.Fprintf(p.w, "%s%s", sep, b)
	return err
}

// close ends the output.
func (p *printer) close() error {
	switch p.format {
	case outputTable:
		return p.tw.Flush()
	case outputCSV:
		p.cw.Flush()
		return p.cw.Error()
	}
	if p.count == 0 {
		_, err := fmt.Fprintln(p.w, "[]")
		return err
	}
	_, err := fmt.Fprintln(p.w, "\n]")
	return err
}

// printPages prints the records of the pages fetch returns, from cursor
// on: every page when all is set, else the first, with the cursor of the
// next on stderr.
func printPages[T any](cmd *cobra.Command, p *printer, noun string, all bool, cursor string,
	fetch func(cursor string) ([]T, string, error), row func(*T) []string) error {
	for {
		page, next, err := fetch(cursor)
		if err != nil {
			p.close()
			return explain(err)
		}
		for i := range page {
			p.add(row(&page[i]), &page[i])
		}
		if next == "" {
			break
		}
		if !all {
			fmt.Fprintf(cmd.ErrOrStderr(), "More %s: --cursor %s (or --all for every one)\n", noun, next)
			break
		}
		cursor = next
	}
	return p.close()
}

// printOne prints a single record: as the fields of a one-row table or
// CSV, or as a JSON object.
func printOne(w io.Writer, format string, header, row []string, record any) error {
	if format == outputJSON {
		b, err := marshalIndent(record, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	p := newPrinter(w, format, header)
	p.add(row, record)
	return p.close()
}

// num formats a number as the API shows it.
func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// marshalIndent writes v as the API writes it (odometer.Marshal: no HTML
// escaping, instants as toISOString writes them), indented.
func marshalIndent(v any, prefix, indent string) ([]byte, error) {
	b, err := odometer.Marshal(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, prefix, indent); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
