package store_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

func TestEditRulesKeepsPrioritiesDenseAndRecordsTheActor(t *testing.T) {
	st, ctx := openStore(t)
	added, err := st.EditRules(ctx, org, "alice", "add", func(cur []rules.Rule) ([]rules.Rule, error) {
		require.Empty(t, cur)
		return []rules.Rule{
			{ID: 0, Priority: 1, GroupDN: "cn=engineering,ou=groups", Products: []string{"Meeting"}, UserGroup: "Engineering"},
			// An ID that does not exist is no way to pick one's own ID: it gets a fresh one.
			{ID: 999, Priority: 2, GroupDN: "cn=sales,ou=groups", DeviceGroups: []string{"Phones"},
				CustomFields: map[string]string{"site": "Paris"}},
		}, nil
	})
	require.NoError(t, err)
	require.Len(t, added, 2)
	require.NotZero(t, added[0].ID)
	require.NotZero(t, added[1].ID)
	require.NotEqual(t, added[0].ID, added[1].ID)
	require.NotEqual(t, int64(999), added[1].ID, "new rules get IDs from the store only")

	saved, err := st.Rules(ctx, org)
	require.NoError(t, err)
	require.Equal(t, added, saved, "what EditRules returns is what is stored")

	// A gap (priorities 1 and 3) is refused and nothing changes.
	_, err = st.EditRules(ctx, org, "bob", "move", func(cur []rules.Rule) ([]rules.Rule, error) {
		cur[1].Priority = 3
		return cur, nil
	})
	require.Error(t, err)
	require.Contains(t, err.Error(), "priority 3")
	after, err := st.Rules(ctx, org)
	require.NoError(t, err)
	require.Equal(t, saved, after)

	// Existing rules keep their IDs through a reorder.
	moved, err := st.EditRules(ctx, org, "bob", "move", func(cur []rules.Rule) ([]rules.Rule, error) {
		return rules.Move(cur, cur[1].ID, 1)
	})
	require.NoError(t, err)
	after, err = st.Rules(ctx, org)
	require.NoError(t, err)
	require.Len(t, after, 2)
	require.Equal(t, saved[1].ID, after[0].ID, "the sales rule is now first")
	require.Equal(t, saved[0].ID, after[1].ID)
	require.Equal(t, 1, after[0].Priority)
	require.ElementsMatch(t, moved, after)

	events, err := st.History(ctx, org, store.HistoryFilter{Type: vocab.EventRule})
	require.NoError(t, err)
	require.Len(t, events, 2, "the refused edit left no event")
	require.Equal(t, "bob", events[0].Actor)
	require.Equal(t, "move", events[0].Action)
	require.Equal(t, "alice", events[1].Actor)
	require.Equal(t, "add", events[1].Action)
	require.NotEmpty(t, events[0].Details["rules"])
}

func TestEditRulesIsPerOrganization(t *testing.T) {
	st, ctx := openStore(t)
	one := func(dn string) func([]rules.Rule) ([]rules.Rule, error) {
		return func(cur []rules.Rule) ([]rules.Rule, error) {
			return append(cur, rules.Rule{Priority: len(cur) + 1, GroupDN: dn}), nil
		}
	}
	_, err := st.EditRules(ctx, org, "alice", "add", one("cn=a"))
	require.NoError(t, err)
	_, err = st.EditRules(ctx, "other", "zed", "add", one("cn=z"))
	require.NoError(t, err)
	rs, err := st.Rules(ctx, org)
	require.NoError(t, err)
	require.Len(t, rs, 1)
	require.Equal(t, "cn=a", rs[0].GroupDN)
}

// A rule keeps its group's ID; a sync that finds the group elsewhere stores its new DN (and a
// history event), unless the rule was edited meanwhile; a rule edited to name another group
// forgets the old group's ID, which would take it back there.
func TestRuleGroupsFollowTheDirectory(t *testing.T) {
	st, ctx := openStore(t)
	const id = "0e8a4c3e-7c44-4f5b-9a51-6b6f1d2c9e01"
	saved, err := st.EditRules(ctx, org, "alice", "add", func([]rules.Rule) ([]rules.Rule, error) {
		return []rules.Rule{
			{Priority: 1, GroupDN: "cn=sales,ou=groups", GroupID: id, Role: "Member"},
			{Priority: 2, GroupDN: "cn=eng,ou=groups", Role: "Member"},
			{Priority: 3, GroupDN: "cn=ops,ou=groups", Role: "Member"},
		}, nil
	})
	require.NoError(t, err)
	require.Equal(t, id, saved[0].GroupID)

	moved := directory.GroupRef{DN: "cn=sales emea,ou=regions", ID: id}
	engFound := directory.GroupRef{DN: "cn=eng,ou=groups", ID: "5b0d3f1a-0000-4000-8000-000000000002"}
	after, err := st.RefreshRuleGroups(ctx, org, []store.RuleGroupMove{
		{From: directory.GroupRef{DN: "cn=sales,ou=groups", ID: id}, To: moved},
		{From: directory.GroupRef{DN: "cn=eng,ou=groups"}, To: engFound},
		// Another spelling of the same DN: stored as the directory spells it, no event.
		{From: directory.GroupRef{DN: "cn=ops,ou=groups"}, To: directory.GroupRef{DN: "CN=Ops,OU=Groups", ID: "6"}},
		// Read before an edit that changed the rule: left as the edit made it.
		{From: directory.GroupRef{DN: "cn=gone,ou=groups"}, To: directory.GroupRef{DN: "cn=x", ID: "y"}},
	})
	require.NoError(t, err)
	require.Equal(t, moved.DN, after[0].GroupDN)
	require.Equal(t, id, after[0].GroupID)
	require.Equal(t, engFound.DN, after[1].GroupDN)
	require.Equal(t, engFound.ID, after[1].GroupID)
	require.Equal(t, "CN=Ops,OU=Groups", after[2].GroupDN)
	stored, err := st.Rules(ctx, org)
	require.NoError(t, err)
	require.Equal(t, after, stored)

	events, err := st.History(ctx, org, store.HistoryFilter{Type: vocab.EventRule})
	require.NoError(t, err)
	var movedEvents []vocab.Event
	for _, e := range events {
		if e.Action == "group moved" {
			movedEvents = append(movedEvents, e)
		}
	}
	require.Len(t, movedEvents, 1, "the DN change only; the ID found alone is no news")
	require.Equal(t, "cn=sales,ou=groups", movedEvents[0].Details["from"])
	require.Equal(t, moved.DN, movedEvents[0].Details["to"])

	// An edit naming another group drops the old group's ID; an edit of something else keeps it.
	edited, err := st.EditRules(ctx, org, "bob", "edit", func(cur []rules.Rule) ([]rules.Rule, error) {
		cur[0].GroupDN = "cn=marketing,ou=groups"
		cur[1].Role = "Admin"
		return cur, nil
	})
	require.NoError(t, err)
	require.Empty(t, edited[0].GroupID)
	require.Equal(t, engFound.ID, edited[1].GroupID)
}
