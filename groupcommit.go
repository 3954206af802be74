package odometer

import (
	"context"
	"sync"
)

// IngestRequest is one CreateEvents call in a group commit. The store's
// commit sets Dup, or Err when nothing of the request was stored.
type IngestRequest struct {
	Events []Event
	Dup    []bool
	Err    error
	done   chan struct{}
}

// GroupCommit is how a store makes concurrent requests share a commit:
// one goroutine takes every request queued while the previous commit ran,
// up to MaxGroupEvents events, and hands them to the store's commit
// function as one group. A request is answered once its group's commit
// returns.
type GroupCommit struct {
	mu      sync.RWMutex // held to send, taken to close
	closed  bool
	queue   chan *IngestRequest
	stop    chan struct{}
	stopped chan struct{}
	commit  func(group []*IngestRequest)
}

// MaxGroupEvents bounds the events of one group.
const MaxGroupEvents = 20_000

// ErrShuttingDown answers the requests that arrive, or are still queued,
// once the group commit is closed: none of them was stored.
var ErrShuttingDown = &Error{Code: EUNAVAILABLE, Message: "The server is shutting down; nothing was stored. Try again."}

// NewGroupCommit starts a group commit that stores groups with commit.
func NewGroupCommit(commit func(group []*IngestRequest)) *GroupCommit {
	g := &GroupCommit{queue: make(chan *IngestRequest, 1024), stop: make(chan struct{}), stopped: make(chan struct{}), commit: commit}
	go g.run()
	return g
}

// Submit queues the events of one request and waits for its group's
// commit: the duplicates, or the error that stored nothing of it.
func (g *GroupCommit) Submit(ctx context.Context, events []Event) ([]bool, error) {
	r := &IngestRequest{Events: events, done: make(chan struct{})}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return nil, ErrShuttingDown
	}
	select {
	case g.queue <- r:
		g.mu.RUnlock()
	case <-ctx.Done():
		g.mu.RUnlock()
		return nil, ctx.Err()
	}
	// Once queued, wait for the outcome even if the client goes away: the
	// answer must say what was stored.
	<-r.done
	return r.Dup, r.Err
}

// Queued is how many requests wait for a commit.
func (g *GroupCommit) Queued() int { return len(g.queue) }

// Close stops the group commit after the commit in progress; what is
// still queued is refused.
func (g *GroupCommit) Close() {
	// Wait for the senders in flight, so that nothing is queued after the
	// last drain of the queue.
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.stop)
	}
	g.mu.Unlock()
	<-g.stopped
}

func (g *GroupCommit) run() {
	defer close(g.stopped)
	for {
		var first *IngestRequest
		select {
		case first = <-g.queue:
		case <-g.stop:
			for {
				select {
				case r := <-g.queue:
					r.Err = ErrShuttingDown
					close(r.done)
				default:
					return
				}
			}
		}
		group := []*IngestRequest{first}
		n := len(first.Events)
	drain:
		for n < MaxGroupEvents {
			select {
			case r := <-g.queue:
				group = append(group, r)
				n += len(r.Events)
			default:
				break drain
			}
		}
		g.commit(group)
		for _, r := range group {
			close(r.done)
		}
	}
}
