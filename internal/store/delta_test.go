package store_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/vocab"
)

// A delta run's leaver pass reads, of the users its snapshot does not hold, the linked
// accounts its changes touched and every user known otherwise (a failure, an open write,
// seats), never the untouched linked accounts it skips; a full run's reads them all. The
// untouched active accounts are what the run counts in scope without reading them.
func TestAbsentOfADeltaRunLeavesOutOnlyTheUntouchedLinkedAccounts(t *testing.T) {
	st, ctx := openStore(t)
	link := func(id string, active bool) {
		require.NoError(t, st.SaveProvisioned(ctx, org, "scim-"+id,
			plan.Desired{ExternalID: id, UserName: id + "@acme.test", Active: active}, "run-0", vocab.Created))
	}
	link("ann", true)  // touched, in the snapshot
	link("bob", true)  // touched, gone from the directory
	link("cid", true)  // untouched
	link("dee", false) // untouched, suspended
	require.NoError(t, st.RecordFailure(ctx, org, "run-0", "eve", "eve@acme.test",
		vocab.Failure{Type: vocab.DomainNotValidated, Message: "domain"}))
	require.NoError(t, st.OpenIntent(ctx, org, "fay", "fay@acme.test", "run-0", string(plan.Create)))
	require.NoError(t, st.SetLicense(ctx, org, "test", "Meeting", 5))
	_, _, err := st.ReserveSeats(ctx, org, "gus", []string{"Meeting"})
	require.NoError(t, err)
	require.NoError(t, st.RecordFailure(ctx, org, "run-0", "cid", "cid@acme.test",
		vocab.Failure{Type: vocab.TargetRejected, Message: "no"})) // linked and failed: still untouched

	absent := func(runID string, delta bool) (ids []string, touched map[string]bool) {
		touched = map[string]bool{}
		p := st.Planning(org, runID)
		p.Delta = delta
		require.NoError(t, p.Absent(ctx, func(k plan.Known) error {
			ids = append(ids, k.ExternalID)
			touched[k.ExternalID] = k.Touched
			return nil
		}))
		return ids, touched
	}
	full := beginRun(t, ctx, st, "full", vocab.KindManual, false)
	require.NoError(t, st.WriteSnapshot(ctx, "full", full, []directory.User{{ExternalID: "ann", UserName: "ann@acme.test"}}))
	ids, _ := absent("full", false)
	require.Equal(t, []string{"bob", "cid", "dee", "eve", "fay", "gus"}, ids)

	delta := beginRun(t, ctx, st, "delta", vocab.KindManual, false)
	require.NoError(t, st.WriteSnapshot(ctx, "delta", delta, []directory.User{{ExternalID: "ann", UserName: "ann@acme.test"}}))
	require.NoError(t, st.MarkDelta(ctx, "delta", delta, []string{"ann", "bob", "eve"}))
	ids, touched := absent("delta", true)
	require.Equal(t, []string{"bob", "eve", "fay", "gus"}, ids)
	require.Equal(t, map[string]bool{"bob": true, "eve": true, "fay": false, "gus": false}, touched)
	n, err := st.Planning(org, "delta").Untouched(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "cid: active, linked, untouched")
}
