package plan

import (
	"reflect"
	"testing"

	"github.com/usersync/usersync/internal/directory"
)

// Leaving settled users out of a plan (counting them instead) changes nothing in the result.
func TestSettledUsersCanBeLeftOutOfThePlan(t *testing.T) {
	settledA := user("a", "ann", staff)
	settledB := user("b", "bob", admins)
	renamed := user("c", "cid", staff)
	failed := user("d", "dan", staff)
	wrongSeats := user("e", "eve", admins)
	fresh := user("f", "fay", staff)
	leaver := user("g", "gus", staff)
	disabled := user("h", "hal", staff)
	in := baseInput(settledA, settledB, renamed, failed, wrongSeats, fresh, disabled)
	for _, u := range []directory.User{settledA, settledB, renamed, failed, leaver, disabled} {
		link(t, &in, u)
	}
	link(t, &in, wrongSeats)
	delete(in.Held["Webinar"], "e") // bookkeeping out of step: Plan repairs it with an Update
	in.Failed["d"] = Failure{Type: TargetUnavailable}
	renamed.DisplayName = "Cid Renamed"
	in.Users[2] = renamed
	disabled.Disabled = true
	in.Users[6] = disabled

	full := Plan(in)

	s := NewSettler(in)
	lean := in
	lean.Users, lean.Applied = nil, map[string]Applied{}
	for _, u := range in.Users {
		if s.Settled(u, hashOf(in, u.ExternalID)) {
			lean.Settled++
			continue
		}
		lean.Users = append(lean.Users, u)
		if a, ok := in.Applied[u.ExternalID]; ok {
			lean.Applied[u.ExternalID] = a
		}
	}
	lean.Applied["g"] = in.Applied["g"] // linked but gone from the directory: still planned

	if lean.Settled != 2 {
		t.Fatalf("settled = %d, want 2 (ann and bob)", lean.Settled)
	}
	got := Plan(lean)
	if !reflect.DeepEqual(got, full) {
		t.Fatalf("plan without the settled users differs:\n got %+v\nwant %+v", got, full)
	}
}

func TestNothingIsSettledWithoutAnAppliedState(t *testing.T) {
	u := user("a", "ann", staff)
	if NewSettler(baseInput()).Settled(u, "") {
		t.Fatal("a user never provisioned is not settled")
	}
}

func hashOf(in Input, id string) string {
	if a, ok := in.Applied[id]; ok {
		return a.State.Hash()
	}
	return ""
}
