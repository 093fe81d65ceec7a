package chaos

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/workflows"
)

// The checker reads the real stack: after a clean sync it finds nothing; after violations are
// planted in the target, PostgreSQL and through the proxy, it names each one.
func TestCheckerFindsPlantedViolationsOnTheRealStack(t *testing.T) {
	t.Parallel()
	s := NewStack(t, Org(60, 1), 1, StackOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	actions := []Action{{Actor: "chaos-enable-1", Signal: workflows.SignalEnable}}
	s.Signal(workflows.SignalEnable, map[string]any{"actor": "chaos-enable-1"})
	st, err := s.WaitRun("", 3*time.Minute)
	must(t, err)
	f, err := s.Gather(ctx, actions)
	must(t, err)
	if vs := Check(f); len(vs) != 0 {
		t.Fatalf("a clean sync: want no violation, got %v", vs)
	}

	// Two linked accounts holding Meeting: one gets a twin in the target, the other is
	// suspended through the proxy and loses its Meeting seat row.
	var holders []*scim.User
	for _, a := range f.Accounts {
		if a.ExternalID != "" && a.Active && contains(a.Products, demo.Meeting) {
			holders = append(holders, a)
		}
	}
	if len(holders) < 2 {
		t.Fatalf("want two accounts holding Meeting, got %d", len(holders))
	}
	twin, victim := holders[0], holders[1]
	target := s.TargetClient()
	_, err = target.CreateUser(ctx, s.Ext, twinOf(twin))
	must(t, err)
	viaProxy := scim.New(scim.Config{BaseURL: s.ProxyURL, Token: scimToken})
	off := victim.State()
	off.Active = false
	must(t, viaProxy.UpdateUser(ctx, s.Ext, victim.ID, victim.State(), off))
	conn, err := pgx.Connect(ctx, s.DBURL)
	must(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `DELETE FROM seats WHERE org=$1 AND product=$2 AND external_id=$3`, org, demo.Meeting, victim.ExternalID)
	must(t, err)
	_, err = conn.Exec(ctx, `INSERT INTO history (org, actor, type, action, status, details)
		SELECT org, actor, type, action, status, details FROM history WHERE org=$1 AND action='sync finished'`, org)
	must(t, err)

	f, err = s.Gather(ctx, actions)
	must(t, err)
	got := Check(f)
	for _, want := range []struct{ invariant, mention string }{
		{InvNoDuplicates, "externalId " + twin.ExternalID + " has 2 accounts"},
		{InvSeatsMatch, "Meeting:"},
		{InvNoSuspension, victim.UserName},
		{InvInScopeCovered, victim.UserName},
		{InvOneHistoryRow, st.LastRun.RunID},
	} {
		found := false
		for _, v := range got {
			found = found || (v.Invariant == want.invariant && strings.Contains(v.Detail, want.mention))
		}
		if !found {
			t.Errorf("want a violation of %q naming %q; got %v", want.invariant, want.mention, got)
		}
	}
}

// twinOf is a second account for a's directory user, under another userName.
func twinOf(a *scim.User) (d plan.Desired) {
	d = a.State()
	d.UserName = "twin-" + a.UserName
	d.Email = d.UserName
	return d
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
