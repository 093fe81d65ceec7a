package main

import (
	"encoding/csv"
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

// The values of --output: table is the human form, json and csv are for programs.
const (
	outTable = "table"
	outJSON  = "json"
	outCSV   = "csv"
)

// rowsAnnotation marks the commands that print rows, the only ones --output csv accepts:
// the others print a document (a summary, an organization) that has no columns.
const rowsAnnotation = "usersync/rows"

// listing marks c as printing rows.
func listing(c *cobra.Command) *cobra.Command {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[rowsAnnotation] = "yes"
	return c
}

// resolveOutput checks --output (and the deprecated --json) before the command does anything.
func (a *app) resolveOutput(cmd *cobra.Command) error {
	switch a.output {
	case outTable, outJSON, outCSV:
	default:
		return fmt.Errorf("--output %q: unknown format (valid: table, json, csv)", a.output)
	}
	if a.jsonFlag {
		if cmd.Flags().Changed("output") && a.output != outJSON {
			return fmt.Errorf("--json and --output %s: pick one (--json is --output json)", a.output)
		}
		a.output = outJSON
	}
	a.json = a.output == outJSON
	if a.output == outCSV && cmd.Annotations[rowsAnnotation] == "" {
		return fmt.Errorf("--output csv: `%s` prints no rows (use --output table or json)", cmd.CommandPath())
	}
	return nil
}

// emit prints v as JSON with --output json, else calls text.
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

// column is one column of a listing: declared once, it names the table's and the CSV's
// column and gives a row's value.
type column[T any] struct {
	name string
	val  func(T) string
}

// rowSet is what a listing command prints.
type rowSet[T any] struct {
	rows []T
	cols []column[T]
	doc  any    // what --output json prints (nil: the rows)
	none string // table: printed instead of an empty table
	// text, when set, is the table form (a listing that is more than its table, status);
	// the CSV still has the columns above.
	text func(w io.Writer)
}

// emitRows prints a listing as --output asks.
func emitRows[T any](a *app, cmd *cobra.Command, r rowSet[T]) error {
	w := cmd.OutOrStdout()
	switch {
	case a.output == outCSV:
		return writeCSV(w, r.cols, r.rows)
	case a.json:
		doc := r.doc
		if doc == nil {
			if r.rows == nil {
				r.rows = []T{} // [] rather than null
			}
			doc = r.rows
		}
		return a.emit(cmd, doc, nil)
	case r.text != nil:
		r.text(w)
	case len(r.rows) == 0 && r.none != "":
		fmt.Fprintln(w, r.none)
	default:
		writeTable(w, "", r.cols, r.rows)
	}
	return nil
}

// writeTable writes aligned columns, each line after indent; values escaped (printable).
func writeTable[T any](w io.Writer, indent string, cols []column[T], rows []T) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := make([]string, len(cols))
	for i, c := range cols {
		line[i] = c.name
	}
	fmt.Fprintln(tw, indent+strings.Join(line, "\t"))
	for _, r := range rows {
		for i, c := range cols {
			line[i] = orDash(printable(c.val(r)))
		}
		fmt.Fprintln(tw, indent+strings.Join(line, "\t"))
	}
	tw.Flush()
}

// writeCSV writes a header (the column names in snake case) and one record per row.
func writeCSV[T any](w io.Writer, cols []column[T], rows []T) error {
	cw := csv.NewWriter(w)
	rec := make([]string, len(cols))
	for i, c := range cols {
		rec[i] = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(c.name), " ", "_"))
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	for _, r := range rows {
		for i, c := range cols {
			rec[i] = csvSafe(c.val(r))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe neutralises a stored value for spreadsheets: encoding/csv quotes commas, quotes
// and newlines, but a cell starting with = + - @ is run as a formula by spreadsheet apps
// (CSV injection), and control characters would reach whoever views the file in a
// terminal. Control characters are escaped as in tables; a formula lead gets a ' before it,
// which spreadsheets take as "text".
func csvSafe(s string) string {
	if strings.IndexFunc(s, notShown) >= 0 { // quotes stay: encoding/csv quotes them
		var b strings.Builder
		for _, r := range s {
			if notShown(r) {
				q := strconv.QuoteRuneToGraphic(r)
				b.WriteString(q[1 : len(q)-1])
			} else {
				b.WriteRune(r)
			}
		}
		s = b.String()
	}
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		return "'" + s
	}
	return s
}

// table writes aligned columns; call Flush when done. For documents (key: value); listings
// declare columns and use writeTable.
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
	if strings.IndexFunc(s, notShown) < 0 {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

// notShown is what a terminal would act on rather than show (controls, bidi overrides).
func notShown(r rune) bool { return r != ' ' && !unicode.IsGraphic(r) }

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
	carried := ""
	if d.Unchanged != nil {
		fmt.Fprintf(w, "  %s\n", d.Unchanged.Note())
		carried = " (carried over from run " + d.Unchanged.Since + ")"
	}
	if d.Delta != nil {
		fmt.Fprintf(w, "  delta run: %d users touched by the directory's changes since run %s; only they were read and planned\n",
			d.Delta.Touched, d.Delta.Since)
		carried = " (in scope and disabled: among the touched users)"
	}
	fmt.Fprintf(w, "  directory: %d users, %d in scope, %d disabled, %d groups%s\n", d.Users, d.InScope, d.Disabled, d.Groups, carried)
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

// runColumns are the columns of the recorded runs (status).
var runColumns = []column[store.Run]{
	{"RUN", func(r store.Run) string { return r.RunID }},
	{"KIND", func(r store.Run) string {
		if r.DryRun {
			return r.Kind + " (dry)"
		}
		return r.Kind
	}},
	{"STATUS", func(r store.Run) string { return r.Status }},
	{"STARTED", func(r store.Run) string { return timeStr(r.StartedAt) }},
	{"FINISHED", func(r store.Run) string {
		if r.FinishedAt == nil {
			return ""
		}
		return timeStr(*r.FinishedAt)
	}},
	{"OUTCOMES", func(r store.Run) string {
		var s steps.RunSummary
		if len(r.Summary) == 0 || json.Unmarshal(r.Summary, &s) != nil {
			return ""
		}
		if s.DryRun || r.DryRun {
			return fmt.Sprintf("dry run: %d creates, %d updates, %d suspends, %d fails", s.Plan.Creates, s.Plan.Updates, s.Plan.Suspends, s.Plan.Fails)
		}
		return counts(s.Outcomes)
	}},
}

// printRuns lists recorded runs with their outcome counts.
func printRuns(w io.Writer, runs []store.Run) {
	if len(runs) == 0 {
		fmt.Fprintln(w, "No runs recorded.")
		return
	}
	writeTable(w, "", runColumns, runs)
}
