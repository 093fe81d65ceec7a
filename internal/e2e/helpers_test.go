package e2e

import (
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/workflows"
)

func clientOptions(id string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}
}

func intersect(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range a {
		in[x] = true
	}
	var out []string
	for _, x := range b {
		if in[x] {
			out = append(out, x)
		}
	}
	return out
}

func fmtAny(v any) string { return fmt.Sprint(v) }
