package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// A resync of an unchanged directory stands on the last clean run (issues 13, 10): it reads
// the directory's changes (none) and ends, with no plan and no request to the target. A
// rule change, a domain validated or a user failure left to retry each send the next run the
// long way, which applies them.
func TestUnchangedResyncStandsStill(t *testing.T) {
	d := demo.Generate(120, 5)
	s := newStack(t, d)
	first := s.runOnce("initial")
	require.Equal(t, 120, first.Outcomes[vocab.Created])
	require.Nil(t, first.Directory.Unchanged, "the first run reads and plans")

	s.sandbox.ResetStats()
	still := s.runOnce("unchanged")
	s.requireStoodStill(still, first)
	require.Zero(t, s.sandbox.Stats().Requests, "the target received nothing")
	if os.Getenv(RecordHistoriesEnv) == "1" { // the replay test's history of a run standing still
		writeHistory(t, s, still.RunID, filepath.Join(historiesDir, "sync-run-unchanged.json"))
	}

	// A rule change: the run plans and applies it, although the directory did not change.
	webinarBefore := s.activeWith(demo.Webinar)
	_, err := s.store.EditRules(s.ctx, org, "e2e", "toggle webinar", func(rs []rules.Rule) ([]rules.Rule, error) {
		r := &rs[0]
		if i := slices.Index(r.Products, demo.Webinar); i >= 0 {
			r.Products = append(r.Products[:i:i], r.Products[i+1:]...)
		} else {
			r.Products = append(r.Products, demo.Webinar)
		}
		return rs, nil
	})
	require.NoError(t, err)
	ruled := s.runOnce("rule-changed")
	require.Nil(t, ruled.Directory.Unchanged, "a rule changed: the run plans")
	require.NotZero(t, ruled.Outcomes[vocab.Updated], "and applies the rule")
	require.NotEqual(t, webinarBefore, s.activeWith(demo.Webinar), "read back from the target: entitlements changed")
	s.sandbox.ResetStats()
	s.requireStoodStill(s.runOnce("unchanged-again"), ruled)
	require.Zero(t, s.sandbox.Stats().Requests)

	// A user failure: a user moved to a domain not validated fails, and stays to retry.
	conn, err := ldap.DialURL(s.ldapURL)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(s.ldapBindDN, ldapSecret))
	uid := "user0000001"
	newMail := uid + "@" + demo.PartnerDomain
	m := ldap.NewModifyRequest(demo.UserDN(uid), nil)
	m.Replace("mail", []string{newMail})
	require.NoError(t, conn.Modify(m))
	failed := s.runOnce("moved-domain")
	require.Equal(t, 1, failed.Failures[vocab.DomainNotValidated])
	left := s.runOnce("failure-left")
	require.Nil(t, left.Directory.Unchanged, "a user failure is left to retry: the run plans")
	require.Equal(t, 1, left.Failures[vocab.DomainNotValidated], "and plans the failed user again")

	// The domain validated: the run plans and the user gets the new address.
	require.NoError(t, s.store.SetDomain(s.ctx, org, "e2e", demo.PartnerDomain, true))
	validated := s.runOnce("domain-validated")
	require.Nil(t, validated.Directory.Unchanged, "a domain validated: the run plans")
	require.Equal(t, 1, validated.Outcomes[vocab.Updated])
	u, ok := s.sandbox.UserByUserName(newMail)
	require.True(t, ok, "read back from the target: %s renamed", newMail)
	require.True(t, u.Active)
	require.Empty(t, s.failures(vocab.Filter{}))

	s.sandbox.ResetStats()
	s.requireStoodStill(s.runOnce("clean-again"), validated)
	require.Zero(t, s.sandbox.Stats().Requests)

	// What the admin sees: `starter run` says so and shows the directory's counts as carried over.
	out := s.cliOK("run")
	require.Regexp(t, `Run usersync/acme/run/\S+ \(manual\): succeeded`, out)
	require.Contains(t, out, "directory unchanged since run "+validated.RunID+": nothing to do")
	require.Contains(t, out, fmt.Sprintf("directory: %d users, %d in scope, %d disabled, %d groups (carried over from run %s)",
		validated.Directory.Users, validated.Directory.InScope, validated.Directory.Disabled, validated.Directory.Groups, validated.RunID))
	require.Zero(t, s.sandbox.Stats().Requests)
}

// requireStoodStill checks that sum is a run that stood on basis: its summary says so and
// carries basis's counts, its history row says so, and its Temporal history has no plan,
// page or group step.
func (s *stack) requireStoodStill(sum, basis steps.RunSummary) {
	t := s.t
	t.Helper()
	require.Equal(t, vocab.RunSucceeded, sum.Status)
	u := sum.Directory.Unchanged
	require.NotNil(t, u, "the run found the directory unchanged")
	require.Equal(t, basis.RunID, u.Since)
	require.NotNil(t, sum.Directory.Read)
	require.Zero(t, sum.Directory.Read.Entries, "no LDAP entry read")
	require.Equal(t, basis.Directory.Users, sum.Directory.Users, "the directory's counts, carried over")
	require.Equal(t, basis.Directory.InScope, sum.Directory.InScope)
	require.Equal(t, basis.InScope, sum.InScope)
	require.Zero(t, sum.Plan.Items)

	events, err := s.store.History(s.ctx, org, store.HistoryFilter{Type: vocab.EventSync})
	require.NoError(t, err)
	found := false
	for _, e := range events {
		if e.Details["run"] == sum.RunID && e.Action == "sync finished" {
			found = true
			require.Equal(t, "directory unchanged since run "+basis.RunID+": nothing to do", e.Details["note"])
		}
	}
	require.True(t, found, "the run's history row")

	var activitiesRun []string
	it := s.client.GetWorkflowHistory(s.ctx, sum.RunID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			activitiesRun = append(activitiesRun, a.GetActivityType().GetName())
		}
		require.Nil(t, e.GetStartChildWorkflowExecutionInitiatedEventAttributes(), "no page")
	}
	require.Equal(t, []string{steps.SnapshotDirectory, steps.FinishRun}, activitiesRun,
		"no plan, discovery or group step in the run's history")
}
