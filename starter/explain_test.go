package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

const marketingDN = "cn=marketing,ou=groups,dc=example,dc=com"

// explainInput is an org with two rules: Marketing (priority 1) above Sales (priority 2).
func explainInput(users ...directory.User) plan.Input {
	return plan.Input{
		Users: users,
		Rules: []rules.Rule{
			{ID: 10, Priority: 1, GroupDN: marketingDN, Role: "Member", Products: []string{"Meeting"}, UserGroup: "Marketing"},
			{ID: 20, Priority: 2, GroupDN: rules.NormalizeDN(salesDN), Products: []string{"Webinar"}, UserGroup: "Sales"},
		},
		ValidatedDomains: map[string]bool{"example.com": true},
		Applied:          map[string]plan.Applied{},
		Failed:           map[string]vocab.Failure{},
		Seats:            map[string]int{"Meeting": 10, "Webinar": 10},
		Held:             map[string]map[string]bool{},
	}
}

func user(id, mail string, groups ...string) directory.User {
	return directory.User{ExternalID: id, UserName: mail, Email: mail, Groups: groups}
}

// printed is the text output with runs of spaces collapsed (table columns vary in width).
func printed(r explainResult) string {
	var b bytes.Buffer
	printExplanation(&b, r)
	return spaces.ReplaceAllString(b.String(), " ")
}

var spaces = regexp.MustCompile(` {2,}`)

func TestExplainFindsTheUserByUserNameAnyCaseOrExternalID(t *testing.T) {
	in := explainInput(user("id-1", "ann@example.com", marketingDN), user("id-2", "bob@example.com", rules.NormalizeDN(salesDN)))
	for _, q := range []string{"ANN@example.com", "id-1"} {
		r := explainUser(q, in, nil)
		if !r.Known || !r.InRuledGroups || r.Explanation == nil || r.Explanation.ExternalID != "id-1" {
			t.Errorf("explain %q: %+v, want ann (id-1) found in the ruled groups", q, r)
		}
	}
	if r := explainUser("ID-1", in, nil); r.Known {
		t.Errorf("externalIds are matched exactly, got %+v", r)
	}
}

func TestExplainShowsWhichRuleSetEachValue(t *testing.T) {
	in := explainInput(user("id-1", "ann@example.com", marketingDN, rules.NormalizeDN(salesDN)))
	out := printed(explainUser("ann@example.com", in, nil))
	for _, want := range []string{
		"User ann@example.com (externalId id-1)",
		"userGroup Marketing rule 10 (priority 1)",
		"products Webinar rule 20 (priority 2)", // sets are the union
		"Next sync: create",
		"Target: not linked",
		"Current failure: none.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestExplainShowsTheDiffAgainstTheLastAppliedState(t *testing.T) {
	u := user("id-1", "ann@example.com", marketingDN)
	in := explainInput(u)
	applied := plan.Desired{ExternalID: "id-1", UserName: "ann@example.com", Email: "ann@example.com", Active: true,
		Role: "Member", Products: []string{"Meeting"}, UserGroup: "Support"}
	in.Applied["id-1"] = plan.Applied{ExternalID: "id-1", ScimID: "scim-1", State: applied}
	in.Held = map[string]map[string]bool{"Meeting": {"id-1": true}}
	out := printed(explainUser("id-1", in, nil))
	for _, want := range []string{"Target: linked (SCIM id scim-1).", "Next sync: update", "userGroup Support Marketing"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestExplainALinkedUserWhoLeftEveryRuledGroup(t *testing.T) {
	in := explainInput(user("id-2", "bob@example.com", marketingDN))
	in.Applied["id-1"] = plan.Applied{ExternalID: "id-1", ScimID: "scim-1", State: plan.Desired{
		ExternalID: "id-1", UserName: "ann@example.com", Email: "ann@example.com", Active: true, Products: []string{"Meeting"}}}
	in.Held = map[string]map[string]bool{"Meeting": {"id-1": true}}
	in.SuspendThresholdPercent, in.SuspendThresholdMax = 100, 100
	r := explainUser("ann@example.com", in, nil)
	if !r.Known || r.InRuledGroups || r.Explanation == nil || r.Explanation.Action != plan.Suspend {
		t.Fatalf("got %+v, want a known user, in no ruled group, to be suspended", r)
	}
	out := printed(r)
	for _, want := range []string{"in no ruled group", "Next sync: suspend", "suspended: releases Meeting"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestExplainShowsTheCurrentFailure(t *testing.T) {
	in := explainInput(user("id-1", "ann@partners.example.net", marketingDN))
	fails := []store.FailureRecord{{ExternalID: "id-1", UserName: "ann@partners.example.net", Since: "2025-01-02T03:04:05Z", Attempts: 2,
		Failure: vocab.Failure{Type: vocab.DomainNotValidated, Message: "email domain not validated"}}}
	out := printed(explainUser("ann@partners.example.net", in, fails))
	for _, want := range []string{
		"Next sync: fails with domain_not_validated",
		"Current failure: domain_not_validated: email domain not validated (since 2025-01-02T03:04:05Z, 2 attempts)",
		"starter domains validate",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Failed earlier, never linked, now in no ruled group: the failure is all there is.
	r := explainUser("gone@example.com", explainInput(), []store.FailureRecord{{ExternalID: "id-9", UserName: "gone@example.com",
		Failure: vocab.Failure{Type: vocab.InvalidUserData, Message: "bad mail"}}})
	if !r.Known || r.Explanation != nil || r.Failure == nil {
		t.Fatalf("got %+v, want the failure only", r)
	}
	if out := printed(r); !strings.Contains(out, "Current failure: invalid_user_data: bad mail") {
		t.Errorf("output lacks the failure:\n%s", out)
	}
}

func TestExplainAnUnknownUserSaysSo(t *testing.T) {
	r := explainUser("nobody@example.com", explainInput(user("id-1", "ann@example.com", marketingDN)), nil)
	if r.Known {
		t.Fatalf("got %+v, want unknown", r)
	}
	if out := printed(r); !strings.Contains(out, "not in any ruled group") {
		t.Errorf("output does not say so:\n%s", out)
	}
}

func TestExplainWithoutADirectoryNamesTheSetting(t *testing.T) {
	t.Setenv("LDAP_URL", "")
	c := withCatalog(t)
	c.must("rules", "add", "--group", salesDN, "--products", "Meeting", "--no-directory-check")
	if msg := c.fails("explain", "ann@example.com"); !strings.Contains(msg, "LDAP_URL") {
		t.Errorf("error %q does not name LDAP_URL", msg)
	}
}

func TestExplainDoesNotLeakTheBindPassword(t *testing.T) {
	t.Setenv("LDAP_URL", "ldap://127.0.0.1:1")
	t.Setenv("LDAP_BIND_DN", "cn=admin,dc=example,dc=com")
	t.Setenv("LDAP_BIND_PASSWORD", "s3cret-pw")
	t.Setenv("LDAP_BASE_DN", "dc=example,dc=com")
	c := withCatalog(t)
	c.must("rules", "add", "--group", salesDN, "--products", "Meeting", "--no-directory-check")
	msg := c.fails("explain", "ann@example.com")
	if strings.Contains(msg, "s3cret-pw") {
		t.Errorf("error %q shows the bind password", msg)
	}
	if !strings.Contains(msg, "ldap://127.0.0.1:1") {
		t.Errorf("error %q does not name the directory", msg)
	}
}
