package chaos

// Expedite is called after a worker or Temporal restart.
func (r *Run) Expedite() {}
