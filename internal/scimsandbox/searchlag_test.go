package scimsandbox_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/internal/scimsandbox"
)

// SetSearchLag: a just-created account is stored (its id reads it, its userName is taken)
// but searches leave it out until it is older than the lag, as on a target whose search
// index lags behind its writes.
func TestSearchLagHidesAJustCreatedAccountFromFilters(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	send := func(method, path, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	found := func(filter string) int {
		t.Helper()
		var list struct {
			TotalResults int `json:"totalResults"`
		}
		resp := send("GET", "/Users?filter="+url.QueryEscape(filter), "")
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("search %s: %d %v", filter, resp.StatusCode, err)
		}
		return list.TotalResults
	}
	user := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a@example.com","externalId":"x-a"}`

	const lag = 400 * time.Millisecond
	s.SetSearchLag(lag)
	created := time.Now()
	if resp := send("POST", "/Users", user); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	a, _ := s.UserByUserName("a@example.com")
	if n := found(`externalId eq "x-a"`) + found(`userName eq "a@example.com"`); n != 0 && time.Since(created) < lag {
		t.Fatalf("a just-created account is not found by a search yet, got %d", n)
	}
	if resp := send("GET", "/Users/"+a.ID, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("read by id: %d", resp.StatusCode)
	}
	if resp := send("POST", "/Users", user); resp.StatusCode != http.StatusConflict {
		t.Fatalf("its userName is taken: %d", resp.StatusCode)
	}
	time.Sleep(time.Until(created.Add(lag + 50*time.Millisecond)))
	if found(`externalId eq "x-a"`) != 1 || found(`userName eq "a@example.com"`) != 1 {
		t.Fatal("found once older than the lag")
	}
	s.SetSearchLag(0)
	if resp := send("POST", "/Users", strings.ReplaceAll(user, "a@", "b@")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	if found(`userName eq "b@example.com"`) != 1 {
		t.Fatal("no lag: found at once")
	}
}
