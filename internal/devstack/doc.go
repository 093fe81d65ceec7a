// Package devstack starts and stops the local services usersync needs
// (PostgreSQL, the Temporal dev server, OpenLDAP's slapd, the SCIM sandbox and
// the worker) from the binaries installed on the machine, without Docker.
// Integration tests use it to get throw-away servers; the devstack command
// uses it to run the demo stack under ./.stack.
package devstack
