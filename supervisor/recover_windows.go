package supervisor

// recoverLeftovers: on Windows each process's Job Object
// (KILL_ON_JOB_CLOSE) takes it down with the circled that held the job,
// however it died; nothing is left to recover.
func (s *Supervisor) recoverLeftovers() {}
