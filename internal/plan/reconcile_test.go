package plan

import (
	"reflect"
	"slices"
	"testing"

	"github.com/usersync/usersync/internal/vocab"
)

// Issue 9: a write whose outcome is unknown (Input.Reconcile) keeps its user within reach.
// Out of scope, such a user is suspended whether linked or not (a lost create may have made
// an account); an inactive linked one too (a lost reactivation). In scope, it is never
// unchanged: the provisioning step must read the target. Seats held without an account or
// a write are reservations never used: resolved when the user left, released when it fails.
func TestPlanUnknownWritesAndSeatsWithoutAccount(t *testing.T) {
	same := user("r-same", "sam", staff)
	asleep := user("r-asleep", "abe", staff)
	in := baseInput(same, user("r-fail", "fay", staff))
	in.Users[1].Email, in.Users[1].UserName = "fay@other.org", "fay@other.org" // domain not validated
	link(t, &in, same)
	link(t, &in, asleep)
	ap := in.Applied["r-asleep"]
	ap.State.Active = false
	in.Applied["r-asleep"] = ap
	in.Held = map[string]map[string]bool{"Meeting": {"r-same": true, "r-lost": true, "r-idle": true, "r-fail": true}}
	in.Reconcile = map[string]string{"r-same": "sam@example.com", "r-lost": "lou@example.com", "r-asleep": "abe@example.com"}
	in.ApproveSuspensions = true

	res := Plan(in)
	if it := itemFor(t, res, "r-same"); it.Action != Update || len(it.Changed) != 0 {
		t.Errorf("in scope with an unknown write: %+v, want an update (read the target first)", it)
	}
	lou := itemFor(t, res, "r-lost")
	if lou.Action != Suspend || lou.Desired.UserName != "lou@example.com" || lou.Desired.Active ||
		!reflect.DeepEqual(lou.ReleaseSeats, []string{"Meeting"}) {
		t.Errorf("never linked, unknown create, gone: %+v, want its suspension", lou)
	}
	if it := itemFor(t, res, "r-asleep"); it.Action != Suspend {
		t.Errorf("suspended, unknown reactivation, gone: %+v, want its suspension", it)
	}
	if !slices.Contains(res.Resolved, "r-idle") {
		t.Errorf("Resolved = %v: a reservation never used by a user gone is resolved", res.Resolved)
	}
	fay := itemFor(t, res, "r-fail")
	if fay.Action != Fail || fay.Failure.Type != vocab.DomainNotValidated || !reflect.DeepEqual(fay.ReleaseSeats, []string{"Meeting"}) {
		t.Errorf("failing with a reservation never used: %+v, want it released", fay)
	}

}
