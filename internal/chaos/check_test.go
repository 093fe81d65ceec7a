package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// healthy is a consistent state: two in-scope users provisioned with Meeting, one failed,
// one out of scope and suspended, a pre-existing unlinked account; one run with its rows.
func healthy() Facts {
	done := time.Now()
	return Facts{
		Directory: []DirUser{
			{ExternalID: "e1", UserName: "a@x", InScope: true},
			{ExternalID: "e2", UserName: "b@x", InScope: true},
			{ExternalID: "e3", UserName: "c@x", InScope: true},
			{ExternalID: "e4", UserName: "d@x"},
		},
		Accounts: []*scim.User{
			{ID: "1", ExternalID: "e1", UserName: "a@x", Active: true, Products: []string{"Meeting"}},
			{ID: "2", ExternalID: "e2", UserName: "b@x", Active: true, Products: []string{"Meeting"}},
			{ID: "4", ExternalID: "e4", UserName: "d@x", Active: false},
			{ID: "9", UserName: "c@x", Active: true}, // pre-existing: c fails existing_account
		},
		Licenses:    []store.License{{Product: "Meeting", Seats: 2, Used: 2}},
		SeatHolders: map[string]map[string]bool{"Meeting": {"e1": true, "e2": true}},
		Failures:    []store.FailureRecord{{ExternalID: "e3", UserName: "c@x", Failure: vocab.Failure{Type: vocab.ExistingAccount}}},
		Runs:        []store.Run{{RunID: "r1", Status: vocab.RunSucceeded, FinishedAt: &done}},
		History: []vocab.Event{
			{Type: vocab.EventSync, Action: "sync started", Details: map[string]any{"run": "r1"}},
			{Type: vocab.EventFailure, Action: vocab.ExistingAccount, Details: map[string]any{"run": "r1", "externalId": "e3"}},
			{Type: vocab.EventSync, Action: "sync finished", Details: map[string]any{"run": "r1"}},
			{Type: vocab.EventSwitch, Action: "enable", Actor: "chaos-enable-1"},
			{Type: vocab.EventSwitch, Action: "enable", Actor: "chaos-bad-enable-2", Status: "rejected"},
		},
		Deactivated: map[string]int{"4": 1},
		Actions: []Action{{Actor: "chaos-enable-1", Signal: "enable"},
			{Actor: "chaos-bad-enable-2", Signal: "enable", Rejected: true}},
	}
}

func TestHealthyStateHasNoViolation(t *testing.T) {
	if vs := Check(healthy()); len(vs) != 0 {
		t.Fatalf("want none, got %v", vs)
	}
}

// Each planted fault is named by its invariant, in words that say who and what.
func TestCheckerFlagsEachPlantedViolation(t *testing.T) {
	cases := []struct {
		name      string
		plant     func(f *Facts)
		invariant string
		mention   string
	}{
		{"duplicate userName", func(f *Facts) {
			f.Accounts = append(f.Accounts, &scim.User{ID: "5", ExternalID: "", UserName: "A@x", Active: true})
		}, InvNoDuplicates, "userName a@x has 2 accounts"},
		{"duplicate externalId", func(f *Facts) {
			f.Accounts = append(f.Accounts, &scim.User{ID: "5", ExternalID: "e1", UserName: "a2@x", Active: true})
		}, InvNoDuplicates, "externalId e1 has 2 accounts"},
		{"unknown externalId", func(f *Facts) {
			f.Accounts = append(f.Accounts, &scim.User{ID: "6", ExternalID: "ghost", UserName: "g@x"})
		}, InvKnownExternalID, "externalId ghost"},
		{"more holders than seats", func(f *Facts) {
			f.Licenses[0].Seats = 1
		}, InvSeatsBounded, "Meeting: 2 active linked accounts hold it, 1 seats"},
		{"a seat row dropped", func(f *Facts) {
			delete(f.SeatHolders["Meeting"], "e2")
			f.Licenses[0].Used = 1
		}, InvSeatsMatch, "the entitlement in the target but no seat row: b@x"},
		{"a seat row without entitlement", func(f *Facts) {
			f.Accounts[1].Products = nil
		}, InvSeatsMatch, "a seat row but no entitlement in the target: b@x"},
		{"an in-scope user neither provisioned nor failed", func(f *Facts) {
			f.Failures = nil
		}, InvInScopeCovered, "c@x (e3): no account and no current failure"},
		{"an in-scope user suspended", func(f *Facts) {
			f.Deactivated["2"] = 1
		}, InvNoSuspension, "b@x (account 2) is in scope"},
		{"an in-scope user left inactive", func(f *Facts) {
			f.Accounts[0].Active = false
		}, InvInScopeCovered, "a@x (e1): an inactive account 1"},
		{"a run finished twice", func(f *Facts) {
			f.History = append(f.History, vocab.Event{Type: vocab.EventSync, Action: "sync finished", Details: map[string]any{"run": "r1"}})
		}, InvOneHistoryRow, `run r1 (succeeded): 2 "sync finished" rows`},
		{"a failure recorded twice in a run", func(f *Facts) {
			f.History = append(f.History, f.History[1])
		}, InvOneHistoryRow, "run r1, user e3: 2 existing_account failure rows"},
		{"an admin action recorded twice", func(f *Facts) {
			f.History = append(f.History, f.History[3])
		}, InvOneHistoryRow, "enable signal of chaos-enable-1: 2 history rows"},
		{"an admin action not recorded", func(f *Facts) {
			f.History = f.History[:3]
		}, InvOneHistoryRow, "enable signal of chaos-enable-1: 0 history rows"},
		{"a malformed signal accepted", func(f *Facts) {
			f.History[4].Status = "ok"
		}, InvOneHistoryRow, "malformed enable signal of chaos-bad-enable-2: recorded, but not as rejected"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := healthy()
			c.plant(&f)
			vs := Check(f)
			found := false
			for _, v := range vs {
				if v.Invariant == c.invariant && strings.Contains(v.Detail, c.mention) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want a violation of %q mentioning %q, got %v", c.invariant, c.mention, vs)
			}
		})
	}
}
