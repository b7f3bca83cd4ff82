package supervisor

// Wanted reports whether a command wants watcher name up (it was started
// and not stopped since), whatever its processes are doing now: a
// watcher whose processes all ended on their own and were left down by
// the exit policy is wanted, one an operator stopped is not. False for an
// unknown name.
func (s *Supervisor) Wanted(name string) bool {
	e, err := s.get(name)
	if err != nil {
		return false
	}
	return e.w.Wanted()
}
