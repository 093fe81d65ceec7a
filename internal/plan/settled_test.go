package plan

import (
	"testing"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/vocab"
)

// Settled (the cheap check a streaming plan makes before decoding an applied state) picks
// exactly the users Plan finds unchanged.
func TestSettledIsExactlyWhatPlanFindsUnchanged(t *testing.T) {
	settledA := user("a", "ann", staff)
	settledB := user("b", "bob", admins)
	renamed := user("c", "cid", staff)
	failed := user("d", "dan", staff)
	wrongSeats := user("e", "eve", admins)
	fresh := user("f", "fay", staff)
	disabled := user("h", "hal", staff)
	in := baseInput(settledA, settledB, renamed, failed, wrongSeats, fresh, disabled)
	for _, u := range []directory.User{settledA, settledB, renamed, failed, disabled, wrongSeats} {
		link(t, &in, u)
	}
	delete(in.Held["Webinar"], "e") // bookkeeping out of step: Plan repairs it with an Update
	in.Failed["d"] = vocab.Failure{Type: vocab.TargetUnavailable}
	renamed.DisplayName = "Cid Renamed"
	in.Users[2] = renamed
	disabled.Disabled = true
	in.Users[6] = disabled

	res := Plan(in)
	withItem := map[string]bool{}
	for _, it := range res.Items {
		withItem[it.ExternalID] = true
	}
	p, held := NewPlanner(in), heldBy(in.Held)
	var settled []string
	for _, u := range in.Users {
		_, failed := in.Failed[u.ExternalID]
		if p.Settled(u, hashOf(in, u.ExternalID), failed, held[u.ExternalID]) {
			settled = append(settled, u.UserName)
			if withItem[u.ExternalID] {
				t.Errorf("%s is settled but Plan gives it work", u.UserName)
			}
		}
	}
	if len(settled) != 2 || settled[0] != "ann@example.com" || settled[1] != "bob@example.com" || res.Unchanged != 2 {
		t.Fatalf("settled = %v, Plan unchanged = %d; want [ann bob] and 2", settled, res.Unchanged)
	}
}

func TestNothingIsSettledWithoutAnAppliedState(t *testing.T) {
	u := user("a", "ann", staff)
	if NewPlanner(baseInput()).Settled(u, "", false, nil) {
		t.Fatal("a user never provisioned is not settled")
	}
}

func TestNothingIsSettledInARetry(t *testing.T) {
	u := user("a", "ann", staff)
	in := baseInput(u)
	link(t, &in, u)
	in.Retry = &vocab.Filter{}
	if NewPlanner(in).Settled(u, hashOf(in, "a"), false, heldBy(in.Held)["a"]) {
		t.Fatal("a retry plans only failed users: nobody is settled")
	}
}

func hashOf(in Input, id string) string {
	if a, ok := in.Applied[id]; ok {
		return a.State.Hash()
	}
	return ""
}
