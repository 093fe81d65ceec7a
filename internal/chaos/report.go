package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// README markers around the fault matrix table.
const (
	TableBegin = "<!-- chaos-table:begin -->"
	TableEnd   = "<!-- chaos-table:end -->"
)

// ReadResults reads the JSON lines TestFaultMatrix appends to USERSYNC_CHAOS_REPORT.
func ReadResults(r io.Reader) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var res Result
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			return nil, fmt.Errorf("report line %q: %w", clip(sc.Text(), 80), err)
		}
		out = append(out, res)
	}
	return out, sc.Err()
}

// Table is the Markdown table of results, one row per fault in the matrix's order: runs,
// invariants checked, violations (with the seeds of the runs that had some).
func Table(results []Result) string {
	type row struct {
		runs, checked, violations, requests, injected, users int
		longest                                              time.Duration
		seeds                                                []string
		first                                                string
	}
	rows := map[string]*row{}
	var order []string
	for _, f := range Matrix() {
		order = append(order, f.Name)
	}
	for _, res := range results {
		r := rows[res.Fault]
		if r == nil {
			r = &row{}
			rows[res.Fault] = r
			known := false
			for _, n := range order {
				known = known || n == res.Fault
			}
			if !known {
				order = append(order, res.Fault)
			}
		}
		r.runs++
		r.checked += res.Checked
		r.violations += len(res.Violations)
		r.requests += res.Requests
		r.injected += res.Injected
		r.users = max(r.users, res.Users)
		r.longest = max(r.longest, res.Duration)
		if len(res.Violations) > 0 {
			r.seeds = append(r.seeds, fmt.Sprint(res.Seed))
			if r.first == "" {
				r.first = res.Violations[0]
			}
		}
	}
	var b strings.Builder
	b.WriteString("| fault | runs | users | SCIM requests | faults injected | invariants checked | violations | longest run | note |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, name := range order {
		r := rows[name]
		if r == nil {
			continue
		}
		note := ""
		if r.violations > 0 {
			note = fmt.Sprintf("seeds %s: %s", strings.Join(r.seeds, ", "), strings.ReplaceAll(clip(r.first, 160), "|", "\\|"))
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %s | %s |\n", name, r.runs, r.users, r.requests, r.injected,
			r.checked, r.violations, r.longest, note)
	}
	return b.String()
}

// ReplaceTable puts table between the markers of readme, which must hold them.
func ReplaceTable(readme, table string) (string, error) {
	i, j := strings.Index(readme, TableBegin), strings.Index(readme, TableEnd)
	if i < 0 || j < i {
		return "", fmt.Errorf("README has no %s ... %s markers", TableBegin, TableEnd)
	}
	return readme[:i+len(TableBegin)] + "\n" + table + readme[j:], nil
}
