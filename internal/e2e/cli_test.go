package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// The admin's journey with the real starter binary: dry run, enable, watch, read the
// failures, buy seats and retry, reorder rules, read the history, disable.
func TestAdminJourneyWithTheCLI(t *testing.T) {
	s := newStack(t, demo.Org())

	// A dry run plans everything and writes nothing.
	out := s.cliOK("run", "--dry-run")
	creates := regexp.MustCompile(`planned: (\d+) creates`).FindStringSubmatch(out)
	require.NotNil(t, creates, out)
	n, _ := strconv.Atoi(creates[1])
	require.Greater(t, n, 200, "most of the 300 demo users would be created")
	require.Contains(t, out, "Planned changes:")
	require.Regexp(t, `(?m)^create\s+\S+@example\.com`, out, "per-user creates are listed")
	require.Regexp(t, `(?m)^fail\s+\S+@partners\.example\.net\s.*domain_not_validated`, out, "per-user failures are listed")
	require.Contains(t, out, "planned failures by type: domain_not_validated 10, invalid_user_data 2, out_of_licenses ")
	require.NotContains(t, out, "No failures.", "a dry run does not claim that nothing fails")
	require.Zero(t, s.sandbox.Stats().Writes, "a dry run sends no SCIM write")
	require.Empty(t, s.failures(vocab.Filter{}), "a dry run records no failure")

	// Turn sync on and wait for the first sync.
	out = s.cliOK("enable", "--interval", "1h")
	require.Contains(t, out, "User sync of acme is on (every 1h0m0s)")
	out = s.cliOK("status", "--wait", "--timeout", "3m")
	require.Contains(t, out, "User sync of acme: on, every 1h0m0s")
	require.Regexp(t, `Last Run usersync/acme/run/\S+ \(scheduled\): succeeded`, out)
	banners := s.banners()
	waiting := s.failures(vocab.Filter{Type: vocab.OutOfLicenses})
	require.NotEmpty(t, waiting)
	require.Contains(t, out, fmt.Sprintf("out_of_licenses (Webinar): %d users.", len(waiting)))
	for _, typ := range []string{vocab.DomainNotValidated, vocab.ExistingAccount, vocab.InvalidUserData} {
		require.Contains(t, out, fmt.Sprintf("%s: %d users.", typ, banners[typ]))
	}

	// Enabling again starts nothing and keeps the interval (the flag's default is no override).
	before := s.lastRunID()
	require.Contains(t, s.cliOK("enable"), "User sync of acme was already on (every 1h0m0s); no sync started")
	out = s.cliOK("status")
	require.Contains(t, out, "User sync of acme: on, every 1h0m0s")
	require.Equal(t, before, s.lastRunID())

	// The users waiting for a seat, as the store has them.
	out = s.cliOK("failures", "--type", "out_of_licenses")
	require.Contains(t, out, fmt.Sprintf("out_of_licenses: %d users", len(waiting)))
	for _, f := range waiting {
		require.Regexp(t, `(?m)^\s+`+regexp.QuoteMeta(f.UserName)+`\s+Webinar\s`, out)
	}
	require.NotContains(t, out, "domain_not_validated", "--type filters")

	// Buy seats and retry the license failures.
	s.cliOK("licenses", "set", "Webinar", "500")
	out = s.cliOK("retry", "--type", "out_of_licenses")
	require.Contains(t, out, fmt.Sprintf("Retrying %d failed users (type=out_of_licenses)", len(waiting)))
	require.Regexp(t, `Run usersync/acme/run/\S+ \(retry\): succeeded`, out)
	require.Contains(t, out, fmt.Sprintf("created %d", len(waiting)))
	require.Empty(t, s.failures(vocab.Filter{Type: vocab.OutOfLicenses}))
	require.Equal(t, banners[vocab.DomainNotValidated], s.banners()[vocab.DomainNotValidated], "other failures stay")

	stderr := s.cliFails("retry", "--type", "bogus")
	require.Contains(t, stderr, `--type "bogus"`)

	// Reorder: Sales above Marketing. The users in both groups change user group.
	salesID, marketingPriority := s.ruleOf("Sales").ID, s.ruleOf("Marketing").Priority
	marketing0, sales0 := s.sandbox.GroupMembers("Marketing"), s.sandbox.GroupMembers("Sales")
	out = s.cliOK("rules", "move", strconv.FormatInt(salesID, 10), "--to", strconv.Itoa(marketingPriority))
	require.Contains(t, out, fmt.Sprintf("Moved rule %d to priority %d.", salesID, marketingPriority))
	before = s.lastRunID()
	require.Contains(t, s.cliOK("sync-now"), "Sync requested: run usersync/acme/run/")
	s.cliOK("status", "--wait", "--timeout", "3m")
	require.NotEqual(t, before, s.lastRunID(), "status --wait waited for the requested sync")
	marketing1, sales1 := s.sandbox.GroupMembers("Marketing"), s.sandbox.GroupMembers("Sales")
	var moved []string
	for _, id := range marketing0 {
		if !slices.Contains(marketing1, id) {
			moved = append(moved, id)
		}
	}
	require.Len(t, moved, 5, "the five sales people in Marketing leave the Marketing user group")
	for _, id := range moved {
		require.Contains(t, sales1, id)
		require.NotContains(t, sales0, id)
	}
	require.Len(t, sales1, len(sales0)+5)

	out = s.cliOK("history", "--actor", cliActor, "--type", "switch")
	require.Regexp(t, `(?m)^\S+\s+`+cliActor+`\s+switch\s+enable\s`, out)
	require.NotContains(t, out, "license", "--type filters")
	// Each program wrote on its own database role (least privilege): the switch by the
	// workflow's worker, the seats bought by the CLI.
	events, err := s.store.History(s.ctx, org, store.HistoryFilter{})
	require.NoError(t, err)
	byRole := map[string]string{}
	for _, e := range events {
		byRole[e.Type+" "+e.Action] = e.DBRole
	}
	require.Equal(t, store.WorkerRole, byRole["switch enable"], "%v", byRole)
	require.Equal(t, store.AdminRole, byRole["license set"], "%v", byRole)

	require.Contains(t, s.cliOK("disable"), "User sync of acme is off")
	require.Contains(t, s.cliFails("sync-now"), "user sync is off")
	require.Contains(t, s.cliOK("status"), "User sync of acme: off")
}

// explainJSON is the --json form of starter explain.
type explainJSON struct {
	Query         string               `json:"query"`
	InRuledGroups bool                 `json:"inRuledGroups"`
	Known         bool                 `json:"known"`
	Explanation   *plan.Explanation    `json:"explanation"`
	Applied       *plan.Applied        `json:"applied"`
	Failure       *store.FailureRecord `json:"failure"`
}

func (s *stack) explain(user string) explainJSON {
	s.t.Helper()
	var e explainJSON
	out := s.cliOK("explain", user, "--json")
	require.NoError(s.t, json.Unmarshal([]byte(out), &e), out)
	return e
}

// Spec 10, explain: groups, matching rules, how each value was chosen, license, diff, failure.
func TestExplainOneUser(t *testing.T) {
	s := newStack(t, demo.Org())
	// A sales person who is also in Marketing, and a partner whose domain is not validated.
	both := demoMails(s.demo, intersect(demoMembers(s.demo, "Marketing"), demoMembers(s.demo, "Sales-EMEA")))
	require.Len(t, both, 5)
	seller := both[0]
	var partner string
	for _, m := range demoMails(s.demo, demoMembers(s.demo, "Sales-EMEA")) {
		if strings.HasSuffix(m, "@"+demo.PartnerDomain) {
			partner = m
			break
		}
	}
	require.NotEmpty(t, partner)
	marketing, sales := s.ruleOf("Marketing"), s.ruleOf("Sales")

	// Before any sync: the plan says create; nothing is linked or failed yet.
	out := s.cliOK("explain", strings.ToUpper(seller))
	require.Contains(t, out, "User "+seller+" (externalId ")
	require.Contains(t, out, demo.GroupDN("Marketing"))
	require.Contains(t, out, demo.GroupDN("Sales"))
	require.Regexp(t, fmt.Sprintf(`(?m)^\s+%d\s+%d\s+%s`, marketing.Priority, marketing.ID, regexp.QuoteMeta(marketing.GroupDN)), out)
	require.Regexp(t, fmt.Sprintf(`(?m)^\s+%d\s+%d\s+%s`, sales.Priority, sales.ID, regexp.QuoteMeta(sales.GroupDN)), out)
	require.Regexp(t, fmt.Sprintf(`(?m)^\s+userGroup\s+Marketing\s+rule %d \(priority %d\)`, marketing.ID, marketing.Priority), out)
	require.Regexp(t, fmt.Sprintf(`(?m)^\s+deviceGroups\s+DG-Sales\s+rule %d`, sales.ID), out, "sets are the union")
	require.Contains(t, out, "Target: not linked")
	require.Contains(t, out, "Next sync: create")
	require.Contains(t, out, "Current failure: none.")

	e := s.explain(seller)
	require.True(t, e.InRuledGroups)
	x := e.Explanation
	require.NotNil(t, x)
	require.True(t, x.InScope)
	var matched []int64
	for _, m := range x.MatchedRules {
		matched = append(matched, m.ID)
	}
	require.Equal(t, []int64{marketing.ID, sales.ID}, matched, "both rules, in priority order")
	require.Equal(t, marketing.ID, field(t, x, "userGroup").RuleID)
	require.Equal(t, "Marketing", x.Desired.UserGroup)

	out = s.cliOK("explain", partner)
	require.Contains(t, out, "Next sync: fails with domain_not_validated")

	// After a sync: the partner's failure is current; the seller is linked and up to date.
	s.cliOK("enable", "--interval", "1h")
	s.cliOK("status", "--wait", "--timeout", "3m")
	p := s.explain(partner)
	require.NotNil(t, p.Failure)
	require.Equal(t, vocab.DomainNotValidated, p.Failure.Type)
	require.Equal(t, plan.Fail, p.Explanation.Action)
	out = s.cliOK("explain", p.Failure.ExternalID) // by externalId
	require.Contains(t, out, "User "+partner)
	require.Contains(t, out, "Current failure: domain_not_validated")
	require.Contains(t, out, "starter domains validate")

	out = s.cliOK("explain", seller)
	require.Contains(t, out, "Target: linked (SCIM id ")
	require.Contains(t, out, "Next sync: nothing to do", "seats held: %v", s.seatsOf(seller))

	// Reorder the rules: explain shows the diff the next sync will send.
	s.cliOK("rules", "move", strconv.FormatInt(sales.ID, 10), "--to", strconv.Itoa(marketing.Priority))
	out = s.cliOK("explain", seller)
	require.Regexp(t, fmt.Sprintf(`(?m)^\s+userGroup\s+Sales\s+rule %d`, sales.ID), out)
	require.Contains(t, out, "Next sync: update")
	require.Regexp(t, `(?m)^\s+userGroup\s+Marketing\s+Sales\s*$`, out, "target value, then desired")

	// A Finance user who is no team lead: no rule names Finance.
	finance := demoMails(s.demo, demoMembers(s.demo, "Finance"))[1]
	out = s.cliOK("explain", finance)
	require.Contains(t, out, "not in any ruled group")
	require.False(t, s.explain(finance).Known)
}

func field(t *testing.T, x *plan.Explanation, name string) plan.FieldDecision {
	t.Helper()
	for _, f := range x.Fields {
		if f.Field == name {
			return f
		}
	}
	t.Fatalf("explanation has no field %s: %+v", name, x.Fields)
	return plan.FieldDecision{}
}

// ruleOf returns the rule naming the demo group cn=<name>.
func (s *stack) ruleOf(name string) ruleRef {
	s.t.Helper()
	rs, err := s.store.Rules(s.ctx, org)
	require.NoError(s.t, err)
	for _, r := range rs {
		if r.GroupDN == demo.GroupDN(name) {
			return ruleRef{ID: r.ID, Priority: r.Priority, GroupDN: r.GroupDN}
		}
	}
	s.t.Fatalf("no rule names group %s", name)
	return ruleRef{}
}

type ruleRef struct {
	ID       int64
	Priority int
	GroupDN  string
}

// seatsOf lists the products whose seats the linked user holds (for failure messages).
func (s *stack) seatsOf(userName string) []string {
	s.t.Helper()
	applied, err := s.store.AppliedStates(s.ctx, org)
	require.NoError(s.t, err)
	_, held, err := s.store.SeatState(s.ctx, org)
	require.NoError(s.t, err)
	var out []string
	for id, a := range applied {
		if strings.EqualFold(a.State.UserName, userName) {
			for p, holders := range held {
				if holders[id] {
					out = append(out, p)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}
