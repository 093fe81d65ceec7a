package engine

import (
	"reflect"
	"slices"
	"testing"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/steps"
)

// TestStepNamesAreTheMethods checks the step names the workflows schedule against the methods
// of Steps and of *activities.Activities, whose exported methods are all registered as
// activities: a name without a method would fail a run, a method without a name is a step no
// workflow can reach by name.
func TestStepNamesAreTheMethods(t *testing.T) {
	names := steps.Names()
	sorted := slices.Sorted(slices.Values(names))
	if len(slices.Compact(slices.Clone(sorted))) != len(names) {
		t.Fatalf("step names are not distinct: %v", sorted)
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[Steps](), reflect.TypeFor[*activities.Activities]()} {
		var methods []string
		for i := range typ.NumMethod() {
			methods = append(methods, typ.Method(i).Name)
		}
		slices.Sort(methods)
		if !slices.Equal(methods, sorted) {
			t.Errorf("methods of %v:\n  %v\nstep names (package steps):\n  %v", typ, methods, sorted)
		}
	}
}
