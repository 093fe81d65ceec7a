// Command chaos-table writes the fault matrix's results (the JSON lines of
// USERSYNC_CHAOS_REPORT) as a table into README.md, between its chaos-table markers.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/usersync/usersync/internal/chaos"
)

func main() {
	report := flag.String("report", "", "JSON lines written by TestFaultMatrix")
	readme := flag.String("readme", "README.md", "file to update")
	flag.Parse()
	if err := run(*report, *readme); err != nil {
		fmt.Fprintln(os.Stderr, "chaos-table:", err)
		os.Exit(1)
	}
}

func run(report, readme string) error {
	f, err := os.Open(report)
	if err != nil {
		return err
	}
	defer f.Close()
	results, err := chaos.ReadResults(f)
	if err != nil {
		return err
	}
	if len(results) == 0 {
		return fmt.Errorf("%s holds no result", report)
	}
	old, err := os.ReadFile(readme)
	if err != nil {
		return err
	}
	table := fmt.Sprintf("Measured %s (`make chaos`):\n\n%s", time.Now().UTC().Format("2006-01-02"), chaos.Table(results))
	updated, err := chaos.ReplaceTable(string(old), table)
	if err != nil {
		return err
	}
	fmt.Print(table)
	return os.WriteFile(readme, []byte(updated), 0o644)
}
