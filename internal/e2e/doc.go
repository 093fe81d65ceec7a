// Package e2e holds the end-to-end tests: a real Temporal dev server, PostgreSQL, OpenLDAP
// slapd seeded with the demo organization, and the SCIM sandbox, driven the way ops drive
// usersync (signals and queries of the organization's workflow).
package e2e
