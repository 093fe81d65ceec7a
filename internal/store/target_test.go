package store_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/scim"
)

const acmeURN = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"

// Spec 7: the custom-extension URN and its attribute names are per-organization settings,
// checked against the target's /Schemas; an edit that writes an attribute the target does
// not declare is refused when saved, naming the attribute.
func TestEditsAreCheckedAgainstTheTargetsSchema(t *testing.T) {
	st, ctx := openStore(t)
	const org = "acme"

	ext, err := st.TargetExtension(ctx, org)
	require.NoError(t, err)
	require.Equal(t, scim.Extension{URN: scim.DefaultCustomSchema, TemplateAttribute: "settingsTemplate"}, ext, "defaults")

	// Before any discovery, only names are checked; the first run checks the target.
	require.NoError(t, st.SetMapping(ctx, org, "alice", "l", "custom:office"))
	require.ErrorContains(t, st.SetMapping(ctx, org, "alice", "l", "custom:1st"), `custom field "1st"`)

	require.ErrorContains(t, st.SetTargetExtension(ctx, org, "alice", scim.Extension{URN: "acme extension"}), "not a schema URN")
	require.NoError(t, st.SetTargetExtension(ctx, org, "alice", scim.Extension{URN: acmeURN, TemplateAttribute: "template"}))
	ext, err = st.TargetExtension(ctx, org)
	require.NoError(t, err)
	require.Equal(t, scim.Extension{URN: acmeURN, TemplateAttribute: "template"}, ext)
	require.ErrorContains(t, st.SetMapping(ctx, org, "alice", "x", "custom:Template"), "settings template is written there")

	d := &scim.Discovery{Patch: true, Filter: true, Schemas: map[string][]string{
		acmeURN:               {"office", "template"},
		scim.EnterpriseSchema: {"department", "employeeNumber"},
	}, UserExtensions: []string{acmeURN, scim.EnterpriseSchema}}
	require.NoError(t, st.SaveTargetProfile(ctx, org, "run-1", ext, d))

	err = st.SetMapping(ctx, org, "alice", "badge", "custom:badgeColor")
	require.ErrorContains(t, err, `"badgeColor"`)
	require.ErrorContains(t, err, "run-1")
	require.ErrorContains(t, st.SetMapping(ctx, org, "alice", "cc", "enterprise:costCenter"), `"costCenter"`)
	require.NoError(t, st.SetMapping(ctx, org, "alice", "dept", "enterprise:department"))
	ms, err := st.Mappings(ctx, org)
	require.NoError(t, err)
	require.Len(t, ms, 2, "refused mappings were not saved: %v", ms)

	rule := rules.Rule{Priority: 1, GroupDN: "cn=sales,dc=acme", SettingsTemplate: "T1",
		CustomFields: map[string]string{"tier": "gold"}}
	_, err = st.EditRules(ctx, org, "alice", "add", func([]rules.Rule) ([]rules.Rule, error) { return []rules.Rule{rule}, nil })
	require.ErrorContains(t, err, `"tier"`)
	rule.CustomFields = map[string]string{"office": "Oslo"}
	_, err = st.EditRules(ctx, org, "alice", "add", func([]rules.Rule) ([]rules.Rule, error) { return []rules.Rule{rule}, nil })
	require.NoError(t, err)

	// Moving to a URN the target does not declare is refused while custom fields are in use.
	err = st.SetTargetExtension(ctx, org, "alice", scim.Extension{URN: "urn:ietf:params:scim:schemas:extension:other:2.0:User"})
	require.ErrorContains(t, err, "does not declare the custom extension")
	p, err := st.TargetProfile(ctx, org)
	require.NoError(t, err)
	require.Equal(t, acmeURN, p.Extension.URN)
	require.True(t, p.Discovery.Declares(acmeURN, "office"))

	// An older mismatch does not block unrelated edits: the run reports it.
	require.NoError(t, st.SaveTargetProfile(ctx, org, "run-2", ext, &scim.Discovery{Patch: true, Filter: true, Schemas: map[string][]string{}}))
	_, err = st.EditRules(ctx, org, "alice", "edit", func(cur []rules.Rule) ([]rules.Rule, error) {
		cur[0].Note = "sales team"
		return cur, nil
	})
	require.NoError(t, err)
}

// Under a new extension URN or template attribute the target holds none of the values: the
// applied states forget them, so the next sync writes every custom field and template again.
func TestChangingTheExtensionForgetsWhatWasWrittenUnderTheOldOne(t *testing.T) {
	st, ctx, url := openStoreURL(t)
	const org = "acme"
	d := plan.Desired{ExternalID: "u1", UserName: "ann@acme.test", Active: true, Products: []string{"Meeting"},
		SettingsTemplate: "T1", Custom: map[string]string{"office": "Oslo"}}
	plain := plan.Desired{ExternalID: "u2", UserName: "bob@acme.test", Active: true}
	require.NoError(t, st.SaveProvisioned(ctx, org, "s1", d, "", ""))
	require.NoError(t, st.SaveProvisioned(ctx, org, "s2", plain, "", ""))

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	read := func(id string) (plan.Desired, string) {
		var s plan.Desired
		var h string
		require.NoError(t, conn.QueryRow(ctx, `SELECT state, hash FROM user_state WHERE org=$1 AND external_id=$2`, org, id).Scan(&s, &h))
		return s, h
	}

	require.NoError(t, st.SetTargetExtension(ctx, org, "alice", scim.Extension{})) // unchanged: the defaults
	got, hash := read("u1")
	require.Equal(t, d.Hash(), hash)
	require.Equal(t, "Oslo", got.Custom["office"])

	require.NoError(t, st.SetTargetExtension(ctx, org, "alice", scim.Extension{URN: acmeURN}))
	got, hash = read("u1")
	require.Nil(t, got.Custom)
	require.Empty(t, got.SettingsTemplate)
	require.Equal(t, []string{"Meeting"}, got.Products, "the rest of the state stays")
	require.Equal(t, got.Hash(), hash)
	require.NotEqual(t, d.Hash(), hash, "the next plan sees a difference")
	_, hash = read("u2")
	require.Equal(t, plain.Hash(), hash, "states without extension values are untouched")
}
