package directory_test

import (
	"context"
	"io"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/directory"
)

// cutProxy is a TCP proxy in front of a directory that can cut every connection once a
// number of answer bytes has passed (mid-PDU), or call a function there (stop slapd).
type cutProxy struct {
	ln       net.Listener
	upstream string
	sent     atomic.Int64
	mu       sync.Mutex
	at       int64  // cut or trip once sent reaches it; 0: never
	trip     func() // nil: cut
	conns    []net.Conn
}

func newCutProxy(t *testing.T, upstream string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, upstream: upstream}
	t.Cleanup(func() { ln.Close(); p.closeAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
	return p
}

func (p *cutProxy) URL() string { return "ldap://" + p.ln.Addr().String() }

// arm makes the proxy act once n more answer bytes have passed: trip, or (nil) cut.
func (p *cutProxy) arm(n int64, trip func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.at, p.trip = p.sent.Load()+n, trip
}

func (p *cutProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) pipe(client net.Conn) {
	server, err := net.Dial("tcp", p.upstream)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, client, server)
	p.mu.Unlock()
	defer client.Close()
	defer server.Close()
	go func() { _, _ = io.Copy(server, client); server.Close() }()
	buf := make([]byte, 512)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			sent := p.sent.Load()
			p.mu.Lock()
			at, trip := p.at, p.trip
			p.mu.Unlock()
			if at > 0 && sent+int64(n) >= at {
				p.mu.Lock()
				p.at = 0
				p.mu.Unlock()
				if trip != nil {
					go trip()
				} else {
					// Forward up to the cut, then drop every connection.
					_, _ = client.Write(buf[:at-sent])
					p.sent.Add(at - sent)
					p.closeAll()
					return
				}
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
			p.sent.Add(int64(n))
		}
		if err != nil {
			return
		}
	}
}

func dialThrough(t *testing.T, url string) *directory.Reader {
	t.Helper()
	r, err := directory.Dial(context.Background(), directory.Config{URL: url, BindDN: adminDN, BindPassword: adminPW,
		BaseDN: demo.Suffix, PageSize: 50, AllowPlaintextBind: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// mirrorState is what a mirror holds, to compare before and after a failed read.
type mirrorState struct {
	users, groups   int
	userSt, groupSt directory.SyncState
	commits         int
}

func stateOf(m *memMirror) mirrorState {
	var s mirrorState
	s.users, s.userSt, _ = m.held(directory.MirrorUsers)
	s.groups, s.groupSt, _ = m.held(directory.MirrorGroups)
	m.mu.Lock()
	s.commits = m.commits
	m.mu.Unlock()
	return s
}

// A connection cut anywhere in a read (while the users are read, while the groups are)
// fails the read and commits nothing: on a first read (no cookie yet, an empty mirror)
// the mirror stays empty and without a mark, so the next read is a full one again; on an
// incremental read the mirror keeps the last read's entries and cookie. The read after
// the cut agrees with a full read of the directory.
func TestIncrementalReadCutMidReadCommitsNothing(t *testing.T) {
	s := ownSlapd(t)
	p := newCutProxy(t, s.URL()[len("ldap://"):])
	ctx := context.Background()

	// How many answer bytes a whole first read takes (bind included).
	before := p.sent.Load()
	if _, err := dialThrough(t, p.URL()).SyncMirror(ctx, newMemMirror(), nil, 0); err != nil {
		t.Fatal(err)
	}
	whole := p.sent.Load() - before

	m := newMemMirror()
	for _, pct := range []int64{5, 20, 40, 60, 75, 90, 97} {
		r := dialThrough(t, p.URL())
		p.arm(whole*pct/100, nil)
		st, err := r.SyncMirror(ctx, m, nil, 0)
		if err == nil {
			t.Fatalf("first read cut at %d%% of its answers: no error (%+v)", pct, st)
		}
		if got := stateOf(m); !reflect.DeepEqual(got, mirrorState{}) {
			t.Fatalf("first read cut at %d%%: the mirror holds %+v, want nothing committed", pct, got)
		}
	}
	r := dialThrough(t, p.URL())
	st, err := r.SyncMirror(ctx, m, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Full || st.Reason != "first read" {
		t.Errorf("read after the cuts: %+v, want a full first read", st)
	}
	full, mirrored, fs, ms := snapshotsOf(t, r, m, nil)
	sameSnapshot(t, "after cut first reads", full, mirrored, fs, ms)

	// Changes, then an incremental read cut at several points.
	conn, err := ldap.DialURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Bind(adminDN, adminPW); err != nil {
		t.Fatal(err)
	}
	var userDN, groupDN string
	for _, e := range demo.Org().Entries {
		for _, a := range e.Attributes {
			if a.Type == "member" && groupDN == "" && len(a.Vals) > 1 {
				groupDN, userDN = e.DN, a.Vals[0]
			}
		}
	}
	mod := ldap.NewModifyRequest(userDN, nil)
	mod.Replace("displayName", []string{"Changed Before The Cut"})
	if err := conn.Modify(mod); err != nil {
		t.Fatal(err)
	}
	gm := ldap.NewModifyRequest(groupDN, nil)
	gm.Delete("member", []string{userDN})
	if err := conn.Modify(gm); err != nil {
		t.Fatal(err)
	}
	kept := stateOf(m)
	before = p.sent.Load()
	probe := newMemMirror()
	probe.entries, probe.states = cloneMirror(m)
	if _, err := dialThrough(t, p.URL()).SyncMirror(ctx, probe, nil, 0); err != nil {
		t.Fatal(err)
	}
	incremental := p.sent.Load() - before
	for _, pct := range []int64{10, 40, 70, 95} {
		r := dialThrough(t, p.URL())
		p.arm(incremental*pct/100, nil)
		if st, err := r.SyncMirror(ctx, m, nil, 0); err == nil {
			t.Fatalf("incremental read cut at %d%%: no error (%+v)", pct, st)
		}
		if got := stateOf(m); !reflect.DeepEqual(got, kept) {
			t.Fatalf("incremental read cut at %d%%: the mirror is %+v, want it as before %+v", pct, got, kept)
		}
	}
	r = dialThrough(t, p.URL())
	if st, err = r.SyncMirror(ctx, m, nil, 0); err != nil {
		t.Fatal(err)
	}
	if st.Full || st.Entries != 2 {
		t.Errorf("read after the cut incremental reads: %+v, want the 2 changed entries", st)
	}
	full, mirrored, fs, ms = snapshotsOf(t, r, m, nil)
	sameSnapshot(t, "after cut incremental reads", full, mirrored, fs, ms)
}

func cloneMirror(m *memMirror) (map[string]map[string]directory.MirrorEntry, map[string]directory.SyncState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	es := map[string]map[string]directory.MirrorEntry{}
	for k, v := range m.entries {
		es[k] = map[string]directory.MirrorEntry{}
		for id, e := range v {
			es[k][id] = e
		}
	}
	sts := map[string]directory.SyncState{}
	for k, v := range m.states {
		sts[k] = v
	}
	return es, sts
}

// slapd stopped in the middle of a first read and started again two seconds later (the
// fault matrix's directory-stop-mid-read): the read fails and commits nothing; the next
// read, on a new connection, is a whole first read that agrees with a full read.
func TestIncrementalFirstReadWithSlapdStoppedMidReadFails(t *testing.T) {
	s := ownSlapd(t)
	p := newCutProxy(t, s.URL()[len("ldap://"):])
	ctx := context.Background()
	before := p.sent.Load()
	if _, err := dialThrough(t, p.URL()).SyncMirror(ctx, newMemMirror(), nil, 0); err != nil {
		t.Fatal(err)
	}
	whole := p.sent.Load() - before

	m := newMemMirror()
	for _, pct := range []int64{30, 80} {
		r := dialThrough(t, p.URL())
		restarted := make(chan error, 1)
		p.arm(whole*pct/100, func() {
			if err := s.Stop(); err != nil {
				restarted <- err
				return
			}
			time.Sleep(2 * time.Second)
			restarted <- s.Start(context.Background())
		})
		st, err := r.SyncMirror(ctx, m, nil, 0)
		if err == nil {
			t.Errorf("first read with slapd stopped at %d%% of its answers: no error (%+v)", pct, st)
		}
		if got := stateOf(m); !reflect.DeepEqual(got, mirrorState{}) {
			t.Errorf("first read with slapd stopped at %d%%: the mirror holds %+v, want nothing committed", pct, got)
		}
		if err := <-restarted; err != nil {
			t.Fatal(err)
		}
	}
	r := dialThrough(t, p.URL())
	st, err := r.SyncMirror(ctx, m, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Full {
		t.Errorf("read after the restarts: %+v, want a full first read", st)
	}
	full, mirrored, fs, ms := snapshotsOf(t, r, m, nil)
	sameSnapshot(t, "after slapd restarts mid-read", full, mirrored, fs, ms)
}

// A mirror that lost its rows but kept its cookie (a restore of one table, a manual delete)
// is not read as "nothing changed" (which would make everyone look gone): it holds another
// number of entries than its mark was committed with, and is read in full.
func TestEmptiedMirrorWithACookieIsReadInFull(t *testing.T) {
	s := ownSlapd(t)
	ctx := context.Background()
	r := dialThrough(t, s.URL())
	m := newMemMirror()
	if _, err := r.SyncMirror(ctx, m, nil, 0); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	delete(m.entries, directory.MirrorUsers) // the cookie stays
	m.mu.Unlock()
	st, err := r.SyncMirror(ctx, m, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Full || st.Reason != "mirror incomplete" {
		t.Errorf("read of an emptied mirror: %+v, want a full read (mirror incomplete)", st)
	}
	full, mirrored, fs, ms := snapshotsOf(t, r, m, nil)
	sameSnapshot(t, "after the emptied mirror's read", full, mirrored, fs, ms)
}
