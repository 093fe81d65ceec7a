package e2e

import (
	"encoding/csv"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// progressLine is one line of `--progress lines`: time, run, what it is at.
var progressLine = regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ run (\S+): (.+)$`)

// finalCounts is the last progress line of a finished run, as its summary has it.
func finalCounts(s steps.RunSummary) string {
	done := 0
	for _, n := range s.Outcomes {
		done += n
	}
	if s.Plan.Items == 0 {
		return s.Status + ", 0 users written"
	}
	return fmt.Sprintf("%s %d/%d users (100%%), ", s.Status, done, s.Plan.Items)
}

// An admin in a CI log (no terminal) watches the first sync with `status --wait --progress
// lines` and `run --progress lines`: timestamped lines of the run's phase and counts, the
// last one with the run's final counts, then the status as before. Then exports the failures
// as CSV for a spreadsheet.
func TestProgressLinesAndCSVListingWithTheCLI(t *testing.T) {
	s := newStack(t, demo.Org())
	// A first sync that provisions for ~25 s (250 users of the first page, 20 at a time), so
	// that a line (one per phase and every 5 s) falls inside it; 40 ms once sufficed, until
	// the page steps got faster and provisioning ended within 2 s. A page whose writes are
	// local activities answers its progress query only when its task ends (every 5 s or so):
	// 1 s per request (8 s of provisioning) showed no count within a page.
	s.sandbox.SetLatency(2 * time.Second)

	s.cliOK("enable", "--interval", "1h")
	out := s.cliOK("status", "--wait", "--timeout", "3m", "--progress", "lines")
	s.sandbox.SetLatency(0)
	last := s.status().LastRun
	require.NotNil(t, last)
	require.Equal(t, vocab.RunSucceeded, last.Status)
	require.Greater(t, last.Plan.Items, 200)
	require.NotContains(t, out, "\r", "no bar without a terminal")

	lines := progressLine.FindAllStringSubmatch(out, -1)
	require.GreaterOrEqual(t, len(lines), 2, "the sync was seen running, then ended:\n%s", out)
	var phases []string
	for _, l := range lines {
		require.Equal(t, last.RunID, l[1], "every line names the run")
		require.NotContains(t, l[2], "@", "counts only, no user")
		phases = append(phases, strings.Fields(l[2])[0])
	}
	require.Contains(t, phases, "provisioning", "the users' progress was shown:\n%s", out)
	require.Regexp(t, `^provisioning \d+/\d+ users \(\d+%\), (-|\d+\.\d) users/s, ETA \S+, \d+ failed$`,
		lines[slices.Index(phases, "provisioning")][2])
	// The counts move within a page, not only when a page of users ends: the CLI adds the
	// users of the pages still running (their progress query) to the run's.
	wholePages := func(done int) bool {
		size, rest := workflows.DefaultPageSize, last.Plan.Items%workflows.DefaultPageSize
		return done%size == 0 || (rest > 0 && (done-rest) >= 0 && (done-rest)%size == 0)
	}
	withinAPage := false
	for _, l := range lines {
		var done, total int
		if _, err := fmt.Sscanf(l[2], "provisioning %d/%d users", &done, &total); err == nil && !wholePages(done) {
			withinAPage = true
		}
	}
	require.True(t, withinAPage, "no count between whole pages of %d users:\n%s", workflows.DefaultPageSize, out)
	final := lines[len(lines)-1][2]
	require.True(t, strings.HasPrefix(final, finalCounts(*last)), "final line %q, want the run's counts %q", final, finalCounts(*last))
	require.True(t, strings.HasSuffix(final, fmt.Sprintf(", %d failed", last.Outcomes[vocab.Failed])), final)
	require.Positive(t, last.Outcomes[vocab.Failed], "the demo has failures to count")
	require.Less(t, strings.Index(out, final), strings.Index(out, "User sync of acme: on"), "the status follows the progress")

	// `starter run` shows its own run's progress the same way, ending with its counts.
	out = s.cliOK("run", "--progress", "lines")
	manual := s.status().LastRun
	lines = progressLine.FindAllStringSubmatch(out, -1)
	require.NotEmpty(t, lines, out)
	require.Equal(t, manual.RunID, lines[len(lines)-1][1])
	require.True(t, strings.HasPrefix(lines[len(lines)-1][2], finalCounts(*manual)), out)
	require.Contains(t, out, "Run "+manual.RunID+" (manual): succeeded")

	// The failures as CSV read back as the store has them.
	want := s.failures(vocab.Filter{})
	require.NotEmpty(t, want)
	recs, err := csv.NewReader(strings.NewReader(s.cliOK("failures", "--output", "csv"))).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"type", "user", "product", "message", "since", "attempts"}, recs[0])
	require.Len(t, recs, len(want)+1)
	for i, f := range want {
		require.Equal(t, []string{f.Type, f.UserName, f.Product, f.Message, f.Since, fmt.Sprint(f.Attempts)}, recs[i+1])
	}
	// A command that prints no rows says so before doing anything.
	require.Contains(t, s.cliFails("disable", "--output", "csv"), "--output csv: `starter disable` prints no rows")
	require.Contains(t, s.cliOK("status"), "User sync of acme: on")
}
