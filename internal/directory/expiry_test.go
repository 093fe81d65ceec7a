package directory

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// memView is a mirror view over entries in memory.
type memView map[string][]MirrorEntry

func (v memView) Entries(_ context.Context, kind string, page func([]MirrorEntry) error) error {
	return page(v[kind])
}
func (memView) Close(context.Context) {}
func (v memView) Some(context.Context, string, []string, func([]MirrorEntry) error) error {
	panic("not read here")
}
func (v memView) Names(context.Context, string, func([]MirrorEntry) error) error {
	panic("not read here")
}
func (v memView) Count(_ context.Context, kind string) (int, error) { return len(v[kind]), nil }

type memMirror struct{ v memView }

func (m memMirror) Begin(context.Context) (MirrorTx, error)  { panic("not read here") }
func (m memMirror) View(context.Context) (MirrorView, error) { return m.v, nil }

// fileTimeOf is t as AD's accountExpires.
func fileTimeOf(t time.Time) string {
	return strconv.FormatInt((t.Unix()+11644473600)*1e7, 10)
}

// A read reports the earliest account expiry after it among the users it returns: from then
// on the same entries give another result (a run cannot stand on this read past it).
func TestSnapshotNextExpiry(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	soon, later := now.Add(48*time.Hour), now.Add(90*24*time.Hour)
	r := &Reader{cfg: Config{Profile: ProfileAD, PageSize: 10}.withDefaults(), now: func() time.Time { return now }}
	user := func(n byte, dn, expires string) MirrorEntry {
		guid := make([]byte, 16)
		guid[0] = n
		attrs := map[string][][]byte{"objectGUID": {guid}, "userAccountControl": {[]byte("512")},
			"userPrincipalName": {[]byte(dn + "@corp")}}
		if expires != "" {
			attrs["accountExpires"] = [][]byte{[]byte(expires)}
		}
		return MirrorEntry{UUID: string(rune('a' + n)), DN: "CN=" + dn + ",DC=corp", Attrs: attrs}
	}
	users := []MirrorEntry{
		user(1, "past", fileTimeOf(now.Add(-time.Hour))), // expired: disabled, not to come
		user(2, "later", fileTimeOf(later)),
		user(3, "soon", fileTimeOf(soon)),
		user(4, "never", "0"),
		user(5, "outside", fileTimeOf(now.Add(time.Hour))), // in no ruled group: not read
	}
	group := MirrorEntry{UUID: "g", DN: "CN=Staff,DC=corp", Attrs: map[string][][]byte{
		"member": {[]byte("CN=past,DC=corp"), []byte("CN=later,DC=corp"), []byte("CN=soon,DC=corp"), []byte("CN=never,DC=corp")}}}
	m := memMirror{v: memView{MirrorUsers: users, MirrorGroups: {group}}}
	stats, err := r.SnapshotFromMirror(context.Background(), m, nil, []string{"CN=Staff,DC=corp"}, nil, 10, func([]User) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if stats.InScope != 3 || stats.Disabled != 1 {
		t.Fatalf("in scope %d, disabled %d; want 3 and 1", stats.InScope, stats.Disabled)
	}
	if !stats.NextExpiry.Equal(soon) {
		t.Errorf("NextExpiry = %v, want %v (the earliest expiry to come among the users read)", stats.NextExpiry, soon)
	}
}
