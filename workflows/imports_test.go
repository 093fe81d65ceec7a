package workflows

import (
	"os/exec"
	"strings"
	"testing"
)

// The workflow code decides and waits; every read and write goes through activities. A
// dependency on a client of PostgreSQL, LDAP or SCIM (even through a helper package) would let
// workflow code do I/O that replay cannot repeat, so the import graph is checked.
func TestWorkflowsLinkNoIOClient(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/jackc/pgx",
		"github.com/go-ldap/ldap",
		"github.com/usersync/usersync/internal/store",
		"github.com/usersync/usersync/internal/directory",
		"github.com/usersync/usersync/internal/scim",
		"github.com/usersync/usersync/internal/orgs",
		"github.com/usersync/usersync/activities",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("workflows links %s (forbidden prefix %s)", dep, f)
			}
		}
	}
}
