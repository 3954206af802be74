package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/odometer-dev/odometer"
	odohttp "github.com/odometer-dev/odometer/http"
)

// keyOptions are the flags of the key commands: a server, or a store
// opened directly with --db when no server runs.
type keyOptions struct {
	clientOptions
	db string
}

func addKeyFlags(cmd *cobra.Command, o *keyOptions) {
	addClientFlags(cmd, &o.clientOptions)
	cmd.Flags().StringVar(&o.db, "db", "", "work on this database directly (as serve's --db: a SQLite path or a postgres:// URL) instead of a server")
}

// keyManager is where keys are kept: the server's API or the store.
type keyManager interface {
	create(ctx context.Context, scope odometer.Scope, customerID, name string) (string, *odometer.APIKey, error)
	list(ctx context.Context) ([]*odometer.APIKey, error)
	revoke(ctx context.Context, id string) error
	close()
}

// open opens the server's API, or the database of --db. Only a key
// created there may create the database; listing or revoking needs it to
// exist, so that a mistyped path says so.
func (o *keyOptions) open(ctx context.Context, create bool) (keyManager, error) {
	if o.db != "" {
		if path, isFile := sqlitePath(o.db); isFile && !create {
			if _, err := os.Stat(path); err != nil {
				return nil, fmt.Errorf("--db: %w", err)
			}
		}
		s, err := openStore(ctx, o.db, nil)
		if err != nil {
			return nil, err
		}
		return storeKeys{s}, nil
	}
	c, err := o.client()
	if err != nil {
		return nil, err
	}
	return apiKeys{c}, nil
}

// apiKeys manages keys through the server.
type apiKeys struct{ c *odohttp.Client }

func (a apiKeys) create(ctx context.Context, scope odometer.Scope, customerID, name string) (string, *odometer.APIKey, error) {
	secret, k, err := a.c.CreateKey(ctx, scope, customerID, name)
	return secret, k, explain(err)
}
func (a apiKeys) list(ctx context.Context) ([]*odometer.APIKey, error) {
	ks, err := a.c.Keys(ctx)
	return ks, explain(err)
}
func (a apiKeys) revoke(ctx context.Context, id string) error { return explain(a.c.RevokeKey(ctx, id)) }
func (a apiKeys) close()                                      {}

// storeKeys manages the keys of a store directly, with the checks the
// server makes.
type storeKeys struct {
	s interface {
		odometer.KeyStore
		Close() error
	}
}

func (s storeKeys) create(ctx context.Context, scope odometer.Scope, customerID, name string) (string, *odometer.APIKey, error) {
	if customerID != "" {
		if scope != odometer.ScopeRead {
			return "", nil, fmt.Errorf("only a read key can be pinned to a customer")
		}
		if err := odometer.ValidateCustomerID(customerID); err != nil {
			return "", nil, fmt.Errorf("--customer: %s", odometer.ErrorMessage(err))
		}
	}
	if len(name) > 255 {
		return "", nil, fmt.Errorf("--name must be at most 255 bytes")
	}
	secret, k := odometer.NewAPIKey(scope, customerID, name, time.Now())
	if err := s.s.CreateKey(ctx, k); err != nil {
		return "", nil, err
	}
	return secret, k, nil
}
func (s storeKeys) list(ctx context.Context) ([]*odometer.APIKey, error) { return s.s.FindKeys(ctx) }
func (s storeKeys) revoke(ctx context.Context, id string) error {
	err := s.s.RevokeKey(ctx, id, time.Now())
	if odometer.ErrorCode(err) == odometer.ENOTFOUND {
		return fmt.Errorf("no live key %s", id)
	}
	return err
}
func (s storeKeys) close() { s.s.Close() }

// sqlitePath returns the file of a --db value, and whether it names one.
func sqlitePath(db string) (string, bool) {
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		return "", false
	}
	return strings.TrimPrefix(db, "sqlite:"), true
}

func newKeysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys",
		Long: `Create, list and revoke API keys, through a server (--server, --api-key with
an admin key) or directly in its database (--db) when no server runs.`,
		Example: `  odometer keys create --scope ingest --name "web app"
  odometer keys list --db /var/lib/odometer/odometer.db
  odometer keys revoke key_3f2a9c1d0b4e5f60`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newKeysCreateCommand(), newKeysListCommand(), newKeysRevokeCommand())
	return cmd
}

func newKeysCreateCommand() *cobra.Command {
	var o keyOptions
	var scope, customer, name string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an API key and print it (shown this once)",
		Long: `Create an API key. The key is the only line printed on standard output, so
that it can be captured; what it is (id, scope, prefix) goes to standard error.
The key is shown this once: only its SHA-256 is stored.`,
		Example: `  odometer keys create --scope ingest --name "web app"
  odometer keys create --scope read --customer cust_123 --name "usage page"
  KEY=$(odometer keys create --scope admin --db odometer.db)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := odometer.ParseScope(scope)
			if err != nil {
				return fmt.Errorf("--scope must be ingest, read or admin")
			}
			m, err := o.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer m.close()
			secret, k, err := m.create(cmd.Context(), sc, customer, name)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), secret)
			pin := ""
			if k.CustomerID != "" {
				pin = ", customer " + k.CustomerID
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Created key %s (scope %s%s, prefix %s). It is shown this once; keep it safe.\n", k.ID, k.Scope, pin, k.Prefix)
			return nil
		},
	}
	addKeyFlags(cmd, &o)
	f := cmd.Flags()
	f.StringVar(&scope, "scope", "", "what the key may do: ingest, read or admin (required)")
	f.StringVar(&customer, "customer", "", "pin a read key to this customer")
	f.StringVar(&name, "name", "", "a name to tell the key apart")
	cmd.MarkFlagRequired("scope")
	cmd.RegisterFlagCompletionFunc("scope", cobra.FixedCompletions([]string{"ingest", "read", "admin"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

var keyHeader = []string{"ID", "NAME", "SCOPE", "CUSTOMER", "PREFIX", "CREATED", "LAST USED", "REVOKED"}

func keyRow(k *odometer.APIKey) []string {
	return []string{k.ID, k.Name, string(k.Scope), k.CustomerID, k.Prefix + "…", odometer.FormatTime(k.CreatedAt),
		formatTime(k.LastUsedAt), formatTime(k.RevokedAt)}
}

func newKeysListCommand() *cobra.Command {
	var o keyOptions
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the API keys (never their secret, only its first characters)",
		Example: `  odometer keys list
  odometer keys list --output json
  odometer keys list --db odometer.db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			m, err := o.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer m.close()
			keys, err := m.list(cmd.Context())
			if err != nil {
				return err
			}
			p := newPrinter(cmd.OutOrStdout(), output, keyHeader)
			for _, k := range keys {
				p.add(keyRow(k), k)
			}
			return p.close()
		},
	}
	addKeyFlags(cmd, &o)
	addOutputFlag(cmd, &output)
	return cmd
}

func newKeysRevokeCommand() *cobra.Command {
	var o keyOptions
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key: every later request with it is refused",
		Example: `  odometer keys revoke key_3f2a9c1d0b4e5f60
  odometer keys revoke key_3f2a9c1d0b4e5f60 --db odometer.db`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := o.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer m.close()
			if err := m.revoke(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		},
	}
	addKeyFlags(cmd, &o)
	return cmd
}
