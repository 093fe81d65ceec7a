package directory

import "github.com/usersync/usersync/internal/rules"

// normalizeDN is the DN form used to match groups and members. It must be exactly the form
// of rules.Rule.GroupDN, so that a user's Groups match the rules that name them.
func normalizeDN(dn string) string { return rules.NormalizeDN(dn) }
