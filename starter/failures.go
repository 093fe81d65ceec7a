package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

func failuresCmd(a *app) *cobra.Command {
	var f vocab.Filter
	cmd := listing(&cobra.Command{
		Use:   "failures",
		Short: "List the users behind the failure banners, grouped by type",
		Long: `failures lists every user with a current failure: userName, type, product, message, since
when and how many attempts, grouped by failure type with a count per type and what to do.
With held suspensions it shows the held set's size and digest, which approve-suspensions names.`,
		Example: `  starter failures
  starter failures --type out_of_licenses --product Webinar
  starter failures --user anna.schmidt@example.com --output json
  starter failures --output csv > failures.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFailureType(f.Type); err != nil {
				return err
			}
			ctx := cmd.Context()
			db, err := a.store(ctx)
			if err != nil {
				return err
			}
			recs, err := db.Failures(ctx, a.Org, f)
			if err != nil {
				return err
			}
			if recs == nil {
				recs = []store.FailureRecord{}
			}
			// The held set an approval names: all held suspensions, whatever the other filters.
			var held int
			var digest string
			if f.Type == vocab.SuspensionHeld || (f.Type == "" && slices.ContainsFunc(recs, func(r store.FailureRecord) bool { return r.Type == vocab.SuspensionHeld })) {
				if held, digest, err = db.HeldSet(ctx, a.Org); err != nil {
					return err
				}
			}
			return emitRows(a, cmd, rowSet[store.FailureRecord]{rows: recs, cols: failureColumns, text: func(w io.Writer) {
				printFailures(w, recs, f)
				if held > 0 {
					fmt.Fprintf(w, "Held set: %d suspensions, digest %s. After checking the directory, approve exactly this set:\n"+
						"  starter approve-suspensions --held %d --digest %s\n", held, digest, held, digest)
				}
			}})
		},
	})
	failureFilterFlags(cmd, &f)
	return cmd
}

// printFailures groups the records (already ordered by type) under a header per type.
func printFailures(w io.Writer, recs []store.FailureRecord, f vocab.Filter) {
	if len(recs) == 0 {
		fmt.Fprintf(w, "No current failures (%s).\n", describeFilter(f))
		return
	}
	for i := 0; i < len(recs); {
		j := i
		for j < len(recs) && recs[j].Type == recs[i].Type {
			j++
		}
		group := recs[i:j]
		fmt.Fprintf(w, "%s: %d users\n", printable(recs[i].Type), len(group))
		seen := map[string]bool{} // one hint per product for out_of_licenses
		for _, r := range group {
			if advice := vocab.Advice(r.Type, r.Product); advice != "" && !seen[advice] {
				seen[advice] = true
				fmt.Fprintf(w, "  what to do: %s\n", advice)
			}
		}
		writeTable(w, "  ", failureColumns[1:], group) // the type is the group's header
		i = j
	}
}

// failureColumns: the type first (the table shows it once per group).
var failureColumns = []column[store.FailureRecord]{
	{"TYPE", func(r store.FailureRecord) string { return r.Type }},
	{"USER", func(r store.FailureRecord) string { return r.UserName }},
	{"PRODUCT", func(r store.FailureRecord) string { return r.Product }},
	{"MESSAGE", func(r store.FailureRecord) string { return r.Message }},
	{"SINCE", func(r store.FailureRecord) string { return r.Since }},
	{"ATTEMPTS", func(r store.FailureRecord) string { return strconv.Itoa(r.Attempts) }},
}
