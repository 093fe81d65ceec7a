package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

var header = []string{"N", "scenario", "wall", "users/s", "users with work", "SCIM requests", "req/s",
	"worker peak RSS", "longest history", "note"}

func format(r Row) string {
	return strings.Join(cells(r), " | ")
}

func cells(r Row) []string {
	rss, hist := "-", "-"
	if r.PeakRSSMB > 0 {
		rss = fmt.Sprintf("%.0f MB", r.PeakRSSMB)
	}
	if r.MaxHistory > 0 {
		hist = fmt.Sprint(r.MaxHistory)
	}
	return []string{fmt.Sprint(r.N), r.Scenario, r.Wall.Round(10 * time.Millisecond).String(),
		fmt.Sprintf("%.0f", r.UsersPerS), fmt.Sprint(r.Work), fmt.Sprint(r.Requests), fmt.Sprintf("%.1f", r.ReqPerS),
		rss, hist, r.Note}
}

// Markdown prints the rows as a Markdown table.
func Markdown(w io.Writer, rows []Row) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(header, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat(" --- |", len(header)))
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |\n", format(r))
	}
}
