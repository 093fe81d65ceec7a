package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// The values of --progress.
const (
	progressAuto  = "auto" // bar on a terminal, lines otherwise
	progressBar   = "bar"
	progressLines = "lines"
	progressNone  = "none"
)

const (
	// barEvery bounds the bar's redraws (about 4 a second).
	barEvery = 250 * time.Millisecond
	// linesEvery is the pace of the plain lines between phase changes.
	linesEvery = 5 * time.Second
	barWidth   = 20
)

// progressFlag adds --progress to run and status.
func progressFlag(cmd *cobra.Command, mode *string) {
	cmd.Flags().StringVar(mode, "progress", progressAuto,
		"progress display while a sync runs: auto (a bar on a terminal, timestamped lines otherwise), bar, lines or none")
}

// progressView is the display a flag asks for, or nil for none. The display goes to
// standard output beside the table output; with --output json or csv it stays off unless
// asked for, and then goes to standard error, so that the output stays machine-readable.
func (a *app) progressView(cmd *cobra.Command, mode string) (*progressView, error) {
	w := cmd.OutOrStdout()
	if a.output != outTable {
		if mode == progressAuto {
			return nil, nil
		}
		w = cmd.ErrOrStderr()
	}
	switch mode {
	case progressNone:
		return nil, nil
	case progressAuto:
		if isTerminal(w) {
			mode = progressBar
		} else {
			mode = progressLines
		}
	case progressBar, progressLines:
	default:
		return nil, fmt.Errorf("--progress %q: unknown display (valid: auto, bar, lines, none)", mode)
	}
	return &progressView{w: w, bar: mode == progressBar, now: time.Now}, nil
}

// isTerminal says whether w is a terminal (a character device): the bar redraws its line
// with a carriage return, which a pipe or a CI log would keep as garbage.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressSnap is a run's progress at one moment: counts only, never a user.
type progressSnap struct {
	RunID  string
	Phase  string
	Done   int // users done (including the failed ones)
	Total  int // users the run works on (0: not known yet)
	Failed int
}

func snapOf(p workflows.Progress) progressSnap {
	return progressSnap{RunID: p.RunID, Phase: p.Phase, Done: p.UsersDone, Total: p.Items, Failed: p.UsersFailed}
}

// snapOfSummary is a finished run's final counts; its phase is the run's status.
func snapOfSummary(s steps.RunSummary) progressSnap {
	done := 0
	for _, n := range s.Outcomes {
		done += n
	}
	total := s.Plan.Items
	if s.DryRun {
		done, total = 0, 0 // a dry run writes no one
	}
	return progressSnap{RunID: s.RunID, Phase: s.Status, Done: done, Total: total, Failed: s.Outcomes[vocab.Failed]}
}

// progressView draws the progress of the runs it is shown, one after the other: a bar
// redrawn in place (carriage return, at most every barEvery), or plain timestamped lines
// (one per phase change and every linesEvery). The rate is measured by the view itself,
// from the first time it saw the run's counts: a view that joins a run halfway does not
// credit the time before it to the users done before it.
type progressView struct {
	w   io.Writer
	bar bool
	now func() time.Time

	run, phase string
	phaseAt    time.Time    // when the phase was first seen
	base       progressSnap // the rate's start: when the run's counts were first seen...
	baseAt     time.Time    // ...and at what time
	drawnAt    time.Time
	width      int  // bar: the length of the line drawn
	open       bool // bar: a line is drawn and not ended
}

// show draws s if it is time to: a new run or phase at once, else at the mode's pace.
func (p *progressView) show(s progressSnap) {
	if p == nil {
		return
	}
	now := p.now()
	if s.RunID != p.run && p.run != "" {
		p.end()
	}
	changed := s.RunID != p.run || s.Phase != p.phase
	if s.RunID != p.run || (p.base.Total == 0 && s.Total > 0) {
		p.base, p.baseAt = s, now
	}
	if changed {
		p.run, p.phase, p.phaseAt = s.RunID, s.Phase, now
	}
	every := linesEvery
	if p.bar {
		every = barEvery
	}
	if !changed && now.Sub(p.drawnAt) < every {
		return
	}
	p.draw(s, now, false)
}

// finish draws a run's final counts (the run's status as its phase) and ends the line.
func (p *progressView) finish(s progressSnap) {
	if p == nil {
		return
	}
	if p.run != "" && s.RunID != p.run {
		p.end()
	}
	if s.RunID != p.run { // never seen running: the final line alone
		p.run, p.base, p.baseAt, p.phaseAt = s.RunID, s, p.now(), p.now()
	}
	p.phase = s.Phase
	p.draw(s, p.now(), true)
	p.end()
	p.run = ""
}

// end ends the bar's line, so that what follows starts on its own line.
func (p *progressView) end() {
	if p == nil {
		return
	}
	if p.open {
		fmt.Fprintln(p.w)
	}
	p.open, p.width = false, 0
}

func (p *progressView) draw(s progressSnap, now time.Time, final bool) {
	p.drawnAt = now
	text := p.text(s, now, final)
	if !p.bar {
		fmt.Fprintf(p.w, "%s run %s: %s\n", now.UTC().Format(time.RFC3339), s.RunID, text)
		return
	}
	pad := ""
	if n := p.width - len(text); n > 0 {
		pad = strings.Repeat(" ", n) // blank what the longer line before left
	}
	fmt.Fprint(p.w, "\r"+text+pad)
	p.width, p.open = len(text), true
}

// text is the progress without the line's framing: phase, (bar,) counts, rate, ETA, failures.
func (p *progressView) text(s progressSnap, now time.Time, final bool) string {
	var b strings.Builder
	b.WriteString(printable(s.Phase))
	if s.Total <= 0 && !final {
		fmt.Fprintf(&b, " (%s)", shortDuration(now.Sub(p.phaseAt)))
		return b.String()
	}
	if s.Total <= 0 { // a run with no user to write, a dry run, or one that stopped before
		b.WriteString(", 0 users written")
		return b.String()
	}
	if p.bar {
		fill := min(s.Done, s.Total) * barWidth / s.Total
		b.WriteString(" [" + strings.Repeat("#", fill) + strings.Repeat("-", barWidth-fill) + "]")
	}
	fmt.Fprintf(&b, " %d/%d users (%d%%)", s.Done, s.Total, min(s.Done, s.Total)*100/s.Total)
	rate, known := 0.0, false
	if el := now.Sub(p.baseAt).Seconds(); el > 0 && s.Done > p.base.Done {
		rate, known = float64(s.Done-p.base.Done)/el, true
	}
	switch {
	case known:
		fmt.Fprintf(&b, ", %.1f users/s", rate)
	default:
		b.WriteString(", - users/s")
	}
	if !final && s.Done < s.Total { // no ETA once all users are done (groups)
		eta := "-"
		if known {
			eta = shortDuration(time.Duration(float64(max(s.Total-s.Done, 0)) / rate * float64(time.Second)))
		}
		b.WriteString(", ETA " + eta)
	}
	fmt.Fprintf(&b, ", %d failed", s.Failed)
	return b.String()
}

// shortDuration is 42s, 3m05s or 1h02m.
func shortDuration(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", max(s, 0))
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	default:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
}
