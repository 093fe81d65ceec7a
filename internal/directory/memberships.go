package directory

import (
	"context"
	"slices"
)

// GroupMembers is one group with direct members as read from the directory, all DNs
// normalized. Members may name users, groups, or entries that exist nowhere.
type GroupMembers struct {
	DN      string
	Members []string
}

// MembershipIndex holds the group graph of one Snapshot and answers, per user, which of
// the requested groups hold it. Snapshot feeds it page by page, so an index that keeps
// the graph outside the process (e.g. in PostgreSQL) bounds the reader's memory.
//
// Snapshot calls AddGroups any number of times, then Resolve once, then Lookup once per
// page of user entries, and finally Close, also when it fails. An index serves one
// Snapshot.
type MembershipIndex interface {
	// AddGroups records groups and their direct members. A group may come again with
	// more members (AD ranged retrieval): its members accumulate. A group with no
	// members is still a group.
	AddGroups(ctx context.Context, groups []GroupMembers) error
	// Resolve computes, for every member reachable from requested[i] through nested
	// groups that is not itself a group, the index i. requested is normalized, sorted
	// and unique. It returns the requested DNs that are not groups, in order.
	Resolve(ctx context.Context, requested []string) (missing []string, err error)
	// Lookup returns, for the DNs of one page of users (normalized), the indexes
	// (ascending) of the requested groups that hold each; a DN held by none is absent.
	Lookup(ctx context.Context, dns []string) (map[string][]int, error)
	// Close releases what the index holds. Its context may be cancelled already (Snapshot
	// closes the index also when it was cancelled).
	Close(ctx context.Context) error
}

// NewMemoryIndex returns a MembershipIndex held in process memory: it grows with the
// member DNs of all groups. Snapshot uses it when given no other index.
func NewMemoryIndex() MembershipIndex { return &memoryIndex{graph: groupGraph{}} }

type memoryIndex struct {
	graph   groupGraph       // until Resolve
	members map[string][]int // after Resolve
}

func (m *memoryIndex) AddGroups(_ context.Context, groups []GroupMembers) error {
	for _, g := range groups {
		members := m.graph[g.DN]
		if members == nil {
			members = []string{} // present, and empty
		}
		m.graph[g.DN] = append(members, g.Members...)
	}
	return nil
}

func (m *memoryIndex) Resolve(_ context.Context, requested []string) ([]string, error) {
	var missing []string
	for _, g := range requested {
		if _, ok := m.graph[g]; !ok {
			missing = append(missing, g)
		}
	}
	m.members = m.graph.memberships(requested)
	m.graph = nil // only the memberships are needed from here on
	return missing, nil
}

func (m *memoryIndex) Lookup(_ context.Context, dns []string) (map[string][]int, error) {
	out := map[string][]int{}
	for _, dn := range dns {
		if idx, ok := m.members[dn]; ok {
			out[dn] = slices.Clone(idx)
		}
	}
	return out, nil
}

func (m *memoryIndex) Close(context.Context) error {
	m.graph, m.members = nil, nil
	return nil
}
