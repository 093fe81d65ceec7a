package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

const (
	orgPassword = "Bind-Pa55-a1f9e3"
	orgToken    = "scim-token-77c0d4b2"
)

func orgRepo(t *testing.T) (orgs.Repo, *store.Store, context.Context, string) {
	t.Helper()
	st, ctx, url := openStoreURL(t)
	path := filepath.Join(t.TempDir(), "keys")
	_, err := orgs.AddKey(path)
	require.NoError(t, err)
	keys, err := orgs.LoadKeyring(path)
	require.NoError(t, err)
	return orgs.Repo{Store: st, Keys: keys}, st, ctx, url
}

func acmeOrg() orgs.Org {
	return orgs.Org{Name: "acme", Settings: orgs.Settings{
		Directory: orgs.Directory{URL: "ldaps://dc.acme.test:636", BindDN: "cn=svc,dc=acme,dc=test", BaseDN: "dc=acme,dc=test",
			Profile: "ad", PageSize: 500},
		Target:                  orgs.Target{URL: "https://scim.acme.test/v2", Rate: 5},
		SuspendThresholdPercent: 10, SuspendThresholdMax: 500,
	}, Secrets: orgs.Secrets{BindPassword: orgPassword, Token: orgToken}}
}

func settingEvents(t *testing.T, st *store.Store, ctx context.Context, org string) []vocab.Event {
	t.Helper()
	es, err := st.History(ctx, org, store.HistoryFilter{Type: vocab.EventSetting})
	require.NoError(t, err)
	return es
}

// Issue #10: each put is a new version with one history row naming what changed; the same
// settings again (the worker's environment at every start) change nothing; a delete leaves
// nothing to read, and a re-created organization continues the version count.
func TestOrgSettingsAreVersionedAndRecorded(t *testing.T) {
	repo, st, ctx, _ := orgRepo(t)
	_, err := repo.Get(ctx, "acme")
	require.ErrorIs(t, err, orgs.ErrNotFound)
	_, err = repo.Version(ctx, "acme")
	require.ErrorIs(t, err, orgs.ErrNotFound)

	o := acmeOrg()
	v, err := repo.Put(ctx, "alice", o)
	require.NoError(t, err)
	require.EqualValues(t, 1, v)
	got, err := repo.Get(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, o.Settings, got.Settings)
	require.Equal(t, o.Secrets, got.Secrets, "secrets open to what was put")
	require.EqualValues(t, 1, got.Version)

	v, err = repo.Put(ctx, "worker", o)
	require.NoError(t, err)
	require.EqualValues(t, 1, v, "the same settings and secrets: no new version")
	require.Len(t, settingEvents(t, st, ctx, "acme"), 1, "no history row for a put that changed nothing")

	o.Settings.Target.Rate = 0
	o.Secrets.Token = orgToken + "-2"
	v, err = repo.Put(ctx, "bob", o)
	require.NoError(t, err)
	require.EqualValues(t, 2, v)
	n, err := repo.Version(ctx, "acme")
	require.NoError(t, err)
	require.EqualValues(t, 2, n)

	es := settingEvents(t, st, ctx, "acme")
	require.Len(t, es, 2)
	require.Equal(t, "bob", es[0].Actor)
	require.Equal(t, "organization settings changed", es[0].Action)
	require.EqualValues(t, 2, es[0].Details["version"])
	require.ElementsMatch(t, []any{"target.rate", orgs.FieldToken}, es[0].Details["changed"])
	require.Equal(t, "organization settings created", es[1].Action)

	// Another organization is not touched by acme's changes.
	globex := acmeOrg()
	globex.Name = "globex"
	globex.Settings.Directory.Profile, globex.Secrets.BindPassword = "openldap", "globex-pw"
	_, err = repo.Put(ctx, "alice", globex)
	require.NoError(t, err)
	list, err := repo.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "acme", list[0].Name)
	require.Equal(t, orgs.Secrets{}, list[0].Secrets, "List carries no secrets")

	require.NoError(t, repo.Delete(ctx, "carol", "acme"))
	_, err = repo.Get(ctx, "acme")
	require.ErrorIs(t, err, orgs.ErrNotFound)
	require.EqualError(t, err, "organization acme has no settings")
	_, err = repo.Version(ctx, "acme")
	require.ErrorIs(t, err, orgs.ErrNotFound)
	require.ErrorIs(t, repo.Delete(ctx, "carol", "acme"), orgs.ErrNotFound)
	var secrets int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM org_secrets WHERE org='acme'`).Scan(&secrets))
	require.Zero(t, secrets, "the deleted organization's secrets are gone")
	require.Equal(t, "organization settings deleted", settingEvents(t, st, ctx, "acme")[0].Action)
	g, err := repo.Get(ctx, "globex")
	require.NoError(t, err)
	require.Equal(t, "globex-pw", g.Secrets.BindPassword)

	v, err = repo.Put(ctx, "alice", acmeOrg())
	require.NoError(t, err)
	require.EqualValues(t, 3, v, "a re-created organization never reuses a version a worker may have cached")
}

// Nothing half-applied: a rejected put writes neither a version nor a history row.
func TestRejectedOrgSettingsWriteNothing(t *testing.T) {
	repo, st, ctx, _ := orgRepo(t)
	o := acmeOrg()
	o.Settings.Target.URL = "ftp://x"
	_, err := repo.Put(ctx, "alice", o)
	require.ErrorContains(t, err, `target.url: "ftp://x" is not an https:// URL`)
	o = acmeOrg()
	o.Secrets.BindPassword = ""
	_, err = repo.Put(ctx, "alice", o)
	require.ErrorContains(t, err, `directory.bindPassword: not set`)

	// A put based on a version that is no longer current is refused as a whole.
	_, err = repo.Put(ctx, "alice", acmeOrg())
	require.NoError(t, err)
	_, err = st.PutOrgRecord(ctx, orgs.Record{Org: "acme", Settings: acmeOrg().Settings}, 0,
		vocab.Event{Org: "acme", Actor: "mallory", Type: vocab.EventSetting, Action: "x"})
	require.ErrorIs(t, err, orgs.ErrConflict)
	// A history row that cannot be written takes the new version down with it.
	_, err = st.PutOrgRecord(ctx, orgs.Record{Org: "acme", Settings: acmeOrg().Settings}, 1,
		vocab.Event{Org: "acme", Actor: "alice", Type: vocab.EventSetting, Action: "x", Details: map[string]any{"bad": make(chan int)}})
	require.ErrorContains(t, err, "history details")
	require.Len(t, settingEvents(t, st, ctx, "acme"), 1)
	got, err := repo.Get(ctx, "acme")
	require.NoError(t, err)
	require.EqualValues(t, 1, got.Version)
	require.Equal(t, orgToken, got.Secrets.Token)
}

// Two first puts at once (two workers starting): each gets its own version.
func TestConcurrentPutsGetDistinctVersions(t *testing.T) {
	repo, _, ctx, _ := orgRepo(t)
	var wg sync.WaitGroup
	versions := make([]int64, 4)
	errs := make([]error, 4)
	for i := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := acmeOrg()
			o.Settings.SuspendThresholdMax = i + 1
			versions[i], errs[i] = repo.Put(ctx, "worker", o)
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i, v := range versions {
		require.NoError(t, errs[i])
		require.False(t, seen[v], "version %d given twice: %v", v, versions)
		seen[v] = true
	}
}

// Issue #10: a database dump alone reveals no secret.
func TestDatabaseDumpRevealsNoSecret(t *testing.T) {
	repo, st, ctx, url := orgRepo(t)
	o := acmeOrg()
	_, err := repo.Put(ctx, "alice", o)
	require.NoError(t, err)
	o.Secrets.Token += "-rotated"
	_, err = repo.Put(ctx, "alice", o)
	require.NoError(t, err)

	dump := pgDump(t, url)
	require.Contains(t, dump, "scim.acme.test", "the dump holds the organization's settings")
	require.Contains(t, dump, "organization settings changed", "the dump holds the history")
	// Also every column of the tables as text, the way a SELECT * would show them.
	rows, err := st.Pool().Query(ctx, `SELECT t::text FROM org_settings t UNION ALL SELECT t::text FROM org_secrets t
		UNION ALL SELECT t::text FROM history t`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		dump += "\n" + s
	}
	require.NoError(t, rows.Err())
	for _, secret := range []string{orgPassword, orgToken, o.Secrets.Token} {
		require.NotContains(t, dump, secret)
		require.NotContains(t, strings.ToLower(dump), strings.ToLower(hexOf(secret)), "hex-encoded")
	}
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(s))
	for _, b := range []byte(s) {
		out = append(out, digits[b>>4], digits[b&15])
	}
	return string(out)
}

func pgDump(t *testing.T, url string) string {
	t.Helper()
	bin, err := exec.LookPath("pg_dump")
	if err != nil {
		devstacktest.SkipUnlessRequired(t, "pg_dump not installed: %v", err)
	}
	out, err := exec.Command(bin, "--dbname", url).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("pg_dump: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("pg_dump: %v", err)
	}
	return string(out)
}

// The organization's name is the additional data of its secrets: a ciphertext copied into
// another organization's row does not open there.
func TestSecretCopiedToAnotherOrganizationDoesNotOpen(t *testing.T) {
	repo, st, ctx, _ := orgRepo(t)
	_, err := repo.Put(ctx, "alice", acmeOrg())
	require.NoError(t, err)
	globex := acmeOrg()
	globex.Name, globex.Secrets.Token = "globex", "globex-token"
	_, err = repo.Put(ctx, "alice", globex)
	require.NoError(t, err)
	_, err = st.Pool().Exec(ctx, `UPDATE org_secrets g SET ciphertext = a.ciphertext, key_id = a.key_id
		FROM org_secrets a WHERE a.org='acme' AND g.org='globex' AND a.field = g.field`)
	require.NoError(t, err)
	_, err = repo.Get(ctx, "globex")
	require.Error(t, err)
	require.ErrorContains(t, err, "globex")
	require.NotContains(t, err.Error(), orgToken)
	require.NotContains(t, err.Error(), orgPassword)
}

// Rotation: after a key is added and rotate-key ran, every secret is sealed under the new
// key and the old key can be dropped from the file.
func TestRotateKeyReSealsEverySecretUnderTheCurrentKey(t *testing.T) {
	repo, st, ctx, _ := orgRepo(t)
	_, err := repo.Put(ctx, "alice", acmeOrg())
	require.NoError(t, err)
	globex := acmeOrg()
	globex.Name = "globex"
	_, err = repo.Put(ctx, "alice", globex)
	require.NoError(t, err)
	oldKey := repo.Keys.Current()

	done, err := repo.RotateKey(ctx, "alice")
	require.NoError(t, err)
	require.Empty(t, done, "everything is already under the current key")

	newKey, err := orgs.AddKey(repo.Keys.Path())
	require.NoError(t, err)
	repo.Keys, err = orgs.LoadKeyring(repo.Keys.Path())
	require.NoError(t, err)
	done, err = repo.RotateKey(ctx, "ops")
	require.NoError(t, err)
	require.Equal(t, []string{"acme", "globex"}, done)

	var keyIDs []string
	rows, err := st.Pool().Query(ctx, `SELECT DISTINCT key_id FROM org_secrets`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		keyIDs = append(keyIDs, id)
	}
	require.Equal(t, []string{newKey}, keyIDs)
	es := settingEvents(t, st, ctx, "acme")
	require.Equal(t, "organization secrets re-encrypted", es[0].Action)
	require.Equal(t, newKey, es[0].Details["keyId"])
	v, err := repo.Version(ctx, "acme")
	require.NoError(t, err)
	require.EqualValues(t, 1, v, "re-sealing changes no setting")

	// Drop the old key: everything still opens.
	b, err := os.ReadFile(repo.Keys.Path())
	require.NoError(t, err)
	var kept []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.HasPrefix(line, oldKey+" ") {
			kept = append(kept, line)
		}
	}
	require.Len(t, kept, 1)
	require.NoError(t, os.WriteFile(repo.Keys.Path(), []byte(strings.Join(kept, "\n")+"\n"), 0o600))
	repo.Keys, err = orgs.LoadKeyring(repo.Keys.Path())
	require.NoError(t, err)
	got, err := repo.Get(ctx, "globex")
	require.NoError(t, err)
	require.Equal(t, orgToken, got.Secrets.Token)
}

// The settings are stored as JSON with the documented camelCase names.
func TestOrgSettingsJSONNames(t *testing.T) {
	repo, st, ctx, _ := orgRepo(t)
	_, err := repo.Put(ctx, "alice", acmeOrg())
	require.NoError(t, err)
	var raw []byte
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT settings FROM org_settings WHERE org='acme'`).Scan(&raw))
	var m struct {
		Directory map[string]any `json:"directory"`
		Target    map[string]any `json:"target"`
		Percent   int            `json:"suspendThresholdPercent"`
	}
	require.NoError(t, json.Unmarshal(raw, &m))
	require.Equal(t, "ldaps://dc.acme.test:636", m.Directory["url"])
	require.Equal(t, "cn=svc,dc=acme,dc=test", m.Directory["bindDN"])
	require.Equal(t, "https://scim.acme.test/v2", m.Target["url"])
	require.Equal(t, 10, m.Percent)
}
