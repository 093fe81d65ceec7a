package chaos

import (
	"strings"
	"testing"
)

// The table sums runs per fault and names the seeds of the runs with violations; the README
// keeps everything outside its markers.
func TestTableAndREADME(t *testing.T) {
	results, err := ReadResults(strings.NewReader(`{"fault":"lost-201-5pct","seed":1,"users":3000,"invariantsChecked":14,"violations":[]}
{"fault":"lost-201-5pct","seed":2,"users":3000,"invariantsChecked":14,"violations":["resync: no duplicate accounts: userName a has 2 accounts"]}
{"fault":"worker-sigkill","seed":3,"users":3000,"invariantsChecked":14}
`))
	must(t, err)
	table := Table(results)
	if !strings.Contains(table, "| worker-sigkill | 1 | 3000 |") ||
		!strings.Contains(table, "| lost-201-5pct | 2 | 3000 | 0 | 0 | 28 | 1 |") ||
		!strings.Contains(table, "seeds 2: resync: no duplicate accounts") {
		t.Fatalf("table:\n%s", table)
	}
	if strings.Index(table, "worker-sigkill") > strings.Index(table, "lost-201-5pct") {
		t.Fatalf("rows not in the matrix's order:\n%s", table)
	}
	readme := "# x\n\nbefore\n" + TableBegin + "\nold\n" + TableEnd + "\nafter\n"
	out, err := ReplaceTable(readme, table)
	must(t, err)
	if strings.Contains(out, "old") || !strings.HasPrefix(out, "# x\n\nbefore\n") || !strings.HasSuffix(out, TableEnd+"\nafter\n") {
		t.Fatalf("README:\n%s", out)
	}
	if _, err := ReplaceTable("no markers", table); err == nil {
		t.Fatal("a README without markers must be refused")
	}
}
