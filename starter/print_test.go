package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"

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

// A stored value with what breaks each format: a comma and a quote (CSV fields), a
// newline (lines), an escape sequence (terminals) and a leading '=' (spreadsheet formulas).
var hostile = store.Domain{Name: "=HYPERLINK(\"http://x.test\",\"a,b\")\n\x1b[31mred", Validated: true}

func domainsOutput(t *testing.T, args ...string) string {
	t.Helper()
	a := &app{}
	cmd := listing(&cobra.Command{Use: "domains"})
	cmd.Flags().StringVarP(&a.output, "output", "o", outTable, "")
	cmd.Flags().BoolVar(&a.jsonFlag, "json", false, "")
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := a.resolveOutput(cmd); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.SetOut(&out)
	rows := []store.Domain{{Name: "example.com", Validated: true}, hostile}
	if err := emitRows(a, cmd, rowSet[store.Domain]{rows: rows, cols: domainColumns, none: "No domains."}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestTableEscapesStoredValues(t *testing.T) {
	// Escaped as a Go string is: the quotes too.
	want := "DOMAIN                                              VALIDATED\n" +
		"example.com                                         true\n" +
		`=HYPERLINK(\"http://x.test\",\"a,b\")\n\x1b[31mred` + "  true\n"
	if got := domainsOutput(t); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	if got := domainsOutput(t, "--output", "table"); got != want {
		t.Errorf("--output table:\n%s\nwant:\n%s", got, want)
	}
}

func TestCSVQuotesAndDefusesStoredValues(t *testing.T) {
	got := domainsOutput(t, "--output", "csv")
	want := "domain,validated\n" +
		"example.com,true\n" +
		`"'=HYPERLINK(""http://x.test"",""a,b"")\n\x1b[31mred",true` + "\n"
	if got != want {
		t.Errorf("csv:\n%s\nwant:\n%s", got, want)
	}
	recs, err := csv.NewReader(strings.NewReader(got)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[2][0] != `'=HYPERLINK("http://x.test","a,b")\n\x1b[31mred` {
		t.Errorf("read back: %q", recs)
	}
	for in, want := range map[string]string{"+1": "'+1", "-2": "'-2", "@SUM(A1)": "'@SUM(A1)", "a=b": "a=b", "": ""} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestJSONKeepsStoredValuesAsTheyAre(t *testing.T) {
	for _, args := range [][]string{{"--output", "json"}, {"--json"}} {
		var got []store.Domain
		if err := json.Unmarshal([]byte(domainsOutput(t, args...)), &got); err != nil {
			t.Fatal(args, err)
		}
		if len(got) != 2 || got[1] != hostile {
			t.Errorf("%v: %+v", args, got)
		}
	}
}

func TestOutputFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args    []string
		listing bool
		want    string
	}{
		{[]string{"--output", "xml"}, true, `--output "xml": unknown format (valid: table, json, csv)`},
		{[]string{"--output", "csv"}, false, "--output csv: `enable` prints no rows (use --output table or json)"},
		{[]string{"--json", "--output", "csv"}, true, "--json and --output csv: pick one (--json is --output json)"},
	} {
		a := &app{}
		cmd := &cobra.Command{Use: "enable"}
		if c.listing {
			listing(cmd)
		}
		cmd.Flags().StringVarP(&a.output, "output", "o", outTable, "")
		cmd.Flags().BoolVar(&a.jsonFlag, "json", false, "")
		if err := cmd.ParseFlags(c.args); err != nil {
			t.Fatal(err)
		}
		err := a.resolveOutput(cmd)
		if err == nil || err.Error() != c.want {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
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

// A delta run's summary says which users it read and planned, and that its in-scope and
// disabled counts are theirs.
func TestSummaryOfADeltaRun(t *testing.T) {
	var b strings.Builder
	printSummary(&b, steps.RunSummary{FinishInput: steps.FinishInput{RunRef: steps.RunRef{Org: "acme", RunID: "r2"},
		Status: vocab.RunSucceeded, Directory: steps.SnapshotResult{Users: 300, InScope: 2, Groups: 7,
			Delta: &steps.Delta{Since: "r1", Touched: 4}}}})
	out := b.String()
	for _, want := range []string{"delta run: 4 users touched by the directory's changes since run r1; only they were read and planned",
		"directory: 300 users, 2 in scope, 0 disabled, 7 groups (in scope and disabled: among the touched users)"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}
