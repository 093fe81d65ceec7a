package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// The admin's first day: turn sync on, see every failure the demo produces, buy seats, retry.
func TestFirstSyncThenBuySeatsAndRetry(t *testing.T) {
	s := newStack(t, demo.Org())
	s.signal(workflows.SignalEnable, workflows.SwitchSignal{Actor: "alice"})
	first := s.waitRun("")

	require.Equal(t, vocab.RunSucceeded, first.Status, first.Error)
	banners := s.banners()
	require.Equal(t, 10, banners[vocab.DomainNotValidated], "the partner users")
	require.Equal(t, 5, banners[vocab.ExistingAccount], "the pre-existing userNames")
	require.Equal(t, 2, banners[vocab.InvalidUserData], "no mail; malformed mail")
	waiting := s.failures(vocab.Filter{Type: vocab.OutOfLicenses})
	require.NotEmpty(t, waiting, "more users are entitled to Webinar than it has seats")
	for _, f := range waiting {
		require.Equal(t, demo.Webinar, f.Product)
		require.Contains(t, f.Message, "Webinar")
	}
	require.Equal(t, 60, s.activeWith(demo.Webinar), "exactly the seats bought, never more")
	for _, f := range s.failures(vocab.Filter{}) {
		_, provisioned := s.linked()[f.UserName]
		require.False(t, provisioned, "failed user %s must not be provisioned", f.UserName)
	}
	require.Equal(t, first.Outcomes[vocab.Created], len(s.linked()))
	stats := s.sandbox.Stats()
	require.Equal(t, first.Outcomes[vocab.Created]+5, stats.Count("POST", "/Users"),
		"one POST per created user, plus the five that conflict with existing accounts")
	require.Zero(t, stats.Count("PATCH", "/Users/{id}"), "a create carries every attribute")
	for _, u := range s.linked() {
		require.True(t, u.Active)
	}
	require.Len(t, s.sandbox.GroupMembers("Engineering"), len(s.sandbox.GroupMembers("Engineering")))
	require.NotEmpty(t, s.sandbox.GroupMembers("Engineering"), "user groups are written to the target")

	// The admin buys seats and retries only the license failures.
	require.NoError(t, s.store.SetLicense(s.ctx, org, "alice", demo.Webinar, 60+len(waiting)))
	s.signal(workflows.SignalRetry, workflows.RetrySignal{Actor: "alice", Filter: vocab.Filter{Type: vocab.OutOfLicenses}})
	retry := s.waitRun(first.RunID)

	require.Equal(t, vocab.KindRetry, retry.Kind)
	require.Equal(t, len(waiting), retry.Outcomes[vocab.Created], "exactly the waiting users are provisioned")
	require.Zero(t, s.banners()[vocab.OutOfLicenses], "the banner goes")
	require.Equal(t, 10, s.banners()[vocab.DomainNotValidated], "other failures wait for their own fix")
	linked := s.linked()
	for _, f := range waiting {
		u, ok := linked[f.UserName]
		require.True(t, ok, "%s provisioned after the retry", f.UserName)
		require.Contains(t, u.Entitlements, demo.Webinar)
	}
	require.Equal(t, 60+len(waiting), s.activeWith(demo.Webinar))

	// Nothing changed in the directory: the next sync writes nothing to the target.
	s.sandbox.ResetStats()
	s.signal(workflows.SignalSyncNow, workflows.ActorSignal{Actor: "alice"})
	again := s.waitRun(retry.RunID)
	require.Equal(t, vocab.RunSucceeded, again.Status)
	require.Zero(t, again.Outcomes[vocab.Created]+again.Outcomes[vocab.Updated])
	require.Zero(t, s.sandbox.Stats().Writes, "an unchanged resync sends no SCIM write")

	history, err := s.store.History(s.ctx, org, store.HistoryFilter{Actor: "alice", Limit: 50})
	require.NoError(t, err)
	var actions []string
	for _, e := range history {
		actions = append(actions, e.Type+"/"+e.Action)
	}
	require.Contains(t, actions, "switch/enable")
	require.Contains(t, actions, "retry/retry")
	require.Contains(t, actions, "license/set")
	fails, err := s.store.History(s.ctx, org, store.HistoryFilter{Type: vocab.EventFailure, Limit: 500})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(fails), 17+len(waiting), "every failure is in the history")
}

// Disabling sync during a run stops it cleanly: what was provisioned stays, nothing new starts.
func TestDisableDuringASync(t *testing.T) {
	s := newStack(t, demo.Org())
	s.sandbox.SetLatency(150 * time.Millisecond)
	s.signal(workflows.SignalEnable, workflows.SwitchSignal{Actor: "ops"})
	require.Eventually(t, func() bool { return len(s.linked()) >= 10 }, 2*time.Minute, 100*time.Millisecond)
	s.signal(workflows.SignalDisable, workflows.SwitchSignal{Actor: "ops"})
	last := s.waitRun("")

	require.Equal(t, vocab.RunCancelled, last.Status)
	st := s.status()
	require.False(t, st.Enabled)
	provisioned := len(s.linked())
	require.Less(t, provisioned, 250, "the run stopped before provisioning everyone")
	time.Sleep(2 * time.Second)
	require.Equal(t, provisioned, len(s.linked()), "nothing is provisioned after disable")
	for _, u := range s.linked() {
		require.True(t, u.Active, "disable changes nothing already provisioned")
	}
	runs, err := s.store.Runs(s.ctx, org, 5)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.Equal(t, vocab.RunCancelled, runs[0].Status)
}

// Spec 3, example 4 end to end: reordering two rules changes the user group at the next sync.
func TestRuleReorderTakesEffectAtTheNextSync(t *testing.T) {
	s := newStack(t, demo.Org())
	s.signal(workflows.SignalEnable, workflows.SwitchSignal{Actor: "e2e"})
	first := s.waitRun("")
	require.Equal(t, vocab.RunSucceeded, first.Status)

	// Five sales people are also in Marketing; Marketing's rule is above Sales's.
	both := intersect(s.sandbox.GroupMembers("Marketing"), s.sandbox.GroupMembers("Sales"))
	require.Empty(t, both)
	inMarketing := len(s.sandbox.GroupMembers("Marketing"))

	s.moveSalesAboveMarketing()
	s.sandbox.ResetStats()
	s.signal(workflows.SignalSyncNow, workflows.ActorSignal{Actor: "e2e"})
	second := s.waitRun(first.RunID)

	require.Equal(t, 5, second.Outcomes[vocab.Updated], "only the five users in both groups change")
	// The user group is a target group, not a user attribute: two group PATCHes, no user write.
	require.Zero(t, s.sandbox.Stats().Count("PATCH", "/Users/{id}"))
	require.Equal(t, 2, s.sandbox.Stats().Count("PATCH", "/Groups/{id}"), "one PATCH per group, batched")
	require.Len(t, s.sandbox.GroupMembers("Marketing"), inMarketing-5)
	require.Len(t, intersect(s.sandbox.GroupMembers("Sales"), s.sandbox.GroupMembers("Marketing")), 0)
}

// Two syncs racing never hand out more seats than exist.
func TestRacingSyncsNeverOverAllocateSeats(t *testing.T) {
	s := newStack(t, demo.Org())
	var runs []string
	for i := range 2 {
		id := workflows.RunWorkflowID(org, "race-"+string(rune('a'+i)))
		_, err := s.client.ExecuteWorkflow(s.ctx, clientOptions(id), workflows.SyncRunWorkflow,
			workflows.RunInput{Org: org, RunID: id, Kind: vocab.KindManual})
		require.NoError(t, err)
		runs = append(runs, id)
	}
	for _, id := range runs {
		var sum steps.RunSummary
		require.NoError(t, s.client.GetWorkflow(s.ctx, id, "").Get(s.ctx, &sum))
		require.Equal(t, vocab.RunSucceeded, sum.Status)
	}
	require.Equal(t, 60, s.activeWith(demo.Webinar))
	ls, err := s.store.Licenses(s.ctx, org)
	require.NoError(t, err)
	for _, l := range ls {
		require.LessOrEqual(t, l.Used, l.Seats, l.Product)
	}
	userNames := map[string]int{}
	for _, u := range s.sandbox.Users() {
		userNames[u.UserName]++
	}
	for n, c := range userNames {
		require.Equal(t, 1, c, "%s created once", n)
	}
}

// A group deleted by hand in the target is created again, with every member, by the next
// sync that changes it; it does not fail every run on its cached ID. On our sandbox and on
// SCIMMY, read back over SCIM.
func TestGroupDeletedInTheTargetIsCreatedAgain(t *testing.T) {
	for _, kind := range []string{sandboxTarget, scimmyTarget} {
		t.Run(kind, func(t *testing.T) {
			s := newStackOn(t, demo.Org(), kind)
			s.signal(workflows.SignalEnable, workflows.SwitchSignal{Actor: "e2e"})
			first := s.waitRun("")
			require.Equal(t, vocab.RunSucceeded, first.Status)
			sales := len(s.groupMembers("Sales"))
			require.NotZero(t, sales)
			g, err := s.target.FindGroup(s.ctx, "Sales")
			require.NoError(t, err)
			require.Equal(t, http.StatusNoContent, s.scimCall(http.MethodDelete, "/Groups/"+g.ID, nil))
			require.Empty(t, s.groupMembers("Sales"))

			// The five sales people also in Marketing move to Sales (rule reorder).
			s.moveSalesAboveMarketing()
			s.signal(workflows.SignalSyncNow, workflows.ActorSignal{Actor: "e2e"})
			second := s.waitRun(first.RunID)
			require.Equal(t, vocab.RunSucceeded, second.Status, second.Error)
			require.Len(t, s.groupMembers("Sales"), sales+5, "created again with every member")
		})
	}
}

// groupMembers reads the members of the target group displayName over SCIM (none when the
// group does not exist).
func (s *stack) groupMembers(displayName string) []string {
	s.t.Helper()
	g, err := s.target.FindGroup(s.ctx, displayName)
	require.NoError(s.t, err)
	if g == nil {
		return nil
	}
	var body struct {
		Members []struct {
			Value string `json:"value"`
		} `json:"members"`
	}
	require.Equal(s.t, http.StatusOK, s.scimCall(http.MethodGet, "/Groups/"+g.ID, &body))
	var out []string
	for _, m := range body.Members {
		out = append(out, m.Value)
	}
	return out
}

// scimCall sends one request to the target with the test token and decodes a JSON answer
// into out (when not nil); it returns the status.
func (s *stack) scimCall(method, path string, out any) int {
	s.t.Helper()
	req, err := http.NewRequestWithContext(s.ctx, method, s.scimURL+path, nil)
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+scimToken)
	req.Header.Set("Accept", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		require.NoError(s.t, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}

// moveSalesAboveMarketing moves the demo's Sales rule to Marketing's priority (spec 3,
// example 4): the five sales people also in Marketing get the Sales user group.
func (s *stack) moveSalesAboveMarketing() {
	s.t.Helper()
	rs, err := s.store.Rules(s.ctx, org)
	require.NoError(s.t, err)
	var sales int64
	var marketingPriority int
	for _, r := range rs {
		switch r.GroupDN {
		case demo.GroupDN("Marketing"):
			marketingPriority = r.Priority
		case demo.GroupDN("Sales"):
			sales = r.ID
		}
	}
	_, err = s.store.EditRules(s.ctx, org, "alice", "move", func(cur []rules.Rule) ([]rules.Rule, error) {
		return rules.Move(cur, sales, marketingPriority)
	})
	require.NoError(s.t, err)
}
