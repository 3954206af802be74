package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	odohttp "github.com/odometer-dev/odometer/http"
)

func newCustomersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "customers",
		Short: "List, show and set customers: profiles, time zones and billing cycles",
		Long: `List, show and set customers. A customer exists once it has a profile (set
here, or with PUT /customers/{id}) or an event; its billing cycles start on
its anchor's day, in its time zone, every month (or year, or week).`,
		Example: `  odometer customers list --q acme
  odometer customers get cust_123
  odometer customers set cust_123 --name "Acme" --timezone Asia/Kolkata --anchor 2026-01-15T00:00:00+05:30`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newCustomersListCommand(), newCustomersGetCommand(), newCustomersSetCommand())
	return cmd
}

var customerHeader = []string{"ID", "NAME", "TIMEZONE", "ANCHOR", "INTERVAL", "CREATED"}

func customerRow(c *odohttp.CustomerRecord) []string {
	return []string{c.ID, c.Name, c.Timezone, c.BillingAnchor, c.BillingInterval, c.CreatedAt}
}

func newCustomersListCommand() *cobra.Command {
	var o clientOptions
	var output, cursor, q string
	var limit int
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List customers by id: profiles and customers seen only through events",
		Example: `  odometer customers list
  odometer customers list --q acme --all
  odometer customers list --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if limit < 1 || limit > 1000 {
				return errors.New("--limit must be from 1 to 1000")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			query := odohttp.CustomerQuery{Q: q, Limit: limit}
			p := newPrinter(cmd.OutOrStdout(), output, customerHeader)
			return printPages(cmd, p, "customers", all, cursor, func(cursor string) ([]odohttp.CustomerRecord, string, error) {
				query.Cursor = cursor
				return c.Customers(cmd.Context(), query)
			}, customerRow)
		},
	}
	addClientFlags(cmd, &o)
	addOutputFlag(cmd, &output)
	fl := cmd.Flags()
	fl.StringVar(&q, "q", "", "only customers whose id or name starts with this")
	fl.IntVar(&limit, "limit", 100, "customers per page (1 to 1000)")
	fl.BoolVar(&all, "all", false, "follow the cursors: every customer that matches")
	fl.StringVar(&cursor, "cursor", "", "start at this cursor (printed by an earlier page)")
	return cmd
}

var customerDetailHeader = []string{"ID", "NAME", "TIMEZONE", "ANCHOR", "INTERVAL", "FIRST EVENT", "LAST EVENT", "CYCLE", "CYCLE START", "CYCLE END", "USAGE"}

func customerDetailRow(c *odohttp.CustomerRecord) []string {
	row := []string{c.ID, c.Name, c.Timezone, c.BillingAnchor, c.BillingInterval, c.FirstEventAt, c.LastEventAt, "", "", "", ""}
	if cy := c.CurrentCycle; cy != nil {
		names := make([]string, 0, len(cy.Events))
		for n := range cy.Events {
			names = append(names, n)
		}
		sort.Strings(names)
		var usage []string
		for _, n := range names {
			usage = append(usage, fmt.Sprintf("%s=%s (%d)", n, num(cy.Events[n]), cy.EventCounts[n]))
		}
		row[7], row[8], row[9], row[10] = cy.PeriodKey+" "+cy.Timezone, cy.PeriodStart, cy.PeriodEnd, strings.Join(usage, " ")
	}
	return row
}

func newCustomersGetCommand() *cobra.Command {
	var o clientOptions
	var output string
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show a customer, its first and last events, and its current billing cycle's usage",
		Example: `  odometer customers get cust_123
  odometer customers get cust_123 --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			rec, err := c.Customer(cmd.Context(), args[0])
			if err != nil {
				return explain(err)
			}
			return printOne(cmd.OutOrStdout(), output, customerDetailHeader, customerDetailRow(rec), rec)
		},
	}
	addClientFlags(cmd, &o)
	addOutputFlag(cmd, &output)
	return cmd
}

func newCustomersSetCommand() *cobra.Command {
	var o clientOptions
	var output, name, timezone, anchor, interval, metadata string
	var replace bool
	cmd := &cobra.Command{
		Use:   "set ID",
		Short: "Create or change a customer's profile",
		Long: `Create or change a customer's profile. Only the flags given change: the others
keep the customer's current values (an empty value, such as --anchor "",
clears one). With --replace, the flags not given take their defaults.
The anchor's day, in the customer's time zone, is the day its cycles start
on: write it at local midnight with its offset to be plain.`,
		Example: `  odometer customers set cust_123 --name "Acme" --timezone Asia/Kolkata
  odometer customers set cust_123 --anchor 2026-01-15T00:00:00+05:30 --interval month
  odometer customers set cust_123 --metadata '{"plan": "pro"}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			body := map[string]any{}
			if !replace {
				cur, err := c.Customer(cmd.Context(), args[0])
				var apiErr *odohttp.APIError
				switch {
				case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
				case err != nil:
					return explain(err)
				default:
					body["name"], body["timezone"], body["billingAnchor"] = cur.Name, cur.Timezone, cur.BillingAnchor
					body["billingInterval"], body["metadata"] = cur.BillingInterval, cur.Metadata
				}
			}
			fl := cmd.Flags()
			for flag, key := range map[string]string{"name": "name", "timezone": "timezone", "anchor": "billingAnchor", "interval": "billingInterval"} {
				if fl.Changed(flag) {
					v, _ := fl.GetString(flag)
					body[key] = v
				}
			}
			if fl.Changed("metadata") {
				if !json.Valid([]byte(metadata)) || !strings.HasPrefix(strings.TrimSpace(metadata), "{") {
					return errors.New(`--metadata must be a JSON object, such as '{"plan": "pro"}'`)
				}
				body["metadata"] = json.RawMessage(metadata)
			}
			for k, v := range body {
				if v == "" {
					delete(body, k)
				}
			}
			b, _ := json.Marshal(body)
			rec, err := c.PutCustomer(cmd.Context(), args[0], b)
			if err != nil {
				return explain(err)
			}
			return printOne(cmd.OutOrStdout(), output, customerDetailHeader, customerDetailRow(rec), rec)
		},
	}
	addClientFlags(cmd, &o)
	addOutputFlag(cmd, &output)
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "the customer's name")
	f.StringVar(&timezone, "timezone", "", "an IANA time zone, such as Europe/Paris (default: the configuration's)")
	f.StringVar(&anchor, "anchor", "", "the billing anchor, RFC 3339: cycles start on its day (default: calendar months)")
	f.StringVar(&interval, "interval", "", "the billing interval: month, year or week (default month)")
	f.StringVar(&metadata, "metadata", "", "a JSON object kept with the customer")
	f.BoolVar(&replace, "replace", false, "replace the whole profile: flags not given take their defaults")
	cmd.RegisterFlagCompletionFunc("interval", cobra.FixedCompletions([]string{"month", "year", "week"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
