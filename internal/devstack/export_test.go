package devstack

// DaemonPID is the pid of the server t runs, for the external tests.
func (t *Temporal) DaemonPID() (int, bool) { return t.daemon("").PID() }
