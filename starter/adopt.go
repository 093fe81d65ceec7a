package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync/internal/vocab"
)

func adoptCmd(a *app) *cobra.Command {
	var noWait bool
	cmd := &cobra.Command{
		Use:   "adopt <userName or externalId>",
		Short: "Adopt the unlinked target account that has a failed user's userName",
		Long: `adopt is for a user failed with existing_account: the target already has an account with the
user's userName that usersync did not create. adopt records your approval in the history and
retries the user: the account is linked to the directory user (its externalId is set) and from
then on managed like any other, its attributes, products and roles overwritten with the desired
ones and its memberships of the user's groups added (memberships it had before in other groups
are left). Nothing is ever adopted without this command, and only an account no one is linked
to (it has no externalId) qualifies. When sync is off, the adoption happens at the next sync.`,
		Example: `  starter failures --type existing_account
  starter adopt anna.schmidt@example.com`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := strings.TrimSpace(args[0])
			if q == "" {
				return fmt.Errorf("adopt: empty userName or externalId")
			}
			ctx := cmd.Context()
			db, err := a.store(ctx)
			if err != nil {
				return err
			}
			fs, err := db.Failures(ctx, a.Org, vocab.Filter{Type: vocab.ExistingAccount, User: q})
			if err != nil {
				return err
			}
			if len(fs) == 0 {
				return fmt.Errorf("adopt %q: no current existing_account failure for this user (see starter failures --type existing_account)", q)
			}
			if len(fs) > 1 {
				return fmt.Errorf("adopt %q: %d failed users have this userName; name one by its externalId (see starter failures --type existing_account)", q, len(fs))
			}
			f := fs[0]
			if err := db.ApproveAdoption(ctx, a.Org, a.actor, f.ExternalID, f.UserName); err != nil {
				return err
			}
			st, err := a.queryStatus(ctx)
			if err != nil {
				return err
			}
			if st == nil || !st.Enabled {
				return a.emit(cmd, map[string]any{"approved": f.ExternalID, "signalled": false}, func(w io.Writer) {
					fmt.Fprintf(w, "Adoption of %s approved. User sync is off: the account is adopted at the next sync (starter enable, or starter run).\n", printable(f.UserName))
				})
			}
			if !a.json {
				fmt.Fprintf(cmd.OutOrStdout(), "Adoption of %s approved.\n", printable(f.UserName))
			}
			return a.retryNow(cmd, vocab.Filter{Type: vocab.ExistingAccount, User: f.ExternalID}, 1, noWait)
		},
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "signal the retry and return at once")
	return cmd
}
