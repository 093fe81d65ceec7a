package activities

import (
	"testing"
	"time"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// A run stands on the last clean run only when every condition of UnchangedSince holds:
// each one broken alone sends it the long way.
func TestUnchangedSinceEachConditionAlone(t *testing.T) {
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	later := now.Add(time.Hour)
	earlier := now.Add(-time.Minute)
	ok := func() unchangedCheck {
		return unchangedCheck{
			MayStandStill: true, FirstAttempt: true,
			Read:   &steps.DirectoryRead{Entries: 0},
			Inputs: "abc",
			Previous: &store.RunBasis{RunID: "run-2", Kind: vocab.KindScheduled, Status: vocab.RunSucceeded,
				Finished: true, Clean: true, Inputs: "abc", Basis: "run-1", NextExpiry: &later},
			Now: now,
		}
	}
	since, why := UnchangedSince(ok())
	if since != "run-1" || why != "" {
		t.Fatalf("all conditions hold: since %q, why %q; want run-1 (the basis of the last run)", since, why)
	}
	c := ok()
	c.Previous.NextExpiry = nil
	if since, _ := UnchangedSince(c); since != "run-1" {
		t.Errorf("no account expires: since %q, want run-1", since)
	}

	for name, breakIt := range map[string]func(c *unchangedCheck){
		"dry run, retry or approval": func(c *unchangedCheck) { c.MayStandStill = false },
		"not incremental":            func(c *unchangedCheck) { c.Read = nil },
		"full read":                  func(c *unchangedCheck) { c.Read.Full = true },
		"an entry read":              func(c *unchangedCheck) { c.Read.Entries = 1 },
		"an entry deleted":           func(c *unchangedCheck) { c.Read.Deleted = 1 },
		"retried attempt":            func(c *unchangedCheck) { c.FirstAttempt = false },
		"no earlier run":             func(c *unchangedCheck) { c.Previous = nil },
		"last run unfinished":        func(c *unchangedCheck) { c.Previous.Finished = false },
		"last run failed":            func(c *unchangedCheck) { c.Previous.Status = vocab.RunFailed },
		"last run cancelled":         func(c *unchangedCheck) { c.Previous.Status = vocab.RunCancelled },
		"last run dry":               func(c *unchangedCheck) { c.Previous.DryRun = true },
		"last run a retry":           func(c *unchangedCheck) { c.Previous.Kind = vocab.KindRetry },
		"last run not clean":         func(c *unchangedCheck) { c.Previous.Clean = false },
		"a run overlapped it":        func(c *unchangedCheck) { c.Previous.Overlapping = 1 },
		"last run without inputs":    func(c *unchangedCheck) { c.Previous.Inputs, c.Inputs = "", "" },
		"last run without basis":     func(c *unchangedCheck) { c.Previous.Basis = "" },
		"inputs changed":             func(c *unchangedCheck) { c.Inputs = "abd" },
		"user failure left":          func(c *unchangedCheck) { c.Failures = 1 },
		"open write intent":          func(c *unchangedCheck) { c.Intents = 1 },
		"account expired since":      func(c *unchangedCheck) { c.Previous.NextExpiry = &earlier },
		"account expires now":        func(c *unchangedCheck) { c.Previous.NextExpiry = &now },
	} {
		c := ok()
		breakIt(&c)
		if since, why := UnchangedSince(c); since != "" || why == "" {
			t.Errorf("%s: since %q, why %q; want the long way", name, since, why)
		}
	}
}

// A run whose only change is the directory's is a delta run (DeltaSince) exactly when every
// other condition of standing still holds: the directory changed, and each other condition
// broken alone sends it the long way (a full snapshot); a retried read is one of them.
func TestDeltaSinceEachConditionAlone(t *testing.T) {
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	later, earlier := now.Add(time.Hour), now.Add(-time.Minute)
	ok := func() unchangedCheck {
		return unchangedCheck{
			MayStandStill: true, FirstAttempt: true,
			Read:   &steps.DirectoryRead{Entries: 3, Deleted: 1},
			Inputs: "abc",
			Previous: &store.RunBasis{RunID: "run-2", Kind: vocab.KindScheduled, Status: vocab.RunSucceeded,
				Finished: true, Clean: true, Inputs: "abc", Basis: "run-1", NextExpiry: &later},
			Now: now,
		}
	}
	if since, why := DeltaSince(ok()); since != "run-1" || why != "" {
		t.Fatalf("all conditions hold: since %q, why %q; want run-1", since, why)
	}
	if since, _ := UnchangedSince(ok()); since != "" {
		t.Errorf("the directory changed: the run stood still on %q", since)
	}
	for name, breakIt := range map[string]func(c *unchangedCheck){
		"directory unchanged":        func(c *unchangedCheck) { c.Read.Entries, c.Read.Deleted = 0, 0 },
		"dry run, retry or approval": func(c *unchangedCheck) { c.MayStandStill = false },
		"not incremental":            func(c *unchangedCheck) { c.Read = nil },
		"full read":                  func(c *unchangedCheck) { c.Read.Full = true },
		"retried attempt":            func(c *unchangedCheck) { c.FirstAttempt = false },
		"no earlier run":             func(c *unchangedCheck) { c.Previous = nil },
		"last run not clean":         func(c *unchangedCheck) { c.Previous.Clean = false },
		"a run overlapped it":        func(c *unchangedCheck) { c.Previous.Overlapping = 1 },
		"inputs changed":             func(c *unchangedCheck) { c.Inputs = "abd" },
		"user failure left":          func(c *unchangedCheck) { c.Failures = 1 },
		"open write intent":          func(c *unchangedCheck) { c.Intents = 1 },
		"account expired since":      func(c *unchangedCheck) { c.Previous.NextExpiry = &earlier },
	} {
		c := ok()
		breakIt(&c)
		if since, why := DeltaSince(c); since != "" || why == "" {
			t.Errorf("%s: since %q, why %q; want the full snapshot", name, since, why)
		}
	}
}

// The inputs' hash changes with each plan input an admin changes, and only then.
func TestPlanInputsHash(t *testing.T) {
	base := func() planInputs {
		return planInputs{ValidatedDomains: []string{"example.com"}, Seats: map[string]int{"meeting": 10},
			SettingsVersion: 3, ThresholdPercent: 10, ThresholdMax: 500, GroupDNs: []string{"cn=a"}, Attributes: []string{"title"}}
	}
	h0, err := base().hash()
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := base().hash(); h != h0 {
		t.Fatalf("the same inputs hash differently")
	}
	for name, change := range map[string]func(p *planInputs){
		"domain":    func(p *planInputs) { p.ValidatedDomains = append(p.ValidatedDomains, "example.org") },
		"seats":     func(p *planInputs) { p.Seats["meeting"] = 11 },
		"version":   func(p *planInputs) { p.SettingsVersion = 4 },
		"threshold": func(p *planInputs) { p.ThresholdMax = 50 },
		"groups":    func(p *planInputs) { p.GroupDNs = []string{"cn=b"} },
		"attrs":     func(p *planInputs) { p.Attributes = nil },
	} {
		p := base()
		change(&p)
		if h, _ := p.hash(); h == h0 {
			t.Errorf("%s changed: same hash", name)
		}
	}
}

// A run is stood on only when it finished complete and clean.
func TestCleanRun(t *testing.T) {
	ok := steps.FinishInput{Kind: vocab.KindScheduled, Status: vocab.RunSucceeded, Outcomes: map[string]int{vocab.Created: 3}}
	if !cleanRun(ok) {
		t.Fatal("a succeeded run without failures is clean")
	}
	for name, breakIt := range map[string]func(f *steps.FinishInput){
		"failed":         func(f *steps.FinishInput) { f.Status = vocab.RunFailed },
		"cancelled":      func(f *steps.FinishInput) { f.Status = vocab.RunCancelled },
		"dry":            func(f *steps.FinishInput) { f.DryRun = true },
		"retry":          func(f *steps.FinishInput) { f.Kind = vocab.KindRetry },
		"user failure":   func(f *steps.FinishInput) { f.Failures = map[string]int{"scim_error": 1} },
		"failed outcome": func(f *steps.FinishInput) { f.Outcomes = map[string]int{vocab.Failed: 1} },
		// A user whose steps could not complete (a store error after retries) has neither a
		// failure nor an open write: the next run must plan it again.
		"errored user":    func(f *steps.FinishInput) { f.Outcomes = map[string]int{vocab.Errored: 1} },
		"held suspension": func(f *steps.FinishInput) { f.Plan.SuspensionsHeld = true },
		"planned failure": func(f *steps.FinishInput) { f.Plan.Fails = 1 },
		"run failure":     func(f *steps.FinishInput) { f.FailureType = "target_auth" },
		"suspicious read": func(f *steps.FinishInput) { f.Plan.Warnings = []string{"directory read is suspiciously small"} },
	} {
		f := ok
		f.Outcomes = map[string]int{vocab.Created: 3}
		breakIt(&f)
		if cleanRun(f) {
			t.Errorf("%s: clean", name)
		}
	}
}
