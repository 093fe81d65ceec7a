package scimsandbox_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/usersync/usersync/internal/scimsandbox"
)

func TestConcurrentCreatesNeverExceedSeats(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token, Seats: map[string]int{"Meeting": 5}})
	var wg sync.WaitGroup
	statuses := make([]int, 30)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _ = call(t, s, "POST", "/Users", fmt.Sprintf(
				`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"u%d@example.com","entitlements":[{"value":"Meeting"}]}`, i))
		}()
	}
	wg.Wait()
	created, refused := 0, 0
	for _, st := range statuses {
		switch st {
		case http.StatusCreated:
			created++
		case http.StatusForbidden:
			refused++
		default:
			t.Fatalf("unexpected status %d", st)
		}
	}
	if created != 5 || refused != 25 || s.SeatsUsed()["Meeting"] != 5 || len(s.Users()) != 5 {
		t.Fatalf("created %d, refused %d, seats used %v, users %d", created, refused, s.SeatsUsed(), len(s.Users()))
	}
}
