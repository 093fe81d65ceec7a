package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/usersync/usersync/internal/demo"
)

// down stops the parts in the reverse order of up; it goes on after a
// failure so that one stuck part does not keep the others running.
func (s *stack) down(purge bool) error {
	var errs []error
	stop := func(name string, f func() error) {
		if err := f(); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", name, err))
			return
		}
		fmt.Println("stopped", name)
	}
	stop("worker", func() error { return s.worker().Stop(30 * time.Second) })
	stop("scim-sandbox", func() error { return s.scimSandbox().Stop(10 * time.Second) })
	stop("temporal", s.temporal().Stop)
	stop("slapd", s.slapd("").Stop)
	stop("samba", func() error { return s.samba("").Process().Stop(30 * time.Second) })
	stop("postgres", s.postgres().Stop)
	if err := errors.Join(errs...); err != nil {
		return err // keep the folder: its pid files find what still runs
	}
	if purge {
		if err := os.RemoveAll(s.dir); err != nil {
			return fmt.Errorf("purge %s: %w", s.dir, err)
		}
		fmt.Println("deleted", s.dir)
	}
	return nil
}

func (s *stack) status(w io.Writer) {
	tp := s.temporal()
	pg := s.postgres()
	rows := []struct {
		name    string
		running bool
		where   string
	}{
		{"postgres", pg.Running(), pg.URL()},
		{"slapd", s.slapd("").Running(), s.slapd("").URL() + "  base " + s.slapd("").Suffix},
		{"samba", s.samba("").Process().Running(), s.samba("").LDAPSURL() + "  base " + demo.Suffix + " (AD DC)"},
		{"temporal", tp.Running(), tp.HostPort() + "  UI " + tp.UIURL()},
		{"scim-sandbox", s.scimSandbox().Running(), s.scimURL()},
		{"worker", s.worker().Running(), "log " + s.worker().LogFile},
	}
	fmt.Fprintf(w, "usersync dev stack in %s (org %s, directory %s)\n", s.dir, s.org, s.directory)
	for _, r := range rows {
		state := "stopped"
		if r.running {
			state = "running"
		}
		fmt.Fprintf(w, "  %-13s %-8s %s\n", r.name, state, r.where)
	}
	fmt.Fprintf(w, "configuration: source %s   (secrets in %s)\n", s.path("env"), s.path("secrets"))
}
