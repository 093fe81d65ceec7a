package main

import (
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// Stored values come from directories and targets: escape sequences are shown, not obeyed.
func TestPrintableEscapesWhatWouldDriveTheTerminal(t *testing.T) {
	for in, want := range map[string]string{
		"ann@example.com":            "ann@example.com",
		"Zoë Ünal":                   "Zoë Ünal",
		"evil\x1b[2J\x1b[31m@x.test": `evil\x1b[2J\x1b[31m@x.test`,
		"tab\there":                  `tab\there`,
		"csi\u009b31m":               `csi\u009b31m`,
		"rtl\u202eoverride@x.test":   `rtl\u202eoverride@x.test`,
		"new\nline":                  `new\nline`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// `starter explain` and a run's summary print what the directory and the target sent (a
// userName, a failure message, a run error): its escape sequences are shown, not obeyed.
func TestExplainAndSummaryEscapeStoredValues(t *testing.T) {
	const evil = "evil\x1b[2J\x1b]0;owned\x07\r@x.test"
	var b strings.Builder
	printExplanation(&b, explainResult{Query: evil, Known: true, Failure: &store.FailureRecord{
		UserName: evil, ExternalID: "e1\x1b[31m", Failure: vocab.Failure{Type: vocab.ExistingAccount, Message: "target said: " + evil}}})
	printSummary(&b, steps.RunSummary{FinishInput: steps.FinishInput{RunRef: steps.RunRef{Org: "acme", RunID: "r1"},
		Status: vocab.RunFailed, Error: "scim: " + evil}})
	out := b.String()
	for _, c := range []string{"\x1b", "\x07", "\r"} {
		if strings.Contains(out, c) {
			t.Fatalf("output holds %q raw:\n%s", c, out)
		}
	}
	if !strings.Contains(out, `User evil\x1b[2J\x1b]0;owned\a\r@x.test (externalId e1\x1b[31m)`) ||
		!strings.Contains(out, `target said: evil\x1b[2J`) || !strings.Contains(out, `error: scim: evil\x1b[2J`) {
		t.Fatalf("the values are not shown escaped:\n%s", out)
	}
	if !strings.Contains(out, "\n") {
		t.Fatal("line breaks are kept")
	}
}
