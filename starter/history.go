package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

func historyCmd(a *app) *cobra.Command {
	var f store.HistoryFilter
	var since, until string
	cmd := listing(&cobra.Command{
		Use:   "history",
		Short: "Show the administrative activity history, newest first",
		Long: `history lists syncs, failures, retries, enable/disable, rule, setting, license, domain and
mapping changes with time, actor, action, status and details.`,
		Example: `  starter history --since 24h
  starter history --type rule --actor alice
  starter history --type failure --status failed --since 2025-01-01T00:00:00Z --until 2025-01-02T00:00:00Z --limit 200`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.Type != "" && !slices.Contains(vocab.EventTypes, f.Type) {
				return fmt.Errorf("--type %q: unknown event type (valid: %s)", f.Type, strings.Join(vocab.EventTypes, ", "))
			}
			if f.Limit < 1 {
				return fmt.Errorf("--limit %d: must be 1 or more", f.Limit)
			}
			var err error
			if since != "" {
				if f.Since, err = parseSince(since, time.Now()); err != nil {
					return err
				}
			}
			if until != "" {
				if f.Until, err = time.Parse(time.RFC3339, until); err != nil {
					return fmt.Errorf("--until %q: want an RFC 3339 time such as 2025-01-02T15:04:05Z", until)
				}
			}
			if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
				return fmt.Errorf("--since %q is not before --until %q", since, until)
			}
			ctx := cmd.Context()
			db, err := a.store(ctx)
			if err != nil {
				return err
			}
			es, err := db.History(ctx, a.Org, f)
			if err != nil {
				return err
			}
			if es == nil {
				es = []vocab.Event{}
			}
			return emitRows(a, cmd, rowSet[vocab.Event]{rows: es, cols: historyColumns, none: "No matching events."})
		},
	})
	fl := cmd.Flags()
	fl.StringVar(&f.Type, "type", "", "event type: "+strings.Join(vocab.EventTypes, ", "))
	// Shadows the global --actor: history writes nothing, so here it filters.
	fl.StringVar(&f.Actor, "actor", "", "only events of this actor")
	fl.StringVar(&f.Status, "status", "", "only events with this status (ok, failed, rejected, no-op)")
	fl.StringVar(&since, "since", "", "only events since a duration ago (24h) or an RFC 3339 time")
	fl.StringVar(&until, "until", "", "only events before an RFC 3339 time")
	fl.IntVar(&f.Limit, "limit", 50, "at most this many events")
	return cmd
}

// parseSince accepts a duration back from now ("24h", "90m") or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration such as 24h or an RFC 3339 time such as 2025-01-02T15:04:05Z", s)
}

var historyColumns = []column[vocab.Event]{
	{"TIME", func(e vocab.Event) string { return timeStr(e.At) }},
	{"ACTOR", func(e vocab.Event) string { return e.Actor }},
	{"TYPE", func(e vocab.Event) string { return e.Type }},
	{"ACTION", func(e vocab.Event) string { return e.Action }},
	{"STATUS", func(e vocab.Event) string { return e.Status }},
	{"DETAILS", func(e vocab.Event) string {
		if len(e.Details) == 0 {
			return ""
		}
		b, _ := json.Marshal(e.Details)
		return string(b)
	}},
}
