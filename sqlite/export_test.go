package sqlite

// SettleIDIndex runs the id index's background work (flushes, repairs,
// merges) until none is left, for the benchmarks to measure a store at
// rest.
func (s *Store) SettleIDIndex() error {
	for {
		did, err := s.ids.step()
		if err != nil || !did {
			return err
		}
	}
}

// IDRuns is the number of runs of the id index.
func (s *Store) IDRuns() int {
	s.ids.mu.Lock()
	defer s.ids.mu.Unlock()
	return len(s.ids.runs)
}
