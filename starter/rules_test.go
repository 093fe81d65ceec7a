package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/rules"
)

const (
	salesDN   = "cn=Sales,ou=Groups,dc=example,dc=com"
	supportDN = "cn=Support,ou=Groups,dc=example,dc=com"
	execDN    = "cn=Executives,ou=Groups,dc=example,dc=com"
)

// withCatalog is a CLI whose org knows a few products, roles and templates.
func withCatalog(t *testing.T) *cli {
	c := newCLI(t)
	c.must("catalog", "set", "--products", "Meeting,Webinar,Connect", "--roles", "Member,Admin", "--templates", "Standard")
	return c
}

// listed parses the rules table: "priority id group" per row.
func listed(t *testing.T, out string) []string {
	t.Helper()
	var rows []string
	inTable := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "PRIORITY" {
			inTable, rows = true, nil // the last table printed wins
			continue
		}
		if inTable && len(f) >= 3 {
			rows = append(rows, f[0]+" "+f[2])
		}
	}
	return rows
}

func rulesJSON(t *testing.T, c *cli) []rules.Rule {
	t.Helper()
	var rs []rules.Rule
	if err := json.Unmarshal([]byte(c.must("--json", "rules", "list")), &rs); err != nil {
		t.Fatal(err)
	}
	return rs
}

func equal(a, b []string) bool { return strings.Join(a, "|") == strings.Join(b, "|") }

func TestRulesAddMoveRemoveKeepDensePrioritiesAndPrintThem(t *testing.T) {
	c := withCatalog(t)
	c.must("rules", "add", "--group", salesDN, "--role", "Member", "--products", "Meeting,Webinar", "--no-directory-check")
	c.must("rules", "add", "--group", supportDN, "--products", "Meeting", "--no-directory-check")
	out := c.must("rules", "add", "--group", "CN=Executives, OU=Groups, DC=example, DC=com", "--priority", "1",
		"--role", "Admin", "--no-directory-check")
	if !strings.Contains(out, "at priority 1") {
		t.Errorf("add --priority 1 output does not say where the rule went:\n%s", out)
	}
	want := []string{"1 " + strings.ToLower(execDN), "2 " + strings.ToLower(salesDN), "3 " + strings.ToLower(supportDN)}
	if got := listed(t, out); !equal(got, want) {
		t.Fatalf("after add, printed rules = %q, want %q (inserted at 1, DN normalized)", got, want)
	}
	if got := listed(t, c.must("rules", "list")); !equal(got, want) {
		t.Fatalf("rules list = %q, want %q", got, want)
	}

	rs := rulesJSON(t, c)
	supportID := rs[2].ID
	out = c.must("rules", "move", itoa64(supportID), "--to", "1")
	want = []string{"1 " + strings.ToLower(supportDN), "2 " + strings.ToLower(execDN), "3 " + strings.ToLower(salesDN)}
	if got := listed(t, out); !equal(got, want) {
		t.Fatalf("after move to 1, printed rules = %q, want %q", got, want)
	}

	out = c.must("rules", "remove", itoa64(rs[0].ID)) // Executives, now at 2
	want = []string{"1 " + strings.ToLower(supportDN), "2 " + strings.ToLower(salesDN)}
	if got := listed(t, out); !equal(got, want) {
		t.Fatalf("after remove, printed rules = %q, want %q (gap closed)", got, want)
	}
	if got := listed(t, c.must("rules", "list")); !equal(got, want) {
		t.Fatalf("rules list after remove = %q, want %q", got, want)
	}
}

func TestRulesEditChangesOnlyGivenFieldsAndClearsEmptyOnes(t *testing.T) {
	c := withCatalog(t)
	c.must("rules", "add", "--group", salesDN, "--role", "Member", "--products", "Meeting,Webinar",
		"--user-group", "Sales", "--template", "Standard", "--custom", "costCenter=CC-1", "--custom", "division=EMEA",
		"--note", "sales", "--no-directory-check")
	c.must("rules", "add", "--group", supportDN, "--no-directory-check")
	id := itoa64(rulesJSON(t, c)[0].ID)

	c.must("rules", "edit", id, "--role", "", "--products", "Connect", "--custom", "division=", "--priority", "2")
	r := rulesJSON(t, c)[1]
	if r.Role != "" || !equal(r.Products, []string{"Connect"}) || r.UserGroup != "Sales" || r.SettingsTemplate != "Standard" ||
		r.Note != "sales" || len(r.CustomFields) != 1 || r.CustomFields["costCenter"] != "CC-1" {
		t.Errorf("after edit: %+v; want role cleared, products [Connect], division removed, the rest kept", r)
	}
	if r.Priority != 2 || itoa64(r.ID) != id {
		t.Errorf("after edit --priority 2: rule %d at %d, want rule %s at 2", r.ID, r.Priority, id)
	}
	show := c.must("rules", "show", id)
	if !strings.Contains(show, "costCenter=CC-1") || !strings.Contains(show, "Connect") {
		t.Errorf("rules show %s:\n%s", id, show)
	}
}

func TestRuleValidationErrorsNameTheFieldAndValueAndSaveNothing(t *testing.T) {
	c := withCatalog(t)
	c.must("rules", "add", "--group", salesDN, "--no-directory-check")
	t.Setenv("LDAP_URL", "")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"rules", "add", "--group", supportDN, "--products", "Meeting,Nope", "--no-directory-check"}, []string{"products", `"Nope"`}},
		{[]string{"rules", "add", "--group", supportDN, "--role", "Boss", "--no-directory-check"}, []string{"role", `"Boss"`}},
		{[]string{"rules", "add", "--group", supportDN, "--priority", "-1", "--no-directory-check"}, []string{"--priority -1"}},
		{[]string{"rules", "add", "--group", supportDN, "--priority", "5", "--no-directory-check"}, []string{"priority 5", "1..2"}},
		{[]string{"rules", "add", "--group", "not a dn", "--no-directory-check"}, []string{"groupDn", `"not a dn"`}},
		{[]string{"rules", "add", "--role", "Member", "--no-directory-check"}, []string{"--group"}},
		{[]string{"rules", "add", "--group", supportDN, "--custom", "novalue", "--no-directory-check"}, []string{"--custom", `"novalue"`}},
		{[]string{"rules", "add", "--group", supportDN}, []string{"LDAP_URL", "--no-directory-check", supportDN}},
		{[]string{"rules", "move", "1", "--to", "0"}, []string{"--to 0"}},
		{[]string{"rules", "move", "999", "--to", "1"}, []string{"rule 999"}},
		{[]string{"rules", "remove", "999"}, []string{"rule 999"}},
		{[]string{"rules", "edit", "abc", "--role", "Member"}, []string{"rule id", `"abc"`}},
		{[]string{"rules", "edit", "999", "--role", "Member"}, []string{"rule 999"}},
		{[]string{"rules", "edit", "1", "--no-directory-check"}, []string{"rule 1", "nothing to change"}},
		{[]string{"rules", "edit", "1", "--priority", "0"}, []string{"--priority 0"}},
		{[]string{"rules", "show", "999"}, []string{"rule 999"}},
	} {
		msg := c.fails(tc.args...)
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("starter %s: error %q does not mention %q", strings.Join(tc.args, " "), msg, w)
			}
		}
	}
	if got := rulesJSON(t, c); len(got) != 1 || got[0].Priority != 1 {
		t.Errorf("after rejected edits the rules are %+v, want the one rule at priority 1", got)
	}
}

func TestCatalogSetRefusesToDropANameARuleUses(t *testing.T) {
	c := withCatalog(t)
	c.must("rules", "add", "--group", salesDN, "--products", "Webinar", "--no-directory-check")
	msg := c.fails("catalog", "set", "--products", "Meeting,Connect")
	if !strings.Contains(msg, `"Webinar"`) {
		t.Errorf("error %q does not name the product in use", msg)
	}
	if out := c.must("catalog", "list"); !strings.Contains(out, "Webinar") {
		t.Errorf("catalog changed although refused:\n%s", out)
	}
	out := c.must("catalog", "set", "--roles", "Member,Admin,Manager")
	if !strings.Contains(out, "Manager") || !strings.Contains(out, "Webinar") {
		t.Errorf("catalog set --roles should add Manager and keep the products:\n%s", out)
	}
}

func itoa64(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
