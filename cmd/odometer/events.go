package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	odohttp "github.com/odometer-dev/odometer/http"
)

func newEventsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List or delete stored usage events",
		Example: `  odometer events list --customer cust_123 --from 2026-01-01 --all
  odometer events delete --customer cust_123 --yes`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newEventsListCommand(), newEventsDeleteCommand())
	return cmd
}

// eventFilter is the filter flags shared by events list and delete.
type eventFilter struct {
	customer, eventType, from, to string
}

func addEventFilterFlags(cmd *cobra.Command, f *eventFilter) {
	fl := cmd.Flags()
	fl.StringVar(&f.customer, "customer", "", "only this customer's events")
	fl.StringVar(&f.eventType, "type", "", "only events of this type")
	fl.StringVar(&f.from, "from", "", "only events at or after this time (2026-01-13 or 2026-01-13T10:00:00Z)")
	fl.StringVar(&f.to, "to", "", "only events at or before this time")
}

func (f eventFilter) query() (odohttp.EventQuery, error) {
	from, to, err := timeRange(f.from, f.to)
	return odohttp.EventQuery{CustomerID: f.customer, EventType: f.eventType, From: from, To: to}, err
}

var eventHeader = []string{"ID", "TYPE", "CUSTOMER", "VALUE", "TIMESTAMP", "RECEIVED", "METADATA"}

func eventRow(e *odohttp.EventRecord) []string {
	meta := string(e.Metadata)
	if meta == "{}" {
		meta = ""
	}
	return []string{e.ID, e.EventType, e.CustomerID, num(e.Value), e.Timestamp, e.ReceivedAt, meta}
}

func newEventsListCommand() *cobra.Command {
	var o clientOptions
	var f eventFilter
	var output, cursor string
	var limit int
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List stored events, newest first",
		Long: `List stored events, newest first (by arrival), with the filters of GET /events.
One page of --limit events is printed, and the cursor of the next one on standard
error; --all follows the cursors to the last event (--limit is then the page size).`,
		Example: `  odometer events list
  odometer events list --customer cust_123 --type api.calls --from 2026-01-13 --to 2026-01-14
  odometer events list --customer cust_123 --all --output csv > events.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if limit < 1 || limit > 1000 {
				return errors.New("--limit must be from 1 to 1000")
			}
			q, err := f.query()
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			q.Limit = limit
			p := newPrinter(cmd.OutOrStdout(), output, eventHeader)
			return printPages(cmd, p, "events", all, cursor, func(cursor string) ([]odohttp.EventRecord, string, error) {
				q.Cursor = cursor
				return c.Events(cmd.Context(), q)
			}, eventRow)
		},
	}
	addClientFlags(cmd, &o)
	addEventFilterFlags(cmd, &f)
	addOutputFlag(cmd, &output)
	fl := cmd.Flags()
	fl.IntVar(&limit, "limit", 100, "events per page (1 to 1000)")
	fl.BoolVar(&all, "all", false, "follow the cursors: every event that matches")
	fl.StringVar(&cursor, "cursor", "", "start at this cursor (printed by an earlier page)")
	return cmd
}

// isTerminal reports whether v, a reader or a writer, is a terminal;
// tests replace it.
var isTerminal = func(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newEventsDeleteCommand() *cobra.Command {
	var o clientOptions
	var f eventFilter
	var yes, all bool
	var output string
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete the events a filter selects, and rebuild the aggregates that held them",
		Long: `Delete the events that the filters select (DELETE /events, admin). The server
rebuilds the buckets and periods that held them before it answers; completed
periods get a new revision and an aggregation.updated webhook.

It asks for confirmation on a terminal; elsewhere, and to skip the question,
give --yes. Without any filter it refuses, unless --all says to delete every event.`,
		Example: `  odometer events delete --customer cust_123
  odometer events delete --type api.calls --from 2026-01-01 --to 2026-02-01 --yes
  odometer events delete --all --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			q, err := f.query()
			if err != nil {
				return err
			}
			filtered := f != (eventFilter{})
			if !filtered && !all {
				return errors.New("give at least one of --customer, --type, --from and --to (or --all to delete every event)")
			}
			if filtered && all {
				return errors.New("--all deletes every event: give it without filters")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			if !yes {
				if !isTerminal(cmd.InOrStdin()) {
					return errors.New("not a terminal: add --yes to confirm the deletion")
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Delete %s from %s? This cannot be undone. [y/N] ", f.describe(), c.URL)
				answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return errors.New("not deleted")
				}
			}
			res, err := c.DeleteEvents(cmd.Context(), q, all)
			if err != nil {
				return explain(err)
			}
			return printOne(cmd.OutOrStdout(), output, []string{"DELETED", "AGGREGATIONS UPDATED", "PERIODS REVISED"},
				[]string{fmt.Sprint(res.Deleted), fmt.Sprint(res.AggregationsUpdated), fmt.Sprint(res.PeriodsRevised)}, res)
		},
	}
	addClientFlags(cmd, &o)
	addEventFilterFlags(cmd, &f)
	addOutputFlag(cmd, &output)
	fl := cmd.Flags()
	fl.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&all, "all", false, "delete every event (only without filters)")
	return cmd
}

// describe says in words what the filter selects.
func (f eventFilter) describe() string {
	if f == (eventFilter{}) {
		return "EVERY event"
	}
	var parts []string
	if f.eventType != "" {
		parts = append(parts, "of type "+f.eventType)
	}
	if f.customer != "" {
		parts = append(parts, "of customer "+f.customer)
	}
	if f.from != "" {
		parts = append(parts, "from "+f.from)
	}
	if f.to != "" {
		parts = append(parts, "up to "+f.to)
	}
	return "the events " + strings.Join(parts, " ")
}
