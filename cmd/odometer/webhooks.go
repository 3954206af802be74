package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/odometer-dev/odometer"
)

func newWebhooksCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "webhooks",
		Short:   "Webhook tools",
		Example: `  odometer webhooks secret`,
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "secret",
		Short: "Print a fresh webhook signing secret (whsec_...)",
		Long: `Print a fresh signing secret for a webhook of systemconfig.json: whsec_ and
the base64 of 32 random bytes, the form Standard Webhooks libraries expect.`,
		Example: `  odometer webhooks secret`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), odometer.NewWebhookSecret())
			return err
		},
	})
	return cmd
}
