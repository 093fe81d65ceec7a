package directory_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/rules"
)

// The AD tests run against a real Samba AD DC (devstacktest.SambaDC: one per test
// binary), populated once with the organization below, under OU=UsersyncTest.
const (
	adUPNSuffix = "@corp.example.test"
	adBulkUsers = 3000
	adReaderPW  = "Reader-Pw-4711!x"
)

type adOrg struct {
	dc       *devstack.SambaDC
	base     string // OU=UsersyncTest,DC=corp,DC=example,DC=test
	readerDN string
	// DNs as created
	ann, bob, cat, dan, eve, contact, computer string
	sales, eng, cycleA, cycleB, all, big       string
	// loadTime is how long populating the DC took.
	loadTime time.Duration
}

var adShared struct {
	once sync.Once
	org  *adOrg
	err  error
}

func adDC(t *testing.T) *adOrg {
	t.Helper()
	dc := devstacktest.SambaDC(t)
	adShared.once.Do(func() {
		t0 := time.Now()
		adShared.org, adShared.err = populateAD(context.Background(), dc)
		if adShared.org != nil {
			adShared.org.loadTime = time.Since(t0)
		}
	})
	if adShared.err != nil {
		t.Fatalf("populate the Samba DC: %v", adShared.err)
	}
	return adShared.org
}

func (o *adOrg) caPool(t *testing.T) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(o.dc.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return pool
}

// config reads as the unprivileged service account over LDAPS.
func (o *adOrg) config(mutate ...func(*directory.Config)) directory.Config {
	c := directory.Config{URL: o.dc.LDAPSURL(), CAFile: o.dc.CAFile(), BindDN: o.readerDN, BindPassword: adReaderPW,
		BaseDN: o.base, Profile: directory.ProfileAD, PageSize: 400}
	for _, m := range mutate {
		m(&c)
	}
	return c
}

// addRequest is the LDAP add of dn with attrs (the AD tests' entries, built as maps).
func addRequest(dn string, attrs map[string][]string) *ldap.AddRequest {
	r := ldap.NewAddRequest(dn, nil)
	for k, v := range attrs {
		r.Attribute(k, v)
	}
	return r
}

func adminConn(ctx context.Context, dc *devstack.SambaDC) (*ldap.Conn, error) {
	b, err := os.ReadFile(dc.CAFile())
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	c, err := ldap.DialURL(dc.LDAPSURL(), ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, ServerName: dc.ServerName()}))
	if err != nil {
		return nil, err
	}
	if err := c.Bind(dc.AdminDN(), dc.AdminPassword); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// unicodePwd is AD's password attribute value: the quoted password in UTF-16LE.
func unicodePwd(pw string) string {
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		b[2*i], b[2*i+1] = byte(r), byte(r>>8)
	}
	return string(b)
}

// fileTime is t as AD's accountExpires: 100ns intervals since 1601-01-01 UTC.
func fileTime(t time.Time) string {
	return fmt.Sprint((t.Unix() + 11644473600) * 10_000_000)
}

func populateAD(ctx context.Context, dc *devstack.SambaDC) (*adOrg, error) {
	base := "OU=UsersyncTest," + dc.BaseDN()
	people, groups, bulk := "OU=People,"+base, "OU=Groups,"+base, "OU=Bulk,"+base
	o := &adOrg{dc: dc, base: base, readerDN: "CN=svc-usersync,OU=Service," + base,
		ann: `CN=Lee\, Ann,` + people, bob: "CN=Bob Disabled," + people, cat: "CN=Cat Expired," + people,
		dan: "CN=Dan Future," + people, eve: "CN=Eve Never," + people,
		contact: "CN=Carl Contact," + people, computer: "CN=WS01," + people,
		sales: `CN=Sales\, EMEA,` + groups, eng: "CN=Engineering," + groups, cycleA: "CN=Cycle A," + groups,
		cycleB: "CN=Cycle B," + groups, all: "CN=All," + groups, big: "CN=Big," + groups}

	add := func(dn string, attrs ...[2]any) *ldap.AddRequest {
		e := ldap.NewAddRequest(dn, nil)
		for _, a := range attrs {
			switch v := a[1].(type) {
			case string:
				e.Attribute(a[0].(string), []string{v})
			case []string:
				e.Attribute(a[0].(string), v)
			}
		}
		return e
	}
	attr := func(name string, v any) [2]any { return [2]any{name, v} }
	ou := func(dn string) *ldap.AddRequest { return add(dn, attr("objectClass", "organizationalUnit")) }
	user := func(dn, sam, uac string, more ...[2]any) *ldap.AddRequest {
		return add(dn, append([]([2]any){attr("objectClass", "user"), attr("sAMAccountName", sam),
			attr("userPrincipalName", sam+adUPNSuffix), attr("userAccountControl", uac)}, more...)...)
	}
	entries := []*ldap.AddRequest{
		ou(base), ou(people), ou(groups), ou(bulk), ou("OU=Service," + base),
		// 544 = NORMAL_ACCOUNT | PASSWD_NOTREQD: enabled, no password needed for these.
		user(o.ann, "ann", "544", attr("mail", "ann.lee@corp.example.test"), attr("givenName", "Ann"),
			attr("sn", "Lee"), attr("displayName", "Ann Lee")),
		user(o.bob, "bob", "514"), // NORMAL_ACCOUNT | ACCOUNTDISABLE
		user(o.cat, "cat", "544", attr("accountExpires", "129000000000000000")), // 2009
		user(o.dan, "dan", "544", attr("accountExpires", fileTime(time.Now().AddDate(5, 0, 0)))),
		user(o.eve, "eve", "544", attr("accountExpires", "0")),
		add(o.contact, attr("objectClass", "contact"), attr("mail", "carl@partner.example")),
		add(o.computer, attr("objectClass", "computer"), attr("sAMAccountName", "WS01$"), attr("userAccountControl", "4096")),
	}
	for i := 1; i <= adBulkUsers; i++ {
		entries = append(entries, user(fmt.Sprintf("CN=bulk%04d,%s", i, bulk), fmt.Sprintf("bulk%04d", i), "544"))
	}
	// Plain LDAP (the DC allows it) and several connections: the bulk load is the slow part.
	if err := devstack.LoadEntries(ctx, dc.URL(), dc.AdminDN(), dc.AdminPassword, entries); err != nil {
		return nil, err
	}

	c, err := adminConn(ctx, dc)
	if err != nil {
		return nil, fmt.Errorf("admin over ldaps: %w", err)
	}
	defer c.Close()
	// A password can only be set over an encrypted connection.
	reader := user(o.readerDN, "svc-usersync", "512", attr("unicodePwd", unicodePwd(adReaderPW)))
	var bigMembers []string
	for i := 1; i <= adBulkUsers; i++ {
		bigMembers = append(bigMembers, fmt.Sprintf("CN=bulk%04d,%s", i, bulk))
	}
	group := func(dn, sam string, members ...string) *ldap.AddRequest {
		g := add(dn, attr("objectClass", "group"), attr("sAMAccountName", sam))
		if len(members) > 0 {
			g.Attribute("member", members)
		}
		return g
	}
	for _, e := range []*ldap.AddRequest{
		reader,
		group(o.sales, "sales-emea", o.ann, o.contact, o.computer),
		group(o.eng, "engineering", o.bob),
		group(o.cycleA, "cycle-a"),
		group(o.cycleB, "cycle-b", o.cycleA, o.cat),
		// The nested group spelled with a hex escape and in other case.
		group(o.all, "all", `cn=sales\2C emea,ou=groups,`+base, o.eng, o.cycleA, o.dan, o.eve),
		group(o.big, "big", bigMembers...),
	} {
		if err := c.Add(e); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
			return nil, fmt.Errorf("add %s: %w", e.DN, err)
		}
	}
	m := ldap.NewModifyRequest(o.cycleA, nil)
	m.Add("member", []string{o.cycleB}) // A > B > A
	if err := c.Modify(m); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultAttributeOrValueExists) {
		return nil, fmt.Errorf("close the cycle: %w", err)
	}
	return o, nil
}

// adSnapshot returns the emitted users by DN.
func adSnapshot(t *testing.T, cfg directory.Config, groups []string, idx directory.MembershipIndex) (map[string]directory.User, directory.Stats) {
	t.Helper()
	r := mustDial(t, cfg)
	users := map[string]directory.User{}
	stats, err := r.SnapshotWith(context.Background(), idx, groups, []string{"sAMAccountName"}, 0, func(us []directory.User) error {
		for _, u := range us {
			if _, dup := users[u.DN]; dup {
				t.Errorf("user %s emitted twice", u.DN)
			}
			users[u.DN] = u
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Snapshot(%v): %v", groups, err)
	}
	return users, stats
}

func (o *adOrg) requested() []string {
	return []string{
		o.all,
		`cn=sales\2c emea,ou=groups,` + strings.ToLower(o.base), // another spelling of o.sales
		o.eng, o.cycleA, o.big,
		"CN=Gone,OU=Groups," + o.base,
	}
}

func norm(dns ...string) []string {
	out := make([]string, len(dns))
	for i, d := range dns {
		out[i] = rules.NormalizeDN(d)
	}
	slices.Sort(out)
	return out
}

func TestADSnapshot(t *testing.T) {
	o := adDC(t)
	t.Logf("DC provisioned in %s; populated (%d users) in %s", o.dc.ProvisionTime, adBulkUsers+6, o.loadTime)
	users, stats := adSnapshot(t, o.config(), o.requested(), nil)

	want := map[string]struct {
		groups   []string
		disabled bool
	}{
		o.ann: {norm(o.all, o.sales), false},
		o.bob: {norm(o.all, o.eng), true},    // userAccountControl 514
		o.cat: {norm(o.all, o.cycleA), true}, // accountExpires in 2009; through the cycle
		o.dan: {norm(o.all), false},          // accountExpires in five years
		o.eve: {norm(o.all), false},          // accountExpires 0: never
	}
	for dn, w := range want {
		u, ok := users[dn]
		if !ok {
			t.Errorf("%s not emitted", dn)
			continue
		}
		if !reflect.DeepEqual(u.Groups, w.groups) || u.Disabled != w.disabled {
			t.Errorf("%s: Groups %v, Disabled %v; want %v, %v", dn, u.Groups, u.Disabled, w.groups, w.disabled)
		}
	}
	bulk := 0
	for dn, u := range users {
		if strings.Contains(dn, ",OU=Bulk,") {
			bulk++
			if !reflect.DeepEqual(u.Groups, norm(o.big)) || u.Disabled {
				t.Errorf("%s: Groups %v, Disabled %v", dn, u.Groups, u.Disabled)
			}
		}
	}
	if bulk != adBulkUsers || len(users) != adBulkUsers+len(want) {
		t.Errorf("%d users emitted (%d of Big), want %d (%d)", len(users), bulk, adBulkUsers+len(want), adBulkUsers)
	}
	// Contacts and computers are members of Sales, EMEA, but no users; the reader account
	// is a user in no group.
	for _, dn := range []string{o.contact, o.computer, o.readerDN} {
		if _, ok := users[dn]; ok {
			t.Errorf("%s emitted", dn)
		}
	}
	if stats.Users != adBulkUsers+len(want)+1 || stats.Disabled != 2 || stats.InScope != adBulkUsers+3 ||
		stats.Groups != 6 || !reflect.DeepEqual(stats.MissingGroups, norm("CN=Gone,OU=Groups,"+o.base)) {
		t.Errorf("stats = %+v", stats)
	}

	ann := users[o.ann]
	if ann.UserName != "ann"+adUPNSuffix || ann.Email != "ann.lee@corp.example.test" || ann.GivenName != "Ann" ||
		ann.FamilyName != "Lee" || ann.DisplayName != "Ann Lee" || ann.Attributes["sAMAccountName"] != "ann" {
		t.Errorf("ann = %+v", ann)
	}
	// objectGUID in the canonical form, as samba-tool shows it.
	out, err := o.dc.Tool(context.Background(), "user", "show", "ann", "--attributes=objectGUID")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^objectGUID: ([0-9a-f-]{36})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("samba-tool user show ann: no objectGUID in %q", out)
	}
	if ann.ExternalID != m[1] {
		t.Errorf("ann's ExternalID = %s, samba-tool says %s", ann.ExternalID, m[1])
	}
	seen := map[string]string{}
	for dn, u := range users {
		if other, dup := seen[u.ExternalID]; dup {
			t.Errorf("%s and %s have the same ExternalID %s", dn, other, u.ExternalID)
		}
		seen[u.ExternalID] = dn
	}

	// The comma group is the same group in every spelling.
	r := mustDial(t, o.config())
	for _, sp := range []string{o.sales, `CN=Sales\2C EMEA,OU=Groups,` + o.base, `cn=sales\2c emea,ou=groups,` + strings.ToLower(o.base)} {
		if ok, err := r.GroupExists(context.Background(), sp); !ok || err != nil {
			t.Errorf("GroupExists(%s) = %v, %v", sp, ok, err)
		}
		rs := []rules.Rule{{ID: 1, Priority: 1, GroupDN: rules.NormalizeDN(sp), Role: "Member"}}
		if _, ok := rules.Resolve(rs, ann.Groups); !ok {
			t.Errorf("rule %q does not match ann's Groups %v", sp, ann.Groups)
		}
	}
}

// groupCounter is the in-memory index, counting the parts in which groups arrive.
type groupCounter struct {
	directory.MembershipIndex
	parts map[string][]int // group -> members per AddGroups entry
}

func (g *groupCounter) AddGroups(ctx context.Context, gs []directory.GroupMembers) error {
	for _, x := range gs {
		g.parts[x.DN] = append(g.parts[x.DN], len(x.Members))
	}
	return g.MembershipIndex.AddGroups(ctx, gs)
}

func TestADNestedGroupsInChainAgreesWithExpansion(t *testing.T) {
	o := adDC(t)
	expanded, es := adSnapshot(t, o.config(), o.requested(), nil)
	inChain, cs := adSnapshot(t, o.config(func(c *directory.Config) { c.InChain = true }), o.requested(), nil)
	sameSnapshots(t, expanded, inChain, es, cs)
	// The cycle alone, from either side.
	for _, g := range []string{o.cycleA, o.cycleB} {
		a, _ := adSnapshot(t, o.config(), []string{g}, nil)
		b, _ := adSnapshot(t, o.config(func(c *directory.Config) { c.InChain = true }), []string{g}, nil)
		if len(a) != 1 || !reflect.DeepEqual(a, b) {
			t.Errorf("%s: expansion %v, in chain %v; want cat in both", g, keys(a), keys(b))
		}
	}
}

func TestADRangedMemberRetrieval(t *testing.T) {
	o := adDC(t)
	// Samba, unlike AD, sends all values of "member" at once; asked for a range, it sends
	// that range, as AD does.
	c, err := adminConn(context.Background(), o.dc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Search(ldap.NewSearchRequest(o.big, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"member;range=0-999"}, nil))
	if err != nil || len(res.Entries) != 1 || len(res.Entries[0].Attributes) != 1 {
		t.Fatalf("ranged read: %v", err)
	}
	if a := res.Entries[0].Attributes[0]; a.Name != "member;range=0-999" || len(a.Values) != 1000 {
		t.Fatalf("asked for member;range=0-999, got %s with %d values", a.Name, len(a.Values))
	}

	counter := &groupCounter{MembershipIndex: directory.NewMemoryIndex(), parts: map[string][]int{}}
	cfg := directory.WithMemberRange(o.config(), 1000)
	ranged, _ := adSnapshot(t, cfg, o.requested(), counter)
	// The first part holds one more member: the group's primary-group key (its objectSid).
	if got := counter.parts[rules.NormalizeDN(o.big)]; !reflect.DeepEqual(got, []int{1001, 1000, 1000}) {
		t.Errorf("Big's members arrived in parts of %v, want three ranges of 1000 (+1)", got)
	}
	if got := counter.parts[rules.NormalizeDN(o.all)]; !reflect.DeepEqual(got, []int{6}) {
		t.Errorf("All's members arrived in parts of %v, want [5+1] (one last range)", got)
	}
	whole, _ := adSnapshot(t, o.config(), o.requested(), nil)
	if !reflect.DeepEqual(ranged, whole) {
		t.Errorf("ranged read: %d users, whole read: %d; they differ", len(ranged), len(whole))
	}
}

func TestADBindsOverTLS(t *testing.T) {
	o := adDC(t)
	ctx := context.Background()
	// LDAPS with the DC's CA: the certificate holds 127.0.0.1 and the DC's name.
	r := mustDial(t, o.config())
	if !directory.TLSOn(r) {
		t.Error("ldaps:// not TLS")
	}
	mustDial(t, o.config(func(c *directory.Config) { c.ServerName = o.dc.ServerName() }))
	// The UPN is a bind name too.
	mustDial(t, o.config(func(c *directory.Config) { c.BindDN = "svc-usersync" + adUPNSuffix }))
	// StartTLS on 389.
	r = mustDial(t, o.config(func(c *directory.Config) { c.URL, c.StartTLS = o.dc.URL(), true }))
	if !directory.TLSOn(r) {
		t.Error("StartTLS not TLS")
	}
	if ok, err := r.GroupExists(ctx, o.big); !ok || err != nil {
		t.Errorf("GroupExists over StartTLS = %v, %v", ok, err)
	}
	// Without the CA.
	dialFails(t, o.config(func(c *directory.Config) { c.CAFile = "" }), o.dc.LDAPSURL(), "LDAP_CA_FILE")
	dialFails(t, o.config(func(c *directory.Config) { c.URL, c.StartTLS, c.CAFile = o.dc.URL(), true, "" }), "LDAP_CA_FILE")
	// Plain LDAP: refused here, although the DC would take it ...
	plain := o.config(func(c *directory.Config) { c.URL, c.CAFile = o.dc.URL(), "" })
	dialFails(t, plain, "refusing to send the bind password in clear")
	// ... unless allowed.
	plain.AllowPlaintextBind = true
	if r := mustDial(t, plain); directory.TLSOn(r) {
		t.Error("plain connection is TLS")
	}
}

func TestADBadCredentials(t *testing.T) {
	o := adDC(t)
	wrong := "Not-The-Pw-93!"
	cfg := o.config(func(c *directory.Config) { c.BindPassword = wrong })
	dialFails(t, cfg, o.readerDN, "invalid credentials", "data 52e", "wrong password", "LDAP_BIND_DN")
	nobody := o.config(func(c *directory.Config) { c.BindDN, c.BindPassword = "CN=Nobody,OU=Service,"+o.base, wrong })
	dialFails(t, nobody, "CN=Nobody", "invalid credentials", "data 52e")
}

// sameSnapshots fails t, naming each difference, unless the expansion and the in-chain reads
// found the same users and the same stats.
func sameSnapshots(t *testing.T, expanded, inChain map[string]directory.User, es, cs directory.Stats) {
	t.Helper()
	if !reflect.DeepEqual(expanded, inChain) {
		for dn, u := range expanded {
			if !reflect.DeepEqual(u, inChain[dn]) {
				t.Errorf("%s: expansion %+v, in chain %+v", dn, u, inChain[dn])
			}
		}
		for dn := range inChain {
			if _, ok := expanded[dn]; !ok {
				t.Errorf("%s: only in chain", dn)
			}
		}
	}
	if !reflect.DeepEqual(es, cs) {
		t.Errorf("stats: expansion %+v, in chain %+v", es, cs)
	}
}
