package plan

import (
	"bytes"
	"math"
	"math/rand"
	"testing"

	"github.com/usersync/usersync/internal/vocab"
)

// The byte order of the stored keys is the Go order: a store that sorts by them sorts as
// SeatKey.Less and the item order do.
func TestSortableKeysOrderAsLess(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	strs := []string{"", "a", "A", "a\x00", "a\x00\x00", "a\x00b", "a\x01", "a\xff", "ab", "b", "\x00", "\xff",
		"\x00\xff", "\x00\x01", "zoë", "zoe", "ann@example.com", "ann@example.co", "ann@example.com\x00"}
	prios := []int{math.MinInt, -1, 0, 1, 2, 255, 256, math.MaxInt32, math.MaxInt32 + 1, math.MaxInt}
	randStr := func() string {
		if r.Intn(2) == 0 {
			return strs[r.Intn(len(strs))]
		}
		b := make([]byte, r.Intn(4))
		for i := range b {
			b[i] = []byte{0, 1, 'a', 'b', 0xfe, 0xff}[r.Intn(6)]
		}
		return string(b)
	}
	var keys []SeatKey
	for range 400 {
		keys = append(keys, SeatKey{Priority: prios[r.Intn(len(prios))], SortName: randStr(), ExternalID: randStr()})
	}
	for _, a := range keys {
		for _, b := range keys {
			got := bytes.Compare(a.Sortable(), b.Sortable())
			want := 0
			if a.Less(b) {
				want = -1
			} else if b.Less(a) {
				want = 1
			}
			if got != want {
				t.Fatalf("seat keys %+v and %+v: bytes compare %d, Less says %d", a, b, got, want)
			}
			ia, ib := Item{UserName: a.SortName, ExternalID: a.ExternalID}, Item{UserName: b.SortName, ExternalID: b.ExternalID}
			got = bytes.Compare(ItemOrder(ia), ItemOrder(ib))
			want = 0
			if itemLess(ia, ib) {
				want = -1
			} else if itemLess(ib, ia) {
				want = 1
			}
			if got != want {
				t.Fatalf("items %+v and %+v: bytes compare %d, item order says %d", ia, ib, got, want)
			}
		}
	}
}

func TestItemOrderIgnoresCase(t *testing.T) {
	a, b := Item{UserName: "Ann@Example.com", ExternalID: "2"}, Item{UserName: "ann@example.com", ExternalID: "1"}
	if bytes.Compare(ItemOrder(b), ItemOrder(a)) >= 0 {
		t.Fatal("same name in another case: externalId decides")
	}
}

func TestOnlySeatCandidatesHaveASeatOrder(t *testing.T) {
	k := SeatKey{Priority: 1, SortName: "ann", ExternalID: "1"}
	if SeatOrder(Item{Action: Create}, k) != nil {
		t.Error("an item taking no new seat has a seat order")
	}
	it := Item{Action: Create, NewSeats: []string{"Meeting"}}
	if !bytes.Equal(SeatOrder(it, k), k.Sortable()) {
		t.Error("a seat candidate is ordered by its key")
	}
	FailItem(&it, vocab.Failure{Type: vocab.OutOfLicenses})
	if SeatOrder(it, k) != nil {
		t.Error("a failed candidate keeps a seat order")
	}
}
