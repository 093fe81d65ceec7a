package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
)

// Summaries and details the Temporal UI shows for each workflow and step, so that a history
// reads without opening payloads. They name kinds, failure types, products, item numbers
// (seq) and admins (the actor), never a user: a retry filter's user is only "one user".
// They are user metadata, not part of the commands: replay does not compare them.

// runSummary is a run's one line: "retry of out_of_licenses by alice".
func runSummary(in RunInput) string {
	var what string
	switch {
	case in.DryRun:
		what = "dry run"
	case in.ApproveSuspensions:
		what = "approved suspensions"
	case in.Kind == vocab.KindRetry:
		what = "retry of " + retryScope(in.Retry)
	case in.Kind == vocab.KindScheduled:
		what = "scheduled sync"
	case in.Kind == vocab.KindManual:
		what = "sync now"
	default:
		what = in.Kind + " sync"
	}
	if in.Actor != "" {
		what += " by " + in.Actor
	}
	return what
}

// retryScope describes a retry filter: its failure type and product; a user is not named.
func retryScope(f *vocab.Filter) string {
	if f == nil || *f == (vocab.Filter{}) {
		return "all failed users"
	}
	var parts []string
	if f.Type != "" {
		parts = append(parts, f.Type)
	} else {
		parts = append(parts, "failed users")
	}
	if f.Product != "" {
		parts = append(parts, "for "+f.Product)
	}
	if f.User != "" {
		parts = append(parts, "of one user")
	}
	return strings.Join(parts, " ")
}

// runDetails is the run's static details (markdown): the organization and the fan-out.
func runDetails(in RunInput) string {
	return fmt.Sprintf("organization **%s** · kind %s · run %s", in.Org, in.Kind, in.RunID)
}

// pageSummary is a page child's one line: "page 3: users 750-999" (items From..To-1).
func pageSummary(page, from, to int) string {
	return fmt.Sprintf("page %d: users %d-%d", page, from, to-1)
}

// userStepSummary names a per-user step by the item's seq: "provision item 42 (create)".
func userStepSummary(what string, u steps.UserPlan) string {
	s := fmt.Sprintf("%s item %d", what, u.Seq)
	if u.Action != "" {
		s += " (" + u.Action + ")"
	}
	if len(u.Seats) > 0 {
		s += " seats " + strings.Join(u.Seats, ", ")
	}
	return s
}

// orgDetails is the org workflow's current details (markdown): on/off, interval, next run,
// last run, banners.
func orgDetails(st SyncState, running *Progress) string {
	var b strings.Builder
	if st.Enabled {
		fmt.Fprintf(&b, "**Sync on**, every %s", shortDuration(st.Interval))
		if st.Watch {
			b.WriteString(", and at once when the directory changes (watch)")
		}
	} else {
		b.WriteString("**Sync off**")
	}
	if running != nil {
		fmt.Fprintf(&b, "\n\nRunning: %s (%s) since %s", running.RunID, running.Phase, stamp(running.StartedAt))
	} else if st.Enabled && !st.NextAt.IsZero() {
		fmt.Fprintf(&b, "\n\nNext run: %s", stamp(st.NextAt))
	}
	if r := st.LastRun; r != nil {
		fmt.Fprintf(&b, "\n\nLast run: %s, %s %s, %s", r.RunID, r.Kind, r.Status, stamp(r.FinishedAt))
		if counts := outcomeCounts(r.Outcomes); counts != "" {
			b.WriteString(" (" + counts + ")")
		}
		users := 0
		for _, bn := range r.Banners {
			users += bn.Users
		}
		fmt.Fprintf(&b, "\n\nBanners: %d", len(r.Banners))
		if len(r.Banners) > 0 {
			var types []string
			for _, bn := range r.Banners {
				types = append(types, bn.Type)
			}
			slices.Sort(types)
			fmt.Fprintf(&b, " (%s; %d users)", strings.Join(slices.Compact(types), ", "), users)
		}
	} else {
		b.WriteString("\n\nLast run: none yet")
	}
	return b.String()
}

func outcomeCounts(m map[string]int) string {
	var parts []string
	for _, k := range []string{vocab.Created, vocab.Updated, vocab.Suspended, vocab.Adopted, vocab.Failed} {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// shortDuration writes 1h for 1h0m0s and 90m as 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
