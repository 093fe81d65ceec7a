package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync/internal/store"
)

// migrateCmd applies the schema's migrations. The worker and the other commands open a
// current schema with a role that may not change it; this one runs as the owner.
func migrateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database schema up to date (run as the schema's owner role)",
		Long: `migrate applies the pending migrations of the database schema, then exits. Run it with
DATABASE_URL naming the owner role (usersync_owner, created by internal/store/roles.sql) before
starting a new version of the worker: the worker's and the CLI's roles may not change the schema.`,
		Example: `  DATABASE_URL=postgres://usersync_owner@db.example.com/usersync?sslmode=verify-full starter migrate`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.DatabaseURL == "" {
				return fmt.Errorf("--database-url: not set (set it or env DATABASE_URL)")
			}
			if err := store.Migrate(cmd.Context(), a.DatabaseURL); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "schema up to date")
			return nil
		},
	}
}
