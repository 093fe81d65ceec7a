// Package steps is the contract between the workflows and the activities: the names of the
// steps (activities) as Temporal knows them, and the payloads they take and return. The
// workflows schedule steps by these names, so that workflow code links neither the
// activities nor what they use (PostgreSQL, LDAP, HTTP); internal/engine.Steps lists the
// same steps as methods, and a test checks that both agree with *activities.Activities.
//
// Payloads carry IDs, counts and summaries, never user records. Their JSON is what workflow
// histories hold: never rename a step or a JSON field.
package steps
