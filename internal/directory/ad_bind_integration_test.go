package directory_test

import (
	"context"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/directory"
)

// A bind the DC refuses because of the service account's state says so, with what an
// administrator must do, not "check the password" (AD's data codes, as Samba sends them).
func TestADBindErrorsSayWhatToDo(t *testing.T) {
	dc := devstacktest.SambaDC(t)
	ctx := context.Background()
	base := "OU=UsersyncBind," + dc.BaseDN()
	const pw = "Bind-Pw-2718!q"
	c, err := adminConn(ctx, dc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	add := func(dn string, attrs map[string][]string) {
		t.Helper()
		r := addRequest(dn, attrs)
		if err := c.Add(r); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
			t.Fatalf("add %s: %v", dn, err)
		}
	}
	account := func(sam, uac string) string {
		dn := "CN=" + sam + "," + base
		add(dn, map[string][]string{"objectClass": {"user"}, "sAMAccountName": {sam}, "userAccountControl": {uac},
			"unicodePwd": {unicodePwd(pw)}})
		return dn
	}
	add(base, map[string][]string{"objectClass": {"organizationalUnit"}})
	disabled := account("bind-disabled", "514") // NORMAL_ACCOUNT | ACCOUNTDISABLE
	locked := account("bind-locked", "512")
	mustChange := account("bind-mustchange", "512")
	m := ldap.NewModifyRequest(mustChange, nil)
	m.Replace("pwdLastSet", []string{"0"}) // "user must change password at next logon"
	if err := c.Modify(m); err != nil {
		t.Fatalf("pwdLastSet=0: %v", err)
	}
	// Lockout for this account only (a password settings object), not for the domain.
	if out, err := dc.Tool(ctx, "domain", "passwordsettings", "pso", "create", "usersync-lockout", "1",
		"--account-lockout-threshold=2", "--account-lockout-duration=30", "--reset-account-lockout-after=30"); err != nil {
		t.Logf("pso create (may exist from an earlier run): %v %s", err, out)
	}
	if out, err := dc.Tool(ctx, "domain", "passwordsettings", "pso", "apply", "usersync-lockout", "bind-locked"); err != nil {
		t.Logf("pso apply: %v %s", err, out)
	}

	cfg := func(dn, password string) directory.Config {
		return directory.Config{URL: dc.LDAPSURL(), CAFile: dc.CAFile(), BindDN: dn, BindPassword: password,
			BaseDN: base, Profile: directory.ProfileAD}
	}
	mustDial(t, cfg(locked, pw)) // the right password binds, before the lockout
	for range 3 {
		if r, err := directory.Dial(ctx, cfg(locked, "Wrong-Pw-1!x")); err == nil {
			r.Close()
			t.Fatal("a wrong password bound")
		}
	}

	dialFails(t, cfg(disabled, pw), "data 533", "disabled", "enable the service account")
	dialFails(t, cfg(locked, pw), "data 775", "locked out", "unlock")
	dialFails(t, cfg(mustChange, pw), "data 773", "must change its password", "set a new password")
	for _, c := range []directory.Config{cfg(disabled, pw), cfg(locked, pw), cfg(mustChange, pw)} {
		if _, err := directory.Dial(ctx, c); err == nil || strings.Contains(err.Error(), "check directory.bindDN") || strings.Contains(err.Error(), pw) {
			t.Errorf("bind as %s: %v; want no advice to check the (right) password, and never the password", c.BindDN, err)
		}
	}
}
