package main

import (
	"context"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// failures shows the held set an approval must name (its size and digest), and
// approve-suspensions does not go without naming one.
func TestFailuresShowsTheHeldSetThatApproveSuspensionsNames(t *testing.T) {
	c := newCLI(t)
	ctx := context.Background()
	st, err := store.Open(ctx, c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, id := range []string{"u-2", "u-1"} {
		if err := st.RecordFailure(ctx, "acme", "run-1", id, id+"@acme.test", vocab.Failure{Type: vocab.SuspensionHeld, Message: "held"}); err != nil {
			t.Fatal(err)
		}
	}
	digest := vocab.HeldDigest([]string{"u-1", "u-2"})
	out := c.must("failures", "--type", "suspension_held")
	if want := "starter approve-suspensions --held 2 --digest " + digest; !strings.Contains(out, want) {
		t.Errorf("failures does not show %q:\n%s", want, out)
	}
	if msg := c.fails("approve-suspensions"); !strings.Contains(msg, "--digest") {
		t.Errorf("approve-suspensions without naming the set: %q", msg)
	}
}
