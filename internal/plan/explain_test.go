package plan

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestExplainInScope(t *testing.T) {
	u := user("g1", "ann", admins, staff)
	u.Attributes = map[string]string{"dept": "R&D"}
	in := baseInput(u)
	in.Mappings = []Mapping{{Source: "dept", Target: "enterprise:department"}}
	in.Seats["Webinar"] = 0
	e := Explain(u, in)

	if !e.InScope || e.OutOfScope != "" || e.Linked {
		t.Fatalf("scope: %+v", e)
	}
	if len(e.MatchedRules) != 2 || e.MatchedRules[0].ID != 1 || e.MatchedRules[1].ID != 2 {
		t.Errorf("matched rules = %+v, want rule 1 then rule 2", e.MatchedRules)
	}
	want := []FieldDecision{
		{Field: "role", Value: "Admin", RuleID: 1, Priority: 1},
		{Field: "userGroup", Value: "Staff", RuleID: 2, Priority: 2},
		{Field: "products", Value: "Meeting", RuleID: 1, Priority: 1},
		{Field: "products", Value: "Webinar", RuleID: 1, Priority: 1},
		{Field: "enterprise:department", Value: "R&D", Attribute: "dept"},
	}
	if !reflect.DeepEqual(e.Fields, want) {
		t.Errorf("fields:\n got  %+v\n want %+v", e.Fields, want)
	}
	if e.Action != Fail || e.Failure == nil || e.Failure.Product != "Webinar" {
		t.Errorf("license decision: action %s failure %+v, want out_of_licenses Webinar", e.Action, e.Failure)
	}
	if !strings.Contains(e.License.Decision, `no free seat for product "Webinar"`) {
		t.Errorf("decision = %q", e.License.Decision)
	}
	if _, err := json.Marshal(e); err != nil {
		t.Errorf("explanation does not marshal: %v", err)
	}
}

func TestExplainLinkedChanged(t *testing.T) {
	u := user("g1", "ann", staff)
	in := baseInput(u)
	link(t, &in, u)
	promoted := u
	promoted.Groups = []string{admins} // explain a what-if: the user as the directory has it now
	e := Explain(promoted, in)
	if !e.Linked || e.Action != Update || !reflect.DeepEqual(e.Changed, []string{"products", "role", "userGroup"}) {
		t.Errorf("explain = %+v", e)
	}
	if !reflect.DeepEqual(e.License.NewSeats, []string{"Webinar"}) || e.License.Decision != "takes a seat of Webinar" {
		t.Errorf("license = %+v", e.License)
	}
}

func TestExplainUnchanged(t *testing.T) {
	u := user("g1", "ann", staff)
	in := baseInput(u)
	link(t, &in, u)
	e := Explain(u, in)
	if e.Action != "" || len(e.Changed) != 0 || e.Desired == nil || e.License.Decision != "keeps Meeting" {
		t.Errorf("explain = %+v", e)
	}
}

func TestExplainOutOfScope(t *testing.T) {
	u := user("g1", "ann", staff)
	in := baseInput(user("g2", "bob", staff))
	link(t, &in, u)
	u.Groups = []string{guests} // left the staff group
	in.ApproveSuspensions = true
	e := Explain(u, in)
	if e.InScope || e.OutOfScope != "no matching rule" || e.Action != Suspend {
		t.Errorf("explain = %+v", e)
	}
	if e.License.Decision != "suspended: releases Meeting" {
		t.Errorf("decision = %q", e.License.Decision)
	}
	u.Disabled = true
	if e := Explain(u, in); e.OutOfScope != "disabled" {
		t.Errorf("disabled user: outOfScope = %q", e.OutOfScope)
	}
}
