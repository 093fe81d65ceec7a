package scimsandbox

// Stats counts the SCIM requests the sandbox received (not /_sandbox/ requests).
type Stats struct {
	// Requests is every SCIM request, answered or not.
	Requests int `json:"requests"`
	// ByRoute counts requests by "METHOD route", route being /Users, /Users/{id}, /Groups,
	// /Groups/{id}, /ServiceProviderConfig, ... e.g. "PATCH /Users/{id}".
	ByRoute map[string]int `json:"byRoute"`
	// Writes counts successful POST, PUT, PATCH and DELETE requests.
	Writes int `json:"writes"`
	// Rejected counts 4xx answers other than throttling and injected failures.
	Rejected int `json:"rejected"`
	// Throttled counts 429 answers of the rate limit.
	Throttled int `json:"throttled"`
	// Injected counts answers forced by FailNext.
	Injected int `json:"injected"`
	// Dropped counts requests carried out and left without an answer (DropAnswers).
	Dropped int `json:"dropped"`
}

func newStats() Stats { return Stats{ByRoute: map[string]int{}} }

// Count returns the number of requests with that method to that route ("/Users/{id}").
func (st Stats) Count(method, route string) int { return st.ByRoute[method+" "+route] }

func (st *Stats) count(method, route string, status int, handled, synthetic bool) {
	st.Requests++
	st.ByRoute[method+" "+route]++
	switch {
	case synthetic:
	case status >= 400 && status < 500:
		st.Rejected++
	case !handled && status < 300 && method != "GET" && (route == "/Users" || route == "/Users/{id}" ||
		route == "/Groups" || route == "/Groups/{id}"):
		st.Writes++
	}
}

func (st Stats) clone() Stats {
	out := st
	out.ByRoute = make(map[string]int, len(st.ByRoute))
	for k, v := range st.ByRoute {
		out.ByRoute[k] = v
	}
	return out
}
