package demo

import (
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Active Directory's userAccountControl of the demo's users: a normal account that needs no
// password (the demo never logs in), and the same disabled (bit 0x2).
const (
	adEnabled  = "544"
	adDisabled = "546"
)

// ADEntries is the demo organization d as an Active Directory DC holds it, under the same
// DNs' containers (a DC of the domain EXAMPLE.COM has d's suffix as its base): its People
// and Groups OUs, users (class user, RDN CN=<uid>), and groups (class group), whose members
// are set afterwards by the modifications, since a group's member must exist first and
// two groups contain each other. d's rules name the same group DNs.
//
// A user's userPrincipalName (the AD profile's userName) is their mail when it is an
// address, so the demo's special users fail as they do on OpenLDAP; disabled users have
// userAccountControl bit 0x2 instead of employeeType=disabled.
func (d Demo) ADEntries() (adds []*ldap.AddRequest, members []*ldap.ModifyRequest, err error) {
	dns := map[string]string{} // OpenLDAP DN (lower case) -> the DC's
	var groups []*ldap.AddRequest
	for _, e := range d.Entries {
		classes := strings.ToLower(strings.Join(attrValues(e, "objectClass"), " "))
		switch {
		case strings.Contains(classes, "dcobject"): // the domain itself
		case strings.Contains(classes, "organizationalunit"):
			ou := ldap.NewAddRequest(e.DN, nil)
			ou.Attribute("objectClass", []string{"organizationalUnit"})
			adds = append(adds, ou)
		case strings.Contains(classes, "inetorgperson"):
			u, err := adUser(e)
			if err != nil {
				return nil, nil, err
			}
			dns[strings.ToLower(e.DN)] = u.DN
			adds = append(adds, u)
		case strings.Contains(classes, "groupofnames"):
			groups = append(groups, e)
		default:
			return nil, nil, fmt.Errorf("demo entry %s: objectClass %q has no Active Directory form", e.DN, classes)
		}
	}
	for _, g := range groups {
		name := first(g, "cn")
		a := ldap.NewAddRequest(g.DN, nil)
		a.Attribute("objectClass", []string{"group"})
		a.Attribute("sAMAccountName", []string{name})
		if v := first(g, "description"); v != "" {
			a.Attribute("description", []string{v})
		}
		adds = append(adds, a)
		var ms []string
		for _, m := range attrValues(g, "member") {
			if strings.EqualFold(m, g.DN) {
				continue // groupOfNames' stand-in member of an empty group (Interns)
			}
			if dn, ok := dns[strings.ToLower(m)]; ok {
				m = dn
			}
			ms = append(ms, m)
		}
		if len(ms) > 0 {
			mod := ldap.NewModifyRequest(g.DN, nil)
			mod.Add("member", ms)
			members = append(members, mod)
		}
	}
	return adds, members, nil
}

// adUser is a demo person as an AD user.
func adUser(e *ldap.AddRequest) (*ldap.AddRequest, error) {
	uid := first(e, "uid")
	if uid == "" || len(uid) > 20 { // sAMAccountName: at most 20 characters
		return nil, fmt.Errorf("demo entry %s: uid %q is no sAMAccountName", e.DN, uid)
	}
	_, parent, _ := strings.Cut(e.DN, ",")
	u := ldap.NewAddRequest("CN="+uid+","+parent, nil)
	u.Attribute("objectClass", []string{"user"})
	u.Attribute("sAMAccountName", []string{uid})
	uac := adEnabled
	if strings.EqualFold(first(e, "employeeType"), "disabled") {
		uac = adDisabled
	}
	u.Attribute("userAccountControl", []string{uac})
	if mail := first(e, "mail"); strings.Contains(mail, "@") {
		u.Attribute("userPrincipalName", []string{mail})
	}
	for _, a := range []string{"givenName", "sn", "displayName", "mail", "employeeNumber", "departmentNumber", "l"} {
		if v := attrValues(e, a); len(v) > 0 {
			u.Attribute(a, v)
		}
	}
	return u, nil
}

func attrValues(e *ldap.AddRequest, name string) []string {
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Type, name) {
			return a.Vals
		}
	}
	return nil
}

func first(e *ldap.AddRequest, name string) string {
	if v := attrValues(e, name); len(v) > 0 {
		return v[0]
	}
	return ""
}
