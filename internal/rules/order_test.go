package rules

import (
	"reflect"
	"strings"
	"testing"
)

// ids returns the rule IDs in list order, checking the priorities are 1..n in that order.
func ids(t *testing.T, rs []Rule) []int64 {
	t.Helper()
	var out []int64
	for i, r := range rs {
		if r.Priority != i+1 {
			t.Errorf("rule %d at position %d has priority %d", r.ID, i+1, r.Priority)
		}
		out = append(out, r.ID)
	}
	if err := CheckDense(rs); err != nil {
		t.Errorf("result not dense: %v", err)
	}
	return out
}

func three() []Rule {
	// Deliberately out of order: helpers sort by priority first.
	return []Rule{{ID: 30, Priority: 3}, {ID: 10, Priority: 1}, {ID: 20, Priority: 2}}
}

func TestInsert(t *testing.T) {
	tests := []struct {
		name     string
		priority int
		want     []int64
		err      string
	}{
		{"append with priority 0", 0, []int64{10, 20, 30, 99}, ""},
		{"insert at top", 1, []int64{99, 10, 20, 30}, ""},
		{"insert in the middle", 2, []int64{10, 99, 20, 30}, ""},
		{"insert at n+1", 4, []int64{10, 20, 30, 99}, ""},
		{"beyond n+1", 5, nil, "rule priority 5: out of range (1..4"},
		{"negative", -1, nil, "rule priority -1: out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := three()
			got, err := Insert(in, Rule{ID: 99, Priority: tt.priority})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g := ids(t, got); !reflect.DeepEqual(g, tt.want) {
				t.Errorf("order = %v, want %v", g, tt.want)
			}
			if in[0].ID != 30 || in[0].Priority != 3 {
				t.Errorf("input modified: %+v", in)
			}
		})
	}
}

func TestInsertIntoEmptyAndDuplicateID(t *testing.T) {
	got, err := Insert(nil, Rule{ID: 1})
	if err != nil || len(got) != 1 || got[0].Priority != 1 {
		t.Fatalf("Insert into empty = %+v, %v", got, err)
	}
	if _, err := Insert(three(), Rule{ID: 20}); err == nil || !strings.Contains(err.Error(), "rule 20: already exists") {
		t.Errorf("duplicate ID: err = %v", err)
	}
	// Unsaved rules (ID 0) may be inserted next to each other.
	two, _ := Insert(got, Rule{})
	if _, err := Insert(two, Rule{}); err != nil {
		t.Errorf("second unsaved rule rejected: %v", err)
	}
}

func TestMove(t *testing.T) {
	tests := []struct {
		name string
		id   int64
		to   int
		want []int64
		err  string
	}{
		{"bottom to top", 30, 1, []int64{30, 10, 20}, ""},
		{"top to bottom", 10, 3, []int64{20, 30, 10}, ""},
		{"swap first two", 20, 1, []int64{20, 10, 30}, ""},
		{"to its own place", 20, 2, []int64{10, 20, 30}, ""},
		{"unknown rule", 77, 1, nil, "rule 77: no such rule"},
		{"position 0", 10, 0, nil, "rule priority 0: out of range (1..3)"},
		{"past the end", 10, 4, nil, "rule priority 4: out of range (1..3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Move(three(), tt.id, tt.to)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g := ids(t, got); !reflect.DeepEqual(g, tt.want) {
				t.Errorf("order = %v, want %v", g, tt.want)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	got, err := Remove(three(), 20)
	if err != nil {
		t.Fatal(err)
	}
	if g := ids(t, got); !reflect.DeepEqual(g, []int64{10, 30}) {
		t.Errorf("order = %v, want [10 30]", g)
	}
	if _, err := Remove(three(), 5); err == nil || !strings.Contains(err.Error(), "rule 5: no such rule") {
		t.Errorf("unknown rule: err = %v", err)
	}
}

func TestHelpersHealGaps(t *testing.T) {
	gappy := []Rule{{ID: 1, Priority: 4}, {ID: 2, Priority: 9}}
	got, err := Insert(gappy, Rule{ID: 3})
	if err != nil {
		t.Fatal(err)
	}
	if g := ids(t, got); !reflect.DeepEqual(g, []int64{1, 2, 3}) {
		t.Errorf("order = %v, want [1 2 3]", g)
	}
}

func TestCheckDense(t *testing.T) {
	tests := []struct {
		name string
		rs   []Rule
		err  string
	}{
		{"empty", nil, ""},
		{"dense out of order", three(), ""},
		{"gap", []Rule{{ID: 1, Priority: 1}, {ID: 2, Priority: 3}}, "rule priority 3 (rule 2): out of range 1..2"},
		{"duplicate priority", []Rule{{ID: 1, Priority: 1}, {ID: 2, Priority: 1}}, "rule priority 1: used by rules 1 and 2"},
		{"zero priority", []Rule{{ID: 1, Priority: 0}}, "rule priority 0 (rule 1)"},
		{"duplicate id", []Rule{{ID: 1, Priority: 1}, {ID: 1, Priority: 2}}, "rule 1: listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckDense(tt.rs)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}
