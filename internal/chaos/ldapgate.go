package chaos

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Gate is a TCP proxy in front of the directory. Once TripAfter bytes of answers have flowed
// from the directory to its clients (a read is under way), it calls Trip once: the harness
// stops the directory there, mid-read.
type Gate struct {
	ln        net.Listener
	upstream  string
	sent      atomic.Int64
	tripAfter int64
	trip      func()
	wg        sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool
}

// NewGate listens on a free port of 127.0.0.1 and forwards to upstream (host:port).
func NewGate(upstream string) (*Gate, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &Gate{ln: ln, upstream: upstream, conns: map[net.Conn]bool{}}
	g.wg.Add(1)
	go g.serve()
	return g, nil
}

// Addr is where clients connect.
func (g *Gate) Addr() string { return g.ln.Addr().String() }

// ArmTrip calls trip (once) when n more bytes of answers have been forwarded.
func (g *Gate) ArmTrip(n int64, trip func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tripAfter, g.trip = g.sent.Load()+n, trip
}

// Sent is the number of answer bytes forwarded so far.
func (g *Gate) Sent() int64 { return g.sent.Load() }

// Close stops listening and drops every connection.
func (g *Gate) Close() {
	g.ln.Close()
	g.mu.Lock()
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
}

func (g *Gate) serve() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		go g.pipe(c)
	}
}

func (g *Gate) track(c net.Conn, on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if on {
		g.conns[c] = true
	} else {
		delete(g.conns, c)
	}
}

func (g *Gate) pipe(client net.Conn) {
	server, err := net.Dial("tcp", g.upstream)
	if err != nil {
		client.Close()
		return
	}
	g.track(client, true)
	g.track(server, true)
	defer func() {
		g.track(client, false)
		g.track(server, false)
		client.Close()
		server.Close()
	}()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(server, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, countingReader{server, g}); done <- struct{}{} }()
	<-done
}

type countingReader struct {
	r io.Reader
	g *Gate
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		total := c.g.sent.Add(int64(n))
		c.g.mu.Lock()
		trip := c.g.trip
		if trip != nil && total >= c.g.tripAfter {
			c.g.trip = nil // once
		} else {
			trip = nil
		}
		c.g.mu.Unlock()
		if trip != nil {
			go trip()
		}
	}
	return n, err
}
