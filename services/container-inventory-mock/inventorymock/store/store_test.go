package store_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/store"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// tick returns a clock that advances one second per reading.
func tick() func() time.Time {
	var mu sync.Mutex
	now := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}
}

type op struct {
	release          bool
	container, order string
}

type result struct {
	Container store.Container
	Replay    bool
	Err       string
}

func TestAllocateAndRelease(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name      string
		ops       []op
		want      []result
		wantStats store.Stats
	}{
		{
			name:      "an unknown container is created and allocated",
			ops:       []op{{container: "C-1", order: "O-1"}},
			want:      []result{{Container: store.Container{ContainerID: "C-1", Status: store.Allocated, OrderID: "O-1", UpdatedAt: at(1)}}},
			wantStats: store.Stats{Containers: 1, Allocated: 1, Allocations: 1},
		},
		{
			name: "the same order again gets the same record",
			ops:  []op{{container: "C-1", order: "O-1"}, {container: "C-1", order: "O-1"}},
			want: []result{
				{Container: store.Container{ContainerID: "C-1", Status: store.Allocated, OrderID: "O-1", UpdatedAt: at(1)}},
				{Container: store.Container{ContainerID: "C-1", Status: store.Allocated, OrderID: "O-1", UpdatedAt: at(1)}, Replay: true},
			},
			wantStats: store.Stats{Containers: 1, Allocated: 1, Allocations: 1, Replays: 1},
		},
		{
			name: "another order is refused",
			ops:  []op{{container: "C-1", order: "O-1"}, {container: "C-1", order: "O-2"}},
			want: []result{
				{Container: store.Container{ContainerID: "C-1", Status: store.Allocated, OrderID: "O-1", UpdatedAt: at(1)}},
				{Err: "container C-1 is allocated to order O-1, not O-2"},
			},
			wantStats: store.Stats{Containers: 1, Allocated: 1, Allocations: 1, Conflicts: 1},
		},
		{
			name: "the holder releases, twice, then another order allocates",
			ops: []op{
				{container: "C-1", order: "O-1"},
				{release: true, container: "C-1", order: "O-1"},
				{release: true, container: "C-1", order: "O-1"},
				{container: "C-1", order: "O-2"},
			},
			want: []result{
				{Container: store.Container{ContainerID: "C-1", Status: store.Allocated, OrderID: "O-1", UpdatedAt: at(1)}},
				{Container: store.Container{ContainerID: "C-1", Status: store.Available, UpdatedAt: at(2)}},
				{Container: store.Container{ContainerID: "C-1", Status: store.Available, UpdatedAt: at(2)}},
				{Container: store.Container{ContainerID: "C-1", Status: store.Allocated, OrderID: "O-2", UpdatedAt: at(3)}},
			},
			wantStats: store.Stats{Containers: 1, Allocated: 1, Allocations: 2, Releases: 1},
		},
		{
			name: "another order cannot release",
			ops:  []op{{container: "C-1", order: "O-1"}, {release: true, container: "C-1", order: "O-2"}},
			want: []result{
				{Container: store.Container{ContainerID: "C-1", Status: store.Allocated, OrderID: "O-1", UpdatedAt: at(1)}},
				{Err: "container C-1 is allocated to order O-1, not O-2"},
			},
			wantStats: store.Stats{Containers: 1, Allocated: 1, Allocations: 1, Conflicts: 1},
		},
		{
			name:      "releasing an unknown container is not found",
			ops:       []op{{release: true, container: "C-9", order: "O-1"}},
			want:      []result{{Err: "release C-9: container not found"}},
			wantStats: store.Stats{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := store.New(tick())
			var got []result
			for _, o := range tt.ops {
				var r result
				var err error
				if o.release {
					r.Container, err = s.Release(o.container, o.order)
				} else {
					r.Container, r.Replay, err = s.Allocate(o.container, o.order)
				}
				if err != nil {
					r.Err = err.Error()
				}
				got = append(got, r)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("results mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantStats, s.Stats()); diff != "" {
				t.Errorf("stats mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorsAreTyped(t *testing.T) {
	s := store.New(tick())
	if _, err := s.Release("C-1", "O-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Release of unknown = %v, want ErrNotFound", err)
	}
	s.Allocate("C-1", "O-1")
	_, _, err := s.Allocate("C-1", "O-2")
	var conflict *store.ConflictError
	if !errors.As(err, &conflict) || conflict.Holder != "O-1" || conflict.Requester != "O-2" {
		t.Errorf("Allocate conflict = %#v, want a ConflictError naming O-1 and O-2", err)
	}
}

func TestListFiltersAndSorts(t *testing.T) {
	s := store.New(tick())
	for _, c := range []string{"C-3", "C-1", "C-2"} {
		s.Allocate(c, "O-"+c)
	}
	if _, err := s.Release("C-2", "O-C-2"); err != nil {
		t.Fatal(err)
	}
	ids := func(cs []store.Container) (out []string) {
		for _, c := range cs {
			out = append(out, c.ContainerID)
		}
		return out
	}
	tests := []struct {
		status store.Status
		want   []string
	}{
		{"", []string{"C-1", "C-2", "C-3"}},
		{store.Allocated, []string{"C-1", "C-3"}},
		{store.Available, []string{"C-2"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, ids(s.List(tt.status))); diff != "" {
			t.Errorf("List(%q) mismatch (-want +got):\n%s", tt.status, diff)
		}
	}
	s.Reset()
	if got := s.List(""); len(got) != 0 {
		t.Errorf("after Reset: %v", got)
	}
	if diff := cmp.Diff(store.Stats{}, s.Stats()); diff != "" {
		t.Errorf("stats after Reset (-want +got):\n%s", diff)
	}
}

func TestConcurrentIdenticalAllocationsAllocateOnce(t *testing.T) {
	s := store.New(tick())
	const n = 100
	results := make([]store.Container, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, _, err := s.Allocate("C-1", "O-1")
			if err != nil {
				t.Error(err)
			}
			results[i] = c
		})
	}
	wg.Wait()
	for i := range results {
		if diff := cmp.Diff(results[0], results[i]); diff != "" {
			t.Fatalf("answer %d differs (-first +this):\n%s", i, diff)
		}
	}
	if st := s.Stats(); st.Allocations != 1 || st.Replays != n-1 {
		t.Errorf("stats = %+v, want 1 allocation and %d replays", st, n-1)
	}
}
