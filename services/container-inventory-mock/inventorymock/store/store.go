package store

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Status is the state of a container in the inventory.
type Status string

// The container states.
const (
	Available Status = "available"
	Allocated Status = "allocated"
)

// Container is one reefer container as the inventory knows it.
type Container struct {
	ContainerID string    `json:"containerID"`
	Status      Status    `json:"status"`
	OrderID     string    `json:"orderID,omitempty"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// ConflictError reports an allocation refused because the container is
// allocated to another order.
type ConflictError struct {
	ContainerID string
	Holder      string // the order the container is allocated to
	Requester   string // the order that asked
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("container %s is allocated to order %s, not %s", e.ContainerID, e.Holder, e.Requester)
}

// ErrNotFound reports a container the store has never seen.
var ErrNotFound = errors.New("container not found")

// Stats counts what the store did since it was created or reset.
type Stats struct {
	Containers  int   `json:"containers"`  // containers known
	Allocated   int   `json:"allocated"`   // of which allocated
	Allocations int64 `json:"allocations"` // allocations made
	Replays     int64 `json:"replays"`     // repeated allocations answered from the record
	Conflicts   int64 `json:"conflicts"`   // allocations or releases refused
	Releases    int64 `json:"releases"`    // allocations released
}

// Store is an in-memory inventory, safe for concurrent use.
type Store struct {
	now func() time.Time

	mu         sync.Mutex
	containers map[string]Container
	allocated  int
	stats      Stats
}

// New returns an empty store; now stamps UpdatedAt (time.Now in production).
func New(now func() time.Time) *Store {
	return &Store{now: now, containers: map[string]Container{}}
}

// Allocate allocates the container to the order. A container never seen
// before is created (the legacy system does not know the fleet in advance).
// Allocating again to the same order returns the existing record with
// replay true; a container allocated to another order gives a *ConflictError.
func (s *Store) Allocate(containerID, orderID string) (c Container, replay bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[containerID]
	if ok && c.Status == Allocated {
		if c.OrderID == orderID {
			s.stats.Replays++
			return c, true, nil
		}
		s.stats.Conflicts++
		return Container{}, false, &ConflictError{ContainerID: containerID, Holder: c.OrderID, Requester: orderID}
	}
	c = Container{ContainerID: containerID, Status: Allocated, OrderID: orderID, UpdatedAt: s.now().UTC()}
	s.containers[containerID] = c
	s.allocated++
	s.stats.Allocations++
	return c, false, nil
}

// Release makes the container available again. Only the order holding it may
// release it (another order gets a *ConflictError); releasing an available
// container is a no-op that returns it, so a retried release succeeds.
func (s *Store) Release(containerID, orderID string) (Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[containerID]
	switch {
	case !ok:
		return Container{}, fmt.Errorf("release %s: %w", containerID, ErrNotFound)
	case c.Status != Allocated:
		return c, nil
	case c.OrderID != orderID:
		s.stats.Conflicts++
		return Container{}, &ConflictError{ContainerID: containerID, Holder: c.OrderID, Requester: orderID}
	}
	c = Container{ContainerID: containerID, Status: Available, UpdatedAt: s.now().UTC()}
	s.containers[containerID] = c
	s.allocated--
	s.stats.Releases++
	return c, nil
}

// Get returns the container, and false when the store has never seen it.
func (s *Store) Get(containerID string) (Container, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[containerID]
	return c, ok
}

// List returns the containers with the given status ("" for all), ordered by
// container id.
func (s *Store) List(status Status) []Container {
	s.mu.Lock()
	out := make([]Container, 0, len(s.containers))
	for _, c := range s.containers {
		if status == "" || c.Status == status {
			out = append(out, c)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Container) int { return cmp.Compare(a.ContainerID, b.ContainerID) })
	return out
}

// Stats returns the current counts.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Containers, st.Allocated = len(s.containers), s.allocated
	return st
}

// Reset forgets every container and count.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.containers = map[string]Container{}
	s.allocated = 0
	s.stats = Stats{}
}
