// Package directory reads users and groups from Active Directory or OpenLDAP with go-ldap.
package directory

// User is one directory account as a sync sees it.
type User struct {
	ExternalID  string `json:"externalId"` // objectGUID (AD) or entryUUID (OpenLDAP), canonical string form
	DN          string `json:"dn"`
	UserName    string `json:"userName"` // userPrincipalName or mail, per configuration
	Email       string `json:"email"`
	GivenName   string `json:"givenName,omitempty"`
	FamilyName  string `json:"familyName,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
	Disabled    bool   `json:"disabled,omitempty"`
	// Attributes holds the extra source attributes requested (for custom attribute mappings).
	Attributes map[string]string `json:"attributes,omitempty"`
	// Groups are the normalized DNs of the requested (ruled) groups that hold the user,
	// directly or through nested groups.
	Groups []string `json:"groups"`
	// Problems lists the values of the entry that could not be taken as the directory holds
	// them (see values.go), each naming the attribute and never the value, e.g.
	// `attribute "displayName": contains a NUL character`. The values themselves are stored
	// repaired (NUL and invalid UTF-8 replaced by U+FFFD, oversize cut), so the user can be
	// stored and planned; the plan fails a user with Problems as invalid_user_data.
	Problems []string `json:"problems,omitempty"`
}
