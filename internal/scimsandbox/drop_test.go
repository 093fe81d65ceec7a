package scimsandbox_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/scimsandbox"
)

// DropAnswers carries a write out and loses its answer: the client gets no status at all
// (a network error), while the target holds what was sent. Other methods, and the requests
// after the count, are answered as usual.
func TestDropAnswersCommitsTheWriteAndLosesTheAnswer(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	send := func(method, path, body string) (*http.Response, error) {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		return http.DefaultClient.Do(req)
	}
	user := func(name string) string {
		return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + name + `","externalId":"x-` + name + `"}`
	}

	s.DropAnswers(1, "POST")
	if resp, err := send("GET", "/Users", ""); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a GET is answered: %v %v", resp, err)
	}
	resp, err := send("POST", "/Users", user("a@example.com"))
	if err == nil {
		t.Fatalf("the POST's answer is dropped, got %d", resp.StatusCode)
	}
	a, ok := s.UserByUserName("a@example.com")
	if !ok || a.ExternalID != "x-a@example.com" {
		t.Fatalf("the POST was carried out: %+v %v", a, ok)
	}
	resp, err = send("POST", "/Users", user("b@example.com"))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("only the next request loses its answer: %v %v", resp, err)
	}

	s.DropAnswers(1, "PATCH")
	_, err = send("PATCH", "/Users/"+a.ID, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],`+
		`"Operations":[{"op":"replace","path":"displayName","value":"Ann"}]}`)
	if err == nil {
		t.Fatal("the PATCH's answer is dropped")
	}
	if a, _ = s.User(a.ID); a.DisplayName != "Ann" {
		t.Fatalf("the PATCH was carried out: %+v", a)
	}
	if st := s.Stats(); st.Dropped != 2 || st.Writes != 3 {
		t.Fatalf("stats = %+v", st)
	}
}
