package sqlite

import "time"

// SettleIDIndex runs the id index's background work (flushes, repairs,
// merges) until none is left, for the benchmarks to measure a store at
// rest.
func (s *Store) SettleIDIndex() error {
	for {
		did, err := s.ids.step()
		if err != nil {
			return err
		}
		if !did {
			break
		}
	}
	// And the global filter built.
	for {
		s.ids.mu.Lock()
		ready := s.ids.global != nil && !s.ids.global.full() && s.ids.pending == nil
		s.ids.mu.Unlock()
		if ready {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// IDRuns is the number of runs of the id index.
func (s *Store) IDRuns() int {
	s.ids.mu.Lock()
	defer s.ids.mu.Unlock()
	return len(s.ids.runs)
}
