package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// emit prints v as JSON with --json, else calls text.
func (a *app) emit(cmd *cobra.Command, v any, text func(w io.Writer)) error {
	w := cmd.OutOrStdout()
	if a.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(w)
	return nil
}

// table writes aligned columns; call Flush when done.
func table(w io.Writer, header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(header) > 0 {
		fmt.Fprintln(tw, strings.Join(header, "\t"))
	}
	return tw
}

func row(tw *tabwriter.Writer, cols ...any) {
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = orDash(printable(fmt.Sprint(c)))
	}
	fmt.Fprintln(tw, strings.Join(s, "\t"))
}

// printable escapes what must not reach a terminal as is: stored values come from directories
// and targets (a userName with escape sequences would drive the terminal; a tab, the table).
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r != ' ' && !unicode.IsGraphic(r) }) < 0 {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

// terminal escapes, in everything written through it, what printable escapes but line breaks
// and tabs: for the texts built of stored values (explain, status, a run's summary), whose
// every field would otherwise need its own printable.
type terminal struct{ w io.Writer }

func toTerminal(w io.Writer) io.Writer {
	if _, ok := w.(terminal); ok {
		return w
	}
	return terminal{w}
}

func unsafeRune(r rune) bool { return r != '\n' && r != '\t' && r != ' ' && !unicode.IsGraphic(r) }

func (t terminal) Write(p []byte) (int, error) {
	s := string(p)
	if strings.IndexFunc(s, unsafeRune) < 0 {
		return t.w.Write(p)
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeRune(r) {
			q := strconv.QuoteRuneToGraphic(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	if _, err := io.WriteString(t.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func list(vs []string) string { return strings.Join(vs, ",") }

func timeStr(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// counts prints "a 1, b 2" in key order, skipping zeros.
func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// printSummary is the human form of a run's outcome.
func printSummary(w io.Writer, s steps.RunSummary) {
	w = toTerminal(w)
	kind := s.Kind
	if s.DryRun {
		kind += ", dry run"
	}
	fmt.Fprintf(w, "Run %s (%s): %s\n", s.RunID, kind, s.Status)
	if !s.StartedAt.IsZero() {
		fmt.Fprintf(w, "  started %s", timeStr(s.StartedAt))
		if !s.FinishedAt.IsZero() {
			fmt.Fprintf(w, ", finished %s (%s)", timeStr(s.FinishedAt), s.FinishedAt.Sub(s.StartedAt).Round(time.Second))
		}
		fmt.Fprintln(w)
	}
	d := s.Directory
	fmt.Fprintf(w, "  directory: %d users, %d in scope, %d disabled, %d groups\n", d.Users, d.InScope, d.Disabled, d.Groups)
	if len(d.MissingGroups) > 0 {
		fmt.Fprintf(w, "  missing groups: %s\n", strings.Join(d.MissingGroups, "; "))
	}
	if len(d.Skipped) > 0 || d.Invalid > 0 || d.Unreadable > 0 {
		fmt.Fprintf(w, "  directory values: %d users with a bad value (invalid_user_data), %d with an unreadable disabled flag (taken as disabled), skipped without an ID: %s\n",
			d.Invalid, d.Unreadable, orDash(counts(d.Skipped)))
	}
	p := s.Plan
	held := ""
	if p.SuspensionsHeld {
		held = " (suspensions held: check the directory, then approve the set `starter failures --type suspension_held` names)"
	}
	fmt.Fprintf(w, "  planned: %d creates, %d updates, %d suspends, %d fails, %d unchanged%s\n",
		p.Creates, p.Updates, p.Suspends, p.Fails, p.Unchanged, held)
	if !s.DryRun {
		fmt.Fprintf(w, "  outcomes: %s\n", counts(s.Outcomes))
		if s.Groups.Groups > 0 || s.Groups.Added > 0 || s.Groups.Removed > 0 {
			fmt.Fprintf(w, "  groups: %d groups, %d memberships added, %d removed\n", s.Groups.Groups, s.Groups.Added, s.Groups.Removed)
		}
	}
	if !s.DryRun { // a dry run records no failure
		fmt.Fprintf(w, "  failures by type: %s\n", counts(s.Failures))
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	if s.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", s.Error)
	}
}

// printBanners is one line per failure type with what to do about it.
func printBanners(w io.Writer, bs []vocab.Banner) {
	w = toTerminal(w)
	if len(bs) == 0 {
		fmt.Fprintln(w, "No failures.")
		return
	}
	fmt.Fprintln(w, "Failures:")
	for _, b := range bs {
		what := b.Type
		if b.Product != "" {
			what += " (" + b.Product + ")"
		}
		fmt.Fprintf(w, "  %s: %d users. %s\n", what, b.Users, b.Advice)
	}
}

// printRuns lists recorded runs with their outcome counts.
func printRuns(w io.Writer, runs []store.Run) {
	if len(runs) == 0 {
		fmt.Fprintln(w, "No runs recorded.")
		return
	}
	tw := table(w, "RUN", "KIND", "STATUS", "STARTED", "FINISHED", "OUTCOMES")
	for _, r := range runs {
		var s steps.RunSummary
		outcomes := ""
		if len(r.Summary) > 0 && json.Unmarshal(r.Summary, &s) == nil {
			outcomes = counts(s.Outcomes)
			if s.DryRun || r.DryRun {
				outcomes = fmt.Sprintf("dry run: %d creates, %d updates, %d suspends, %d fails", s.Plan.Creates, s.Plan.Updates, s.Plan.Suspends, s.Plan.Fails)
			}
		}
		kind := r.Kind
		if r.DryRun {
			kind += " (dry)"
		}
		finished := ""
		if r.FinishedAt != nil {
			finished = timeStr(*r.FinishedAt)
		}
		row(tw, r.RunID, kind, r.Status, timeStr(r.StartedAt), finished, outcomes)
	}
	tw.Flush()
}
