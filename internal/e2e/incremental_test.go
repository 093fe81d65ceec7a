package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// A resync after a few directory changes touches exactly the changed users, with one PATCH
// each carrying only what changed.
// discoveryReads are the requests of a run's discovery of the target (/ServiceProviderConfig,
// /Schemas, /ResourceTypes).
const discoveryReads = 3

func TestResyncTouchesOnlyChangedUsers(t *testing.T) {
	d := demo.Generate(400, 1)
	s := newStack(t, d)
	first := s.runOnce("initial")
	require.Equal(t, 400, first.Outcomes[vocab.Created])

	// 1% of the users get a new display name in the directory.
	conn, err := ldap.DialURL(s.ldapURL)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(s.ldapBindDN, ldapSecret))
	var changed []string
	for _, e := range d.Entries {
		if len(changed) == 4 {
			break
		}
		if attr(e, "uid") == "" {
			continue
		}
		m := ldap.NewModifyRequest(e.DN, nil)
		m.Replace("displayName", []string{"Renamed " + attr(e, "uid")})
		require.NoError(t, conn.Modify(m))
		changed = append(changed, attr(e, "mail"))
	}

	s.sandbox.ResetStats()
	second := s.runOnce("one-percent")
	require.Equal(t, 4, second.Plan.Items, "per-user work only for the changed users")
	require.Equal(t, 4, second.Outcomes[vocab.Updated])
	stats := s.sandbox.Stats()
	require.Equal(t, 4, stats.Count("PATCH", "/Users/{id}"))
	require.Equal(t, 4+discoveryReads, stats.Requests, "one request per changed user, and the run's discovery reads")
	require.Equal(t, discoveryReads, stats.Count("GET", "/ServiceProviderConfig")+stats.Count("GET", "/Schemas")+
		stats.Count("GET", "/ResourceTypes"), "the target is discovered once per run")
	for _, mail := range changed {
		u, ok := s.sandbox.UserByUserName(mail)
		require.True(t, ok)
		require.Contains(t, u.DisplayName, "Renamed ")
	}

	s.sandbox.ResetStats()
	third := s.runOnce("unchanged")
	require.Zero(t, third.Plan.Items, "an unchanged directory schedules no per-user work")
	require.Zero(t, s.sandbox.Stats().Requests, "and sends nothing to the target, not even its discovery")
	require.Zero(t, s.sandbox.Stats().Writes)
}

// The target's request budget holds across workers: two workers polling the SCIM queue
// together stay under the rate and draw no 429 from a target that enforces it.
func TestRateLimitHoldsAcrossTwoWorkers(t *testing.T) {
	const rate = 5
	d := demo.Generate(60, 2)
	s := newStack(t, d)
	s.restartWorkers(rate, 2)
	s.sandbox.SetRateLimit(rate)

	sum := s.runOnce("rate")
	require.Equal(t, vocab.RunSucceeded, sum.Status)
	require.Equal(t, 60, sum.Outcomes[vocab.Created])
	stats := s.sandbox.Stats()
	require.Zero(t, stats.Throttled, "no request over the target's rate limit (%d requests)", stats.Requests)
	require.Equal(t, 60, stats.Count("POST", "/Users"), "so no request had to be repeated")
}

func attr(e *ldap.AddRequest, name string) string {
	for _, a := range e.Attributes {
		if a.Type == name && len(a.Vals) > 0 {
			return a.Vals[0]
		}
	}
	return ""
}

// runOnce runs one manual sync directly, as `starter run` does, and returns its summary.
func (s *stack) runOnce(name string) steps.RunSummary {
	s.t.Helper()
	id := workflows.RunWorkflowID(org, fmt.Sprintf("%s-%d", name, time.Now().UnixNano()))
	run, err := s.client.ExecuteWorkflow(s.ctx, clientOptions(id), workflows.SyncRunWorkflow,
		workflows.RunInput{Org: org, RunID: id, Kind: vocab.KindManual})
	require.NoError(s.t, err)
	var sum steps.RunSummary
	require.NoError(s.t, run.Get(s.ctx, &sum))
	return sum
}

// A user disabled in the directory and one who left every ruled group are suspended, not
// deleted: the account stays, access goes, seats are freed; enabling the user again
// reactivates the same account.
func TestLeaversAreSuspendedNeverDeleted(t *testing.T) {
	d := demo.Generate(200, 3)
	s := newStack(t, d)
	require.Equal(t, 200, s.runOnce("initial").Outcomes[vocab.Created])
	seatsBefore := s.seatsUsed(demo.Meeting)

	conn, err := ldap.DialURL(s.ldapURL)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(s.ldapBindDN, ldapSecret))
	disabledDN, leaverDN := demo.UserDN("user0000001"), demo.UserDN("user0000002")
	disable := ldap.NewModifyRequest(disabledDN, nil)
	disable.Replace("employeeType", []string{"disabled"})
	require.NoError(t, conn.Modify(disable))
	leave := ldap.NewModifyRequest(groupOf(t, d, leaverDN), nil)
	leave.Delete("member", []string{leaverDN})
	require.NoError(t, conn.Modify(leave))

	sum := s.runOnce("leavers")
	require.Equal(t, 2, sum.Outcomes[vocab.Suspended])
	for _, mail := range []string{"user0000001@example.com", "user0000002@example.com"} {
		u, ok := s.sandbox.UserByUserName(mail)
		require.True(t, ok, "%s is kept in the target", mail)
		require.False(t, u.Active)
		require.Empty(t, u.Entitlements, "access removed")
	}
	require.Zero(t, s.sandbox.Stats().Count("DELETE", "/Users/{id}"))
	require.Equal(t, seatsBefore-2, s.seatsUsed(demo.Meeting), "suspension frees the seats")

	before, _ := s.sandbox.UserByUserName("user0000001@example.com")
	enable := ldap.NewModifyRequest(disabledDN, nil)
	enable.Delete("employeeType", nil)
	require.NoError(t, conn.Modify(enable))
	back := s.runOnce("back")
	require.Equal(t, 1, back.Outcomes[vocab.Updated])
	after, _ := s.sandbox.UserByUserName("user0000001@example.com")
	require.Equal(t, before.ID, after.ID, "the same account is reactivated")
	require.True(t, after.Active)
	require.Contains(t, after.Entitlements, demo.Meeting)
}

func (s *stack) seatsUsed(product string) int {
	s.t.Helper()
	ls, err := s.store.Licenses(s.ctx, org)
	require.NoError(s.t, err)
	for _, l := range ls {
		if l.Product == product {
			return l.Used
		}
	}
	return 0
}

// groupOf is the DN of the generated team that lists userDN as a member.
func groupOf(t *testing.T, d demo.Demo, userDN string) string {
	for _, e := range d.Entries {
		for _, a := range e.Attributes {
			if a.Type != "member" {
				continue
			}
			for _, v := range a.Vals {
				if v == userDN {
					return e.DN
				}
			}
		}
	}
	t.Fatalf("no group lists %s", userDN)
	return ""
}
