package scim_test

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/scimsandbox"
)

func TestGroupsCreateFindAndMembers(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{}, scim.Config{})
	ctx := context.Background()
	var ids []string
	for _, name := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		u, err := e.client.CreateUser(ctx, ext, plan.Desired{ExternalID: "g-" + name, UserName: name, Active: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	if g, err := e.client.FindGroup(ctx, `Sales "EMEA"`); err != nil || g != nil {
		t.Fatalf("FindGroup before create = %+v, %v", g, err)
	}
	g, err := e.client.CreateGroup(ctx, `Sales "EMEA"`)
	if err != nil {
		t.Fatal(err)
	}
	found, err := e.client.FindGroup(ctx, `Sales "EMEA"`)
	if err != nil || found == nil || found.ID != g.ID {
		t.Fatalf("FindGroup = %+v, %v; want %s", found, err, g.ID)
	}
	again, err := e.client.CreateGroup(ctx, `Sales "EMEA"`)
	if err != nil || again.ID != g.ID {
		t.Fatalf("second CreateGroup = %+v, %v; want the existing group", again, err)
	}

	e.rec.take()
	members := func(want ...string) {
		t.Helper()
		slices.Sort(want)
		if got := e.sandbox.GroupMembers(`Sales "EMEA"`); !reflect.DeepEqual(got, want) {
			t.Fatalf("members = %v, want %v", got, want)
		}
	}
	if err := e.client.PatchGroupMembers(ctx, g.ID, ids, nil); err != nil {
		t.Fatal(err)
	}
	members(ids...)
	if err := e.client.PatchGroupMembers(ctx, g.ID, nil, ids[1:]); err != nil {
		t.Fatal(err)
	}
	members(ids[0])
	// Retrying the same change is harmless.
	if err := e.client.PatchGroupMembers(ctx, g.ID, nil, ids[1:]); err != nil {
		t.Fatal(err)
	}
	if err := e.client.PatchGroupMembers(ctx, g.ID, []string{ids[1]}, []string{ids[0]}); err != nil {
		t.Fatal(err)
	}
	members(ids[1])
	if err := e.client.PatchGroupMembers(ctx, g.ID, nil, nil); err != nil {
		t.Fatal(err)
	}

	reqs := e.rec.take()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want one PATCH per non-empty call (4)", len(reqs))
	}
	ops := opSummary(patchOps(t, reqs[3]))
	want := []string{"add members", `remove members[value eq "` + ids[0] + `"]`}
	if !reflect.DeepEqual(ops, want) {
		t.Fatalf("operations = %v, want %v", ops, want)
	}
}
