package plan

import (
	"slices"

	"github.com/usersync/usersync/internal/directory"
)

// Settler tells, one directory user at a time, whether a user needs no work at all. A caller
// streaming a large directory passes Plan only the other users and counts the settled ones in
// Input.Settled (leaving them out of Input.Applied too), so that a resync's memory grows with
// the changes rather than with the directory.
type Settler struct{ p planner }

// NewSettler prepares in's rules, mappings, domains, failures and held seats (Users and
// Applied are not used).
func NewSettler(in Input) *Settler {
	return &Settler{p: planner{in: in, rules: prepareRules(in.Rules), heldBy: heldBy(in.Held)}}
}

// Settled reports whether u is in scope, valid, not failed, holds exactly the seats of its
// products, and its desired state hashes to appliedHash (the hash of its last applied state;
// "" when not linked): exactly the users Plan would count as unchanged.
func (s *Settler) Settled(u directory.User, appliedHash string) bool {
	if appliedHash == "" {
		return false
	}
	if _, failed := s.p.in.Failed[u.ExternalID]; failed {
		return false
	}
	a, ok := s.p.resolve(u)
	if !ok {
		return false
	}
	d := Build(u, a, s.p.in.Mappings)
	if CheckUser(d, s.p.in.ValidatedDomains) != nil || !slices.Equal(s.p.heldBy[u.ExternalID], setOf(d.Products)) {
		return false
	}
	return d.Hash() == appliedHash
}
