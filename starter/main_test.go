package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
)

// TestMain lets a test run the real main (exit code and stderr) by re-executing the test binary.
func TestMain(m *testing.M) {
	if os.Getenv("STARTER_RUN_MAIN") == "1" {
		os.Args = append([]string{"starter"}, strings.Fields(os.Getenv("STARTER_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// cli runs the starter in-process against one database and org and returns its output.
type cli struct {
	t     *testing.T
	dbURL string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	return &cli{t: t, dbURL: devstacktest.Database(t)}
}

func (c *cli) run(args ...string) (string, error) {
	c.t.Helper()
	return execute(append([]string{"--database-url", c.dbURL, "--org", "acme", "--temporal-address", "127.0.0.1:1"}, args...)...)
}

// must runs a command that has to succeed.
func (c *cli) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("starter %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// fails runs a command that has to fail and returns its error message.
func (c *cli) fails(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err == nil {
		c.t.Fatalf("starter %s: succeeded, want an error\n%s", strings.Join(args, " "), out)
	}
	return err.Error()
}

func execute(args ...string) (string, error) {
	root, a := newRoot()
	defer a.close()
	var buf bytes.Buffer
	root.SetOut(&buf)
	root.SetErr(&buf)
	root.SetArgs(args)
	err := root.Execute()
	return buf.String(), err
}

func TestEveryCommandHelpShowsAnExample(t *testing.T) {
	root, _ := newRoot()
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Name() == "help" {
				continue
			}
			path := strings.Fields(sub.CommandPath())[1:]
			out, err := execute(append(path, "--help")...)
			if err != nil {
				t.Errorf("%s --help: %v", sub.CommandPath(), err)
			}
			if !strings.Contains(out, "Example") {
				t.Errorf("%s --help has no Example:\n%s", sub.CommandPath(), out)
			}
			n++
			walk(sub)
		}
	}
	walk(root)
	if n < 30 {
		t.Errorf("checked %d commands, want the whole tree (30+)", n)
	}
}

func TestFailingCommandExitsNonZeroWithTheErrorOnStderr(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "STARTER_RUN_MAIN=1", "STARTER_ARGS=retry --type bogus")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("exit: %v, want a non-zero exit code", err)
	}
	if !strings.Contains(stderr.String(), `--type "bogus"`) {
		t.Errorf("stderr = %q, want the error naming --type and its value", stderr.String())
	}
}

func TestSuccessfulCommandExitsZero(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "STARTER_RUN_MAIN=1", "STARTER_ARGS=rules --help")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rules --help: %v\n%s", err, out)
	}
}
