package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/store"
)

// configured gives acme a configuration with every section through the ordinary commands.
func configured(t *testing.T) *cli {
	t.Helper()
	withKeyFile(t)
	c := withCatalog(t)
	setOrgSecretEnv(t)
	c.must(append([]string{"orgs", "create", "acme"}, acmeFlags...)...)
	c.must("licenses", "set", "Meeting", "300")
	c.must("licenses", "set", "Webinar", "60")
	c.must("domains", "validate", "example.com")
	c.must("domains", "unvalidate", "partners.example.net")
	c.must("mappings", "set", "departmentNumber", "enterprise:department")
	c.must("rules", "add", "--no-directory-check", "--group", "cn=Sales,ou=Groups,dc=example,dc=com", "--role", "Member",
		"--products", "Meeting,Webinar", "--custom", "office=Berlin", "--note", "sales: first")
	c.must("rules", "add", "--no-directory-check", "--group", "cn=IT,ou=Groups,dc=example,dc=com", "--role", "Admin",
		"--device-groups", "DG-IT", "--template", "Standard", "--priority", "1")
	c.must("target", "set", "--template-attribute", "profileTemplate")
	return c
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// historyRows counts the history rows since the test began (the organization's).
func historyRows(t *testing.T, c *cli) []map[string]any {
	t.Helper()
	var rows []map[string]any
	if err := json.Unmarshal([]byte(c.must("--json", "history", "--limit", "1000")), &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// Issue 12: export, then apply of the same file, changes nothing (and says so); the file
// holds every section and no secret.
func TestConfigExportThenApplyIsANoOp(t *testing.T) {
	c := configured(t)
	exported := c.must("config", "export")
	for _, want := range []string{"organization: acme", "products:", "Webinar: 60", "example.com: true",
		"partners.example.net: false", "enterprise:department: departmentNumber", "group: cn=it,ou=groups,dc=example,dc=com",
		"priority: 2", "office: Berlin", "templateAttribute: profileTemplate", "url: ldaps://dc.acme.test",
		"bindPassword: keep", "token: keep", "suspendThresholdMax: 500"} {
		if !strings.Contains(exported, want) {
			t.Errorf("export lacks %q:\n%s", want, exported)
		}
	}
	for _, secret := range []string{ldapPassword, scimToken} {
		if strings.Contains(exported, secret) {
			t.Fatalf("export shows a secret's value:\n%s", exported)
		}
	}
	before := len(historyRows(t, c))
	out := c.must("config", "apply", "-f", writeConfig(t, exported))
	if !strings.Contains(out, "No changes") {
		t.Errorf("apply of the exported file:\n%s\nwant No changes; the file:\n%s", out, exported)
	}
	if after := len(historyRows(t, c)); after != before {
		t.Errorf("apply of the exported file wrote %d history rows", after-before)
	}
	if again := c.must("config", "export"); again != exported {
		t.Errorf("export after apply differs:\n%s\nwas:\n%s", again, exported)
	}
}

// The sections come in any order: rules naming a product the same file adds to the catalog,
// licenses before the catalog. The diff names each change; the history has one row per
// change, by --actor.
func TestConfigApplyIsOrderIndependentAndRecordsEachChange(t *testing.T) {
	c := configured(t)
	before := len(historyRows(t, c))
	file := writeConfig(t, `organization: acme
rules:
  - priority: 3
    group: cn=Support,ou=Groups,dc=example,dc=com
    products: [Meeting, Phone]
  - priority: 2
    group: cn=IT,ou=Groups,dc=example,dc=com
    role: Admin
    deviceGroups: [DG-IT]
    settingsTemplate: Standard
  - priority: 1
    group: cn=Sales,ou=Groups,dc=example,dc=com
    role: Member
    products: [Meeting]
    customFields: {office: Berlin}
    note: "sales: first"
licenses:
  Phone: 25
  Meeting: 300
catalog:
  products: [Meeting, Phone, Connect]
  roles: [Member, Admin]
  templates: [Standard]
domains:
  example.com: true
`)
	dry := c.must("--actor", "alice", "config", "apply", "-f", file, "--dry-run", "--no-directory-check")
	for _, want := range []string{"catalog:", "+ product Phone", "- product Webinar", "licenses:", "+ Phone: 25 seats",
		"- Webinar (60 seats)", "domains:", "- partners.example.net", "rules:",
		"~ rule 1 cn=sales,ou=groups,dc=example,dc=com: priority 2 -> 1, products [Meeting,Webinar] -> [Meeting]",
		"+ priority 3 cn=support,ou=groups,dc=example,dc=com (products Meeting,Phone)", "Dry run"} {
		if !strings.Contains(dry, want) {
			t.Errorf("dry run does not show %q:\n%s", want, dry)
		}
	}
	if strings.Contains(dry, "mappings:") || strings.Contains(dry, "settings:") {
		t.Errorf("sections not in the file are left as they are, the dry run shows changes to them:\n%s", dry)
	}
	if n := len(historyRows(t, c)); n != before {
		t.Fatalf("dry run wrote %d history rows", n-before)
	}
	if out := c.must("licenses", "list"); !strings.Contains(out, "Webinar") {
		t.Fatalf("dry run removed a license:\n%s", out)
	}

	c.must("--actor", "alice", "config", "apply", "-f", file, "--no-directory-check")
	want := "1 cn=sales,ou=groups,dc=example,dc=com|2 cn=it,ou=groups,dc=example,dc=com|3 cn=support,ou=groups,dc=example,dc=com"
	if got := listed(t, c.must("rules", "list")); strings.Join(got, "|") != want {
		t.Errorf("rules after apply: %v, want %s", got, want)
	}
	var rs []struct {
		ID       int64    `json:"id"`
		Products []string `json:"products"`
	}
	if err := json.Unmarshal([]byte(c.must("--json", "rules", "list")), &rs); err != nil {
		t.Fatal(err)
	}
	if rs[0].ID != 1 || rs[1].ID != 2 || strings.Join(rs[2].Products, ",") != "Meeting,Phone" {
		t.Errorf("rules keep their IDs (sales 1, it 2) and the new one its products: %+v", rs)
	}
	var ls []licenseRow
	if err := json.Unmarshal([]byte(c.must("--json", "licenses", "list")), &ls); err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 || ls[0].Product != "Meeting" || ls[1].Product != "Phone" || ls[1].Seats != 25 {
		t.Errorf("licenses after apply: %+v", ls)
	}
	if out := c.must("mappings", "list"); !strings.Contains(out, "enterprise:department") {
		t.Errorf("mappings, not in the file, changed:\n%s", out)
	}
	all := historyRows(t, c)
	rows := all[:len(all)-before]
	// catalog, +Phone license, -Webinar license, -partners domain, rule 1 edited and moved, rule added
	if len(rows) != 6 {
		t.Errorf("history: %d rows, want one per change (6): %v", len(rows), rows)
	}
	for _, r := range rows {
		if r["actor"] != "alice" {
			t.Errorf("history row by %v, want alice (--actor): %v", r["actor"], r)
		}
	}
	if out := c.must("config", "apply", "-f", file); !strings.Contains(out, "No changes") {
		t.Errorf("applying the file again:\n%s", out)
	}
}

// configState is everything apply may write, read back through the store.
func configState(t *testing.T, c *cli) string {
	t.Helper()
	out := c.must("config", "export")
	st, err := store.Open(context.Background(), c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	if err := st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM history`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s\nhistory rows: %d", out, n)
}

// A file that fails validation changes nothing, also when the refusal comes from a write late
// in the transaction (the settings, after the catalog and licenses were written); errors name
// the file, the line and the field.
func TestConfigApplyThatFailsChangesNothing(t *testing.T) {
	c := configured(t)
	before := configState(t, c)
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"product not in the catalog", `catalog:
  products: [Meeting]
  roles: [Member, Admin]
  templates: [Standard]
licenses:
  Meeting: 10
rules:
  - group: cn=Sales,ou=Groups,dc=example,dc=com
    products:
      - Meeting
      - Webinar
`, []string{"config.yaml:11: rules[0].products[1]:", `"Webinar"`}},
		{"license of an unknown product", "licenses:\n  Meeting: 5\n  Phone: 3\n", []string{"config.yaml:3: licenses.Phone:", `"Phone" is not in the catalog`}},
		{"unknown field", "rules:\n  - group: cn=x,dc=y\n    products: [Meeting]\n    prodcts: [Webinar]\n", []string{"config.yaml:4: rules[0].prodcts: unknown field"}},
		{"bad domain", "domains:\n  example.com: true\n  not a domain: false\n", []string{"config.yaml:3: domains.not a domain:", `"not a domain"`}},
		{"refused by the settings, last in the transaction", `catalog:
  products: [Meeting, Webinar, Connect]
  roles: [Member, Admin]
  templates: [Standard]
licenses:
  Meeting: 1000
  Connect: 5
settings:
  directory:
    url: ldaps://dc.acme.test
    baseDN: dc=acme,dc=test
  target:
    url: ftp://scim.acme.test
`, []string{"config.yaml:13: settings.target.url:", `"ftp://scim.acme.test"`, "nothing was applied"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := c.fails("config", "apply", "-f", writeConfig(t, tc.text))
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if after := configState(t, c); after != before {
				t.Errorf("a refused file changed the configuration:\n%s\nwas:\n%s", after, before)
			}
		})
	}
}

// Secrets are references: a value written where one belongs is refused without echoing it;
// {file: PATH} replaces the stored one.
func TestConfigApplySecretsByReferenceOnly(t *testing.T) {
	c := configured(t)
	exported := c.must("config", "export")
	leaked := strings.Replace(exported, "token: keep", "token: s3cr3t-value", 1)
	msg := c.fails("config", "apply", "-f", writeConfig(t, leaked))
	if !strings.Contains(msg, "settings.secrets.token") || strings.Contains(msg, "s3cr3t-value") {
		t.Errorf("error %q: want it to name settings.secrets.token and not show the value", msg)
	}
	newToken := writeSecret(t, "new-token-value")
	out := c.must("config", "apply", "-f", writeConfig(t, strings.Replace(exported, "token: keep", "token: {file: "+newToken+"}", 1)))
	if !strings.Contains(out, "target.token: replaced") || strings.Contains(out, "new-token-value") {
		t.Errorf("apply with a token file:\n%s", out)
	}
	if o := storedOrg(t, c, "acme"); o.Secrets.Token != "new-token-value" || o.Secrets.BindPassword != ldapPassword {
		t.Errorf("secrets after apply: token replaced %v, bind password kept %v", o.Secrets.Token == "new-token-value", o.Secrets.BindPassword == ldapPassword)
	}
}

// A catalog list left out stays; one given replaces the stored one.
func TestConfigApplyCatalogListLeftOutStays(t *testing.T) {
	c := configured(t)
	c.must("config", "apply", "-f", writeConfig(t, "catalog:\n  templates: [Standard, Restricted]\n"))
	out := c.must("catalog", "list")
	for _, want := range []string{"Connect, Meeting, Webinar", "Admin, Member", "Restricted, Standard"} {
		if !strings.Contains(out, want) {
			t.Errorf("catalog after apply does not show %q:\n%s", want, out)
		}
	}
}
