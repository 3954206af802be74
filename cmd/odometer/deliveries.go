package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
)

func newDeliveriesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deliveries",
		Short: "List webhook deliveries, or retry one",
		Example: `  odometer deliveries list --status failed
  odometer deliveries retry dlv_9f3c1a2b4d5e6f70`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newDeliveriesListCommand(), newDeliveriesRetryCommand())
	return cmd
}

var deliveryHeader = []string{"ID", "TYPE", "CUSTOMER", "AGGREGATION", "REVISION", "ENDPOINT", "STATUS", "ATTEMPTS", "LAST ERROR", "NEXT ATTEMPT", "DELIVERED"}

func deliveryRow(d *odometer.Delivery) []string {
	return []string{d.ID, d.Type, d.CustomerID, d.AggregationID, fmt.Sprint(d.Revision), d.Endpoint, d.Status,
		fmt.Sprint(d.Attempts), d.LastError, formatTime(d.NextAttemptAt), formatTime(d.DeliveredAt)}
}

func newDeliveriesListCommand() *cobra.Command {
	var o clientOptions
	var output, status, customer, cursor string
	var limit int
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List webhook deliveries, newest first",
		Long: `List webhook deliveries (GET /deliveries, admin): one per notification and
endpoint, with its state: pending (waiting for a try or a retry), delivered,
or failed (given up after every retry, or the endpoint answered 410 Gone).`,
		Example: `  odometer deliveries list
  odometer deliveries list --status failed --customer cust_123
  odometer deliveries list --status pending --all --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			switch status {
			case "", odometer.DeliveryPending, odometer.DeliveryDelivered, odometer.DeliveryFailed:
			default:
				return errors.New("--status must be pending, delivered or failed")
			}
			if limit < 1 || limit > 1000 {
				return errors.New("--limit must be from 1 to 1000")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			q := odohttp.DeliveryQuery{Status: status, CustomerID: customer, Limit: limit}
			p := newPrinter(cmd.OutOrStdout(), output, deliveryHeader)
			return printPages(cmd, p, "deliveries", all, cursor, func(cursor string) ([]*odometer.Delivery, string, error) {
				q.Cursor = cursor
				return c.Deliveries(cmd.Context(), q)
			}, func(d **odometer.Delivery) []string { return deliveryRow(*d) })
		},
	}
	addClientFlags(cmd, &o)
	addOutputFlag(cmd, &output)
	fl := cmd.Flags()
	fl.StringVar(&status, "status", "", "only deliveries in this state: pending, delivered or failed")
	fl.StringVar(&customer, "customer", "", "only this customer's deliveries")
	fl.IntVar(&limit, "limit", 100, "deliveries per page (1 to 1000)")
	fl.BoolVar(&all, "all", false, "follow the cursors: every delivery that matches")
	fl.StringVar(&cursor, "cursor", "", "start at this cursor (printed by an earlier page)")
	cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions([]string{"pending", "delivered", "failed"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func newDeliveriesRetryCommand() *cobra.Command {
	var o clientOptions
	var output string
	cmd := &cobra.Command{
		Use:     "retry ID",
		Short:   "Try a delivery again now (and enable its endpoint again after a 410)",
		Example: `  odometer deliveries retry dlv_9f3c1a2b4d5e6f70`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			d, err := c.RetryDelivery(cmd.Context(), args[0])
			if err != nil {
				return explain(err)
			}
			return printOne(cmd.OutOrStdout(), output, deliveryHeader, deliveryRow(d), d)
		},
	}
	addClientFlags(cmd, &o)
	addOutputFlag(cmd, &output)
	return cmd
}
