// Package vocab is the sync's vocabulary: the words that the workflows, the activities, the
// planner, the store and the CLI share, and that are stored in PostgreSQL, carried in
// workflow histories or shown to admins. Run statuses and kinds, failure types (per user and
// per run) with what an admin can do about each, the outcomes of one user, the types of
// history events, and the small records made of them (Failure, Filter, Banner, Event).
//
// It does no I/O and imports no Temporal package: every package of usersync may import it,
// the workflow code included. The values are part of stored data and of recorded workflow
// histories: never change one.
package vocab
