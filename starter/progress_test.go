package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)} }
func snap(phase string, done, total, failed int) progressSnap {
	return progressSnap{RunID: "usersync/acme/run/r1", Phase: phase, Done: done, Total: total, Failed: failed}
}

// One run as a view sees it: steps of the fake clock, then the snapshot it was shown.
type step struct {
	after time.Duration
	snap  progressSnap
	final bool
}

var aRun = []step{
	{0, snap("reading directory", 0, 0, 0), false},
	{1500 * time.Millisecond, snap("planning", 0, 0, 0), false},
	{time.Second, snap("provisioning", 0, 1000, 0), false},
	{100 * time.Millisecond, snap("provisioning", 250, 1000, 2), false}, // too soon for either mode
	{2 * time.Second, snap("provisioning", 250, 1000, 2), false},        // 2.1 s after provisioning began: 119 users/s
	{3 * time.Second, snap("provisioning", 500, 1000, 3), false},        // 5.1 s: 98 users/s, 5 s to go
	{5 * time.Second, snap("groups", 1000, 1000, 4), false},
	{1 * time.Second, snap("succeeded", 1000, 1000, 4), true},
}

func play(v *progressView, c *fakeClock, steps []step) {
	for _, s := range steps {
		c.add(s.after)
		if s.final {
			v.finish(s.snap)
		} else {
			v.show(s.snap)
		}
	}
}

func TestProgressLinesOnePerPhaseAndEveryFewSeconds(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	play(&progressView{w: &out, now: c.now}, c, aRun)
	want := `2026-12-02T04:00:00Z run usersync/acme/run/r1: reading directory (0s)
2026-12-02T04:00:01Z run usersync/acme/run/r1: planning (0s)
2026-12-02T04:00:02Z run usersync/acme/run/r1: provisioning 0/1000 users (0%), - users/s, ETA -, 0 failed
2026-12-02T04:00:07Z run usersync/acme/run/r1: provisioning 500/1000 users (50%), 98.0 users/s, ETA 5s, 3 failed
2026-12-02T04:00:12Z run usersync/acme/run/r1: groups 1000/1000 users (100%), 99.0 users/s, 4 failed
2026-12-02T04:00:13Z run usersync/acme/run/r1: succeeded 1000/1000 users (100%), 90.1 users/s, 4 failed
`
	if got := out.String(); got != want {
		t.Errorf("lines:\n%s\nwant:\n%s", got, want)
	}
}

func TestProgressBarRedrawsOneLineAtMostFourTimesASecond(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	play(&progressView{w: &out, bar: true, now: c.now}, c, aRun)
	frames := []string{
		"reading directory (0s)",
		"planning (0s)         ", // blanks the longer line before
		"provisioning [--------------------] 0/1000 users (0%), - users/s, ETA -, 0 failed",
		"provisioning [#####---------------] 250/1000 users (25%), 119.0 users/s, ETA 6s, 2 failed",
		"provisioning [##########----------] 500/1000 users (50%), 98.0 users/s, ETA 5s, 3 failed ",
		"groups [####################] 1000/1000 users (100%), 99.0 users/s, 4 failed            ",
		"succeeded [####################] 1000/1000 users (100%), 90.1 users/s, 4 failed",
	}
	want := "\r" + strings.Join(frames, "\r") + "\n"
	if got := out.String(); got != want {
		t.Errorf("bar:\n%q\nwant:\n%q", got, want)
	}
}

// A run the view never saw running (status --wait came late): its final counts alone.
func TestProgressFinalCountsOfARunNotSeenRunning(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	v := &progressView{w: &out, now: c.now}
	v.finish(snap("succeeded", 300, 300, 12))
	want := "2026-12-02T04:00:00Z run usersync/acme/run/r1: succeeded 300/300 users (100%), - users/s, 12 failed\n"
	if got := out.String(); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// status --wait joins a run halfway: the rate counts only the users done since it looked.
func TestProgressRateOfARunJoinedHalfway(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	v := &progressView{w: &out, now: c.now}
	v.show(snap("provisioning", 500, 1000, 7))
	c.add(2 * time.Second)
	v.show(snap("provisioning", 700, 1000, 9)) // too soon for a line
	c.add(3 * time.Second)
	v.show(snap("provisioning", 750, 1000, 9))
	want := `2026-12-02T04:00:00Z run usersync/acme/run/r1: provisioning 500/1000 users (50%), - users/s, ETA -, 7 failed
2026-12-02T04:00:05Z run usersync/acme/run/r1: provisioning 750/1000 users (75%), 50.0 users/s, ETA 5s, 9 failed
`
	if got := out.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// A run that had no user to write (or a dry run) ends with its status alone.
func TestProgressFinalLineOfARunWithoutUsers(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	v := &progressView{w: &out, bar: true, now: c.now}
	v.show(snap("planning", 0, 0, 0))
	c.add(3 * time.Second)
	v.finish(snap("succeeded", 0, 0, 0))
	if got, want := out.String(), "\rplanning (0s)\rsucceeded, 0 users written\n"; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestProgressModes(t *testing.T) {
	for _, c := range []struct {
		output, mode string
		want         string // bar, lines, none
		stderr       bool
	}{
		{outTable, progressAuto, "lines", false}, // a buffer is no terminal
		{outTable, progressBar, "bar", false},
		{outTable, progressNone, "none", false},
		{outJSON, progressAuto, "none", false},
		{outCSV, progressLines, "lines", true}, // asked for: beside the CSV, not in it
	} {
		a := &app{output: c.output}
		cmd := &cobra.Command{}
		var out, errOut bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		v, err := a.progressView(cmd, c.mode)
		if err != nil {
			t.Fatal(err)
		}
		got := "none"
		switch {
		case v != nil && v.bar:
			got = "bar"
		case v != nil:
			got = "lines"
		}
		if got != c.want || (v != nil && (v.w == &errOut) != c.stderr) {
			t.Errorf("--output %s --progress %s: %s (on stderr: %v), want %s (%v)", c.output, c.mode, got, v != nil && v.w == &errOut, c.want, c.stderr)
		}
	}
	_, err := (&app{output: outTable}).progressView(&cobra.Command{}, "fancy")
	if err == nil || err.Error() != `--progress "fancy": unknown display (valid: auto, bar, lines, none)` {
		t.Errorf("bad mode: %v", err)
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(f) || isTerminal(w) || isTerminal(&bytes.Buffer{}) {
		t.Error("a file, a pipe or a buffer taken for a terminal")
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !isTerminal(tty) {
			t.Error("/dev/tty not taken for a terminal")
		}
	}
}
