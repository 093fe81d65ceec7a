package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/vocab"
)

func TestLicensesSetThenListShowsSeatsUsedAndFree(t *testing.T) {
	c := withCatalog(t)
	c.must("licenses", "set", "Webinar", "60")
	c.must("licenses", "set", "Meeting", "300")
	out := c.must("licenses", "set", "Webinar", "75")
	if !strings.Contains(out, "Webinar") {
		t.Errorf("licenses set prints the pools:\n%s", out)
	}
	var ls []licenseRow
	if err := json.Unmarshal([]byte(c.must("--json", "licenses", "list")), &ls); err != nil {
		t.Fatal(err)
	}
	got := map[string]licenseRow{}
	for _, l := range ls {
		got[l.Product] = l
	}
	if len(ls) != 2 || got["Webinar"].Seats != 75 || got["Webinar"].Free != 75 || got["Meeting"].Seats != 300 {
		t.Errorf("licenses = %+v, want Meeting 300 and Webinar 75 (last set wins), all free", ls)
	}
	if row := lineWith(c.must("licenses", "list"), "Webinar"); !strings.Contains(row, "75") {
		t.Errorf("licenses list row for Webinar = %q, want its 75 seats", row)
	}
}

func lineWith(out, word string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, word) {
			return l
		}
	}
	return ""
}

func TestInputErrorsNameTheFlagOrFieldAndValue(t *testing.T) {
	c := withCatalog(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"licenses", "set", "Meeting", "-5"}, []string{"seats", `"-5"`}},
		{[]string{"licenses", "set", "Meeting", "many"}, []string{"seats", `"many"`}},
		{[]string{"licenses", "set", "Nope", "5"}, []string{"product", `"Nope"`}},
		{[]string{"domains", "validate", "not a domain"}, []string{"domain", `"not a domain"`}},
		{[]string{"domains", "validate", "bad-.com"}, []string{"domain", `"bad-.com"`}},
		{[]string{"domains", "validate", "example.123"}, []string{"domain", `"example.123"`}},
		{[]string{"domains", "unvalidate", "localhost"}, []string{"domain", `"localhost"`}},
		{[]string{"mappings", "set", "mail", "enterprise:salary"}, []string{"target", `"enterprise:salary"`}},
		{[]string{"mappings", "set", "bad attr", "custom:office"}, []string{"source attribute", `"bad attr"`}},
		{[]string{"mappings", "remove", "custom:office"}, []string{"custom:office"}},
		{[]string{"retry", "--type", "bogus"}, []string{"--type", `"bogus"`, "out_of_licenses"}},
		{[]string{"failures", "--type", "bogus"}, []string{"--type", `"bogus"`}},
		{[]string{"history", "--type", "bogus"}, []string{"--type", `"bogus"`, "rule"}},
		{[]string{"history", "--since", "yesterday"}, []string{"--since", `"yesterday"`}},
		{[]string{"history", "--until", "tomorrow"}, []string{"--until", `"tomorrow"`}},
		{[]string{"history", "--limit", "0"}, []string{"--limit 0"}},
		{[]string{"enable", "--interval", "5s"}, []string{"interval", `"5s"`}},
		{[]string{"enable", "--interval", "soon"}, []string{"interval", `"soon"`}},
		{[]string{"catalog", "set", "--products", "Meeting,,Webinar"}, []string{"--products"}},
		{[]string{"status", "--timeout", "0s"}, []string{"--timeout"}},
	} {
		msg := c.fails(tc.args...)
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("starter %s: error %q does not mention %q", strings.Join(tc.args, " "), msg, w)
			}
		}
	}
	if out := c.must("licenses", "list"); !strings.Contains(out, "No seat pools") {
		t.Errorf("rejected license changes were saved:\n%s", out)
	}
	if out := c.must("domains", "list"); !strings.Contains(out, "No domains") {
		t.Errorf("rejected domains were saved:\n%s", out)
	}
}

func TestDomainsAndMappingsRoundTrip(t *testing.T) {
	c := newCLI(t)
	c.must("domains", "validate", "Example.COM")
	out := c.must("domains", "unvalidate", "partners.example.net")
	if !strings.Contains(lineWith(out, "example.com"), "true") || !strings.Contains(lineWith(out, "partners.example.net"), "false") {
		t.Errorf("domains after validate/unvalidate:\n%s", out)
	}
	c.must("mappings", "set", "employeeNumber", "enterprise:employeeNumber")
	out = c.must("mappings", "set", "l", "custom:office")
	if !strings.Contains(lineWith(out, "custom:office"), "l") || !strings.Contains(out, "enterprise:employeeNumber") {
		t.Errorf("mappings after set:\n%s", out)
	}
	out = c.must("mappings", "remove", "custom:office")
	if strings.Contains(out, "custom:office") {
		t.Errorf("mapping still listed after remove:\n%s", out)
	}
}

func TestRetryWithoutMatchingFailuresSaysSoAndSignalsNothing(t *testing.T) {
	c := newCLI(t)
	// Temporal points at a closed port: contacting it would fail the command.
	out := c.must("retry", "--type", "out_of_licenses", "--product", "Webinar")
	if !strings.Contains(out, "No current failure matches") || !strings.Contains(out, "type=out_of_licenses") {
		t.Errorf("retry output:\n%s", out)
	}
	if out := c.must("failures"); !strings.Contains(out, "No current failures") {
		t.Errorf("failures output:\n%s", out)
	}
}

func TestSeedDemoTwiceIsIdempotent(t *testing.T) {
	c := newCLI(t)
	first := c.must("seed-demo")
	if !strings.Contains(first, "rules: replaced 0 with the 9 demo rules") {
		t.Errorf("first seed-demo:\n%s", first)
	}
	rulesBefore := c.must("--json", "rules", "list")
	history := c.must("--json", "history", "--limit", "1000")

	second := c.must("seed-demo")
	for _, line := range strings.Split(strings.TrimSpace(second), "\n")[1:] {
		if !strings.Contains(line, "unchanged") {
			t.Errorf("second seed-demo changed something: %q", line)
		}
	}
	if got := c.must("--json", "rules", "list"); got != rulesBefore {
		t.Errorf("rules changed on the second seed:\nbefore %s\nafter %s", rulesBefore, got)
	}
	if got := c.must("--json", "history", "--limit", "1000"); got != history {
		t.Errorf("second seed-demo wrote history events")
	}

	d := demo.Org()
	out := c.must("licenses", "list")
	if !strings.Contains(lineWith(out, demo.Webinar), "60") || lineWith(out, demo.Connect) == "" {
		t.Errorf("seeded licenses:\n%s", out)
	}
	out = c.must("domains", "list")
	if !strings.Contains(lineWith(out, demo.Domain), "true") || !strings.Contains(lineWith(out, demo.PartnerDomain), "false") {
		t.Errorf("seeded domains:\n%s", out)
	}
	var rs []json.RawMessage
	if err := json.Unmarshal([]byte(rulesBefore), &rs); err != nil || len(rs) != len(d.Rules) {
		t.Errorf("seeded %d rules (%v), want %d", len(rs), err, len(d.Rules))
	}
	// A rule added after seeding gets a fresh ID: seeding must not collide with the store's IDs.
	c.must("rules", "add", "--group", demo.GroupDN("Finance"), "--products", demo.Meeting, "--no-directory-check")
}

func TestHistoryShowsTheRuleChangeWithItsActor(t *testing.T) {
	c := withCatalog(t)
	c.must("--actor", "alice", "rules", "add", "--group", salesDN, "--no-directory-check")
	c.must("--actor", "bob", "licenses", "set", "Meeting", "10")

	out := c.must("history", "--type", "rule")
	row := lineWith(out, "add rule")
	if !strings.Contains(row, "alice") || !strings.Contains(row, "rule") {
		t.Errorf("history --type rule: no rule change by alice:\n%s", out)
	}
	if strings.Contains(out, "bob") {
		t.Errorf("history --type rule lists other types:\n%s", out)
	}
	if out := c.must("history", "--actor", "bob", "--since", "1h"); !strings.Contains(out, "license") || strings.Contains(out, "alice") {
		t.Errorf("history --actor bob:\n%s", out)
	}
	var es []vocab.Event
	if err := json.Unmarshal([]byte(c.must("--json", "history", "--type", "rule")), &es); err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Actor != "alice" || es[0].Type != vocab.EventRule {
		t.Errorf("history --json --type rule = %+v, want one rule event by alice", es)
	}
}

func TestStatusWithoutTemporalStillPrintsTheStoreAndFails(t *testing.T) {
	c := newCLI(t)
	out, err := c.run("status")
	if err == nil {
		t.Fatalf("status succeeded with Temporal unreachable:\n%s", out)
	}
	if !strings.Contains(out, "status unavailable") || !strings.Contains(out, "No failures") || !strings.Contains(out, "No runs recorded") {
		t.Errorf("status output lacks the store part:\n%s", out)
	}
}
