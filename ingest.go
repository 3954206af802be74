package odometer

// StoredEvent is what deduplication needs of a stored event: where it is,
// and what the client said.
type StoredEvent struct {
	Seq         int64
	Fingerprint int64
}

// IngestTx is one group commit's transaction, as a store offers it to
// SettleGroup. The rules of deduplication are SettleGroup's alone: a store
// only tells which ids it holds, and stores what it is given.
type IngestTx interface {
	// Stored returns those of the client ids given (distinct) that are
	// stored, each with its event. It must be exact: an id that is not
	// stored is never in the answer.
	Stored(ids []string) (map[string]StoredEvent, error)
	// Insert stores the events in this order, with their fingerprints,
	// and sets each one's Seq. Nothing is durable until the store commits.
	Insert(events []*Event, fps []int64) error
}

// SettleGroup stores the requests of one group through tx, settling every
// client id repeated within a request, within the group, or already
// stored:
//
//   - the same id with the same fingerprint is a duplicate: reported in
//     the request's Dup and not stored again, and its Seq is that of the
//     event that holds the id;
//   - the same id with another fingerprint is a conflict: that request
//     fails alone with ECONFLICT (its Err), nothing of it is stored, and
//     the rest of the group is stored as if it had not come.
//
// Requests are settled in the order of the group, each seeing the ids of
// the requests before it that succeed. An error from tx is returned: the
// caller rolls back and fails every request of the group.
func SettleGroup(group []*IngestRequest, tx IngestTx) error {
	type settle struct {
		fps   []int64
		first map[string]int // client id -> index of its first event
	}
	st := make([]settle, len(group))
	n := 0
	for _, r := range group {
		n += len(r.Events)
	}
	ask := make([]string, 0, n)
	asked := make(map[string]bool, n)
	// Repeats within a request, and the ids to ask the store about.
	for k, r := range group {
		r.Err, r.Dup = nil, make([]bool, len(r.Events))
		s := &st[k]
		s.fps = make([]int64, len(r.Events))
		s.first = make(map[string]int, len(r.Events))
		for i := range r.Events {
			e := &r.Events[i]
			s.fps[i] = e.Fingerprint()
			if !e.ClientID {
				continue
			}
			if j, ok := s.first[e.ID]; ok {
				if s.fps[j] != s.fps[i] {
					r.Err = ConflictError(e.ID)
					break
				}
				r.Dup[i] = true
				continue
			}
			s.first[e.ID] = i
		}
		if r.Err != nil {
			r.Dup = nil
			continue
		}
		for id := range s.first {
			if !asked[id] {
				asked[id] = true
				ask = append(ask, id)
			}
		}
	}
	var stored map[string]StoredEvent
	if len(ask) > 0 {
		var err error
		if stored, err = tx.Stored(ask); err != nil {
			return err
		}
	}

	// Against the store and the requests before, in order.
	type ref struct {
		fp    int64
		event *Event
	}
	added := make(map[string]ref, n-len(stored)) // ids that the group stores, by their event
	var insert []*Event
	var fps []int64
	for k, r := range group {
		if r.Err != nil {
			continue
		}
		s := &st[k]
		for i := range r.Events {
			id := r.Events[i].ID
			if !r.Events[i].ClientID || r.Dup[i] {
				continue
			}
			fp := s.fps[i]
			if old, ok := stored[id]; ok {
				if old.Fingerprint != fp {
					r.Err = ConflictError(id)
					break
				}
				r.Dup[i] = true
				continue
			}
			if a, ok := added[id]; ok {
				if a.fp != fp {
					r.Err = ConflictError(id)
					break
				}
				r.Dup[i] = true
			}
		}
		if r.Err != nil {
			r.Dup = nil
			continue
		}
		for i := range r.Events {
			if r.Dup[i] {
				continue
			}
			e := &r.Events[i]
			if e.ClientID {
				added[e.ID] = ref{s.fps[i], e}
			}
			insert = append(insert, e)
			fps = append(fps, s.fps[i])
		}
	}
	if len(insert) > 0 {
		if err := tx.Insert(insert, fps); err != nil {
			return err
		}
	}

	// Each duplicate takes the Seq of the event that holds its id.
	for k, r := range group {
		if r.Err != nil {
			continue
		}
		s := &st[k]
		for i := range r.Events {
			if !r.Dup[i] {
				continue
			}
			e := &r.Events[i]
			if j := s.first[e.ID]; j != i {
				e.Seq = r.Events[j].Seq // the first of the request is before
			} else if old, ok := stored[e.ID]; ok {
				e.Seq = old.Seq
			} else {
				e.Seq = added[e.ID].event.Seq
			}
		}
	}
	return nil
}
