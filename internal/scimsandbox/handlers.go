package scimsandbox

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

func (s *Server) collectionOf(kind string) *collection {
	if kind == "Group" {
		return s.groups
	}
	return s.users
}

func (s *Server) commit(kind, id string, old *resource, attrs map[string]any) (*resource, *scimError) {
	if kind == "Group" {
		return s.commitGroup(id, old, attrs)
	}
	return s.commitUser(id, old, attrs)
}

func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, kind, id string) {
	var err *scimError
	switch {
	case id == "" && r.Method == http.MethodGet:
		err = s.list(w, r, kind)
	case id == "" && r.Method == http.MethodPost:
		err = s.create(w, r, kind)
	case id != "" && r.Method == http.MethodGet:
		err = s.get(w, r, kind, id)
	case id != "" && r.Method == http.MethodPut:
		err = s.replace(w, r, kind, id)
	case id != "" && r.Method == http.MethodPatch:
		err = s.patch(w, r, kind, id)
	case id != "" && r.Method == http.MethodDelete:
		err = s.delete(w, kind, id)
	default:
		err = errorf(http.StatusMethodNotAllowed, "", "%s not allowed here", r.Method)
	}
	if err != nil {
		writeError(w, err)
	}
}

func decodeBody(r *http.Request, into any) *scimError {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err := dec.Decode(into); err != nil {
		return bodyError(err)
	}
	return nil
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, kind string) *scimError {
	var body map[string]any
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	attrs, err := s.reg.typeOf(kind).checkBody(body)
	if err != nil {
		return err
	}
	if _, ok := attrs["active"]; !ok && kind == "User" {
		attrs["active"] = true
	}
	s.mu.Lock()
	res, err := s.commit(kind, newID(), nil, attrs)
	var out map[string]any
	if err == nil {
		out = render(res, kind, baseURL(r))
		w.Header().Set("ETag", etag(res))
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	w.Header().Set("Location", out["meta"].(map[string]any)["location"].(string))
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, kind, id string) *scimError {
	s.mu.Lock()
	res := s.collectionOf(kind).byID[id]
	var out map[string]any
	if res != nil {
		out = render(res, kind, baseURL(r))
		w.Header().Set("ETag", etag(res))
	}
	s.mu.Unlock()
	if res == nil {
		return errorf(http.StatusNotFound, "", "%s %q not found", kind, id)
	}
	writeJSON(w, http.StatusOK, project(out, r))
	return nil
}

func checkIfMatch(r *http.Request, res *resource) *scimError {
	want := r.Header.Get("If-Match")
	if want != "" && want != "*" && want != etag(res) {
		return errorf(http.StatusPreconditionFailed, "", "version %s does not match current %s", want, etag(res))
	}
	return nil
}

func (s *Server) replace(w http.ResponseWriter, r *http.Request, kind, id string) *scimError {
	var body map[string]any
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	attrs, err := s.reg.typeOf(kind).checkBody(body)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.collectionOf(kind).byID[id]
	if old == nil {
		return errorf(http.StatusNotFound, "", "%s %q not found", kind, id)
	}
	if err := checkIfMatch(r, old); err != nil {
		return err
	}
	if _, ok := attrs["active"]; !ok && kind == "User" && old.attrs["active"] != nil {
		attrs["active"] = old.attrs["active"] // an omitted active does not suspend (RFC 7644 3.5.1 allows it)
	}
	res, err := s.commit(kind, id, old, attrs)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(res))
	writeJSON(w, http.StatusOK, render(res, kind, baseURL(r)))
	return nil
}

func (s *Server) patch(w http.ResponseWriter, r *http.Request, kind, id string) *scimError {
	var req patchRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	found := false
	for _, sch := range req.Schemas {
		found = found || strings.EqualFold(sch, patchOpSchema)
	}
	if !found {
		return badRequest("invalidSyntax", "schemas must include %s", patchOpSchema)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.collectionOf(kind).byID[id]
	if old == nil {
		return errorf(http.StatusNotFound, "", "%s %q not found", kind, id)
	}
	if err := checkIfMatch(r, old); err != nil {
		return err
	}
	attrs, err := s.reg.typeOf(kind).applyPatch(old.attrs, req.Operations)
	if err != nil {
		return err
	}
	res, err := s.commit(kind, id, old, attrs)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(res))
	if kind == "Group" && r.URL.Query().Get("attributes") == "" {
		w.WriteHeader(http.StatusNoContent) // large member lists are not echoed back
		return nil
	}
	writeJSON(w, http.StatusOK, project(render(res, kind, baseURL(r)), r))
	return nil
}

func (s *Server) delete(w http.ResponseWriter, kind, id string) *scimError {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := s.collectionOf(kind).byID[id]
	if res == nil {
		return errorf(http.StatusNotFound, "", "%s %q not found", kind, id)
	}
	if kind == "User" {
		s.deleteUser(res)
	} else {
		s.groups.index(id, "displayName", res.attrs, nil)
		s.groups.remove(id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, kind string) *scimError {
	q := r.URL.Query()
	var f filter
	if text := q.Get("filter"); text != "" {
		var err *scimError
		if f, err = parseFilter(text); err != nil {
			return err
		}
	}
	startIndex, err := intParam(q.Get("startIndex"), 1, "startIndex")
	if err != nil {
		return err
	}
	count, err := intParam(q.Get("count"), defaultPageSize, "count")
	if err != nil {
		return err
	}
	startIndex = max(startIndex, 1)
	count = min(max(count, 0), maxPageSize)

	base := baseURL(r)
	s.mu.Lock()
	var matched []*resource
	fresh := s.now().Add(-s.searchLag) // SetSearchLag: younger resources are not in filtered lists yet
	for _, res := range s.candidates(kind, f) {
		if f == nil || f.match(res.attrs) && (s.searchLag <= 0 || !res.created.After(fresh)) {
			matched = append(matched, res)
		}
	}
	total := len(matched)
	lo := min(startIndex-1, total)
	hi := min(lo+count, total)
	page := make([]any, 0, hi-lo)
	for _, res := range matched[lo:hi] {
		page = append(page, render(res, kind, base))
	}
	s.mu.Unlock()
	for i := range page {
		page[i] = project(page[i].(map[string]any), r)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":      []string{listResponseSchema},
		"totalResults": total,
		"startIndex":   startIndex,
		"itemsPerPage": len(page),
		"Resources":    page,
	})
	return nil
}

// candidates narrows a filter through the userName/displayName, externalId and id indexes.
// Caller holds s.mu.
func (s *Server) candidates(kind string, f filter) []*resource {
	c := s.collectionOf(kind)
	pick := func(ids ...string) []*resource {
		var out []*resource
		for _, id := range ids {
			if res := c.byID[id]; res != nil {
				out = append(out, res)
			}
		}
		return out
	}
	nameAttr := "userName"
	if kind == "Group" {
		nameAttr = "displayName"
	}
	if v, ok := indexedEq(f, nameAttr); ok {
		return pick(c.byName[strings.ToLower(v)])
	}
	if v, ok := indexedEq(f, "externalId"); ok {
		return pick(c.byExt[v]...)
	}
	if v, ok := indexedEq(f, "id"); ok {
		return pick(v)
	}
	return c.ordered()
}

func intParam(v string, def int, name string) (int, *scimError) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, badRequest("invalidValue", "%s must be an integer, got %q", name, v)
	}
	return n, nil
}

// project applies the attributes / excludedAttributes query parameters (top-level names).
func project(res map[string]any, r *http.Request) map[string]any {
	q := r.URL.Query()
	names := func(p string) map[string]bool {
		out := map[string]bool{}
		for _, n := range strings.Split(p, ",") {
			if n = strings.TrimSpace(n); n != "" {
				head, _, _ := strings.Cut(n, ".")
				out[strings.ToLower(head)] = true
			}
		}
		return out
	}
	always := map[string]bool{"id": true, "schemas": true, "meta": true}
	if keep := names(q.Get("attributes")); len(keep) > 0 {
		out := map[string]any{}
		for k, v := range res {
			if always[k] || keep[strings.ToLower(k)] {
				out[k] = v
			}
		}
		return out
	}
	if drop := names(q.Get("excludedAttributes")); len(drop) > 0 {
		out := map[string]any{}
		for k, v := range res {
			if always[k] || !drop[strings.ToLower(k)] {
				out[k] = v
			}
		}
		return out
	}
	return res
}
