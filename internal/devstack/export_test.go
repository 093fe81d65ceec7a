package devstack

// DaemonPID is the pid of the server t runs, for the external tests.
func (t *Temporal) DaemonPID() (int, bool) { return t.daemon("").PID() }

// DaemonArgs are the dev server's command-line arguments.
func (t *Temporal) DaemonArgs() []string { return t.daemon("").Args }
