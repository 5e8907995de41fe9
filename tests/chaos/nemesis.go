package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/store"
)

// Event is one line of the nemesis' log: what it did, when, and whether it
// worked.
type Event struct {
	At    time.Duration
	Fault Fault
	What  string // "start", "heal", "done"
	Err   error
	Note  string
}

func (e Event) String() string {
	s := fmt.Sprintf("%7s %-5s %s", e.At.Round(time.Millisecond), e.What, strings.TrimSpace(e.Fault.String()[8:]))
	if e.Note != "" {
		s += ": " + e.Note
	}
	if e.Err != nil {
		s += ": ERROR " + e.Err.Error()
	}
	return s
}

// Nemesis carries out a schedule against a stack.
type Nemesis struct {
	stack *Stack
	sched Schedule
	base  faults.Profile // the inventory's profile between faults
	rng   *rand.Rand

	mu       sync.Mutex
	start    time.Time
	events   []Event
	injected map[Kind]int
	// Foreign are the keys of the records that are not orders: poison and
	// oversize, with the value written.
	Foreign map[string][]byte
	// Stolen are the containers taken in the inventory by someone else.
	Stolen []string

	invMu sync.Mutex // one inventory profile change at a time
}

// NewNemesis prepares the nemesis; the inventory starts with the base
// profile: 5% of calls answered 503, from the schedule's seed.
func NewNemesis(s *Stack, sched Schedule) *Nemesis {
	seed := int64(sched.Seed)
	return &Nemesis{
		stack: s, sched: sched,
		// The thief's calls are exempt from the random 503s (not from
		// the windows, which never overlap its own).
		base:     faults.Profile{Seed: &seed, ErrorRate: 0.05, ErrorStatus: 503, Rules: []faults.Rule{{Name: "thief", OrderID: "^THIEF-"}}},
		rng:      rand.New(rand.NewPCG(sched.Seed, 42)),
		injected: map[Kind]int{},
		Foreign:  map[string][]byte{},
	}
}

// Injected returns how many faults of each kind took effect.
func (n *Nemesis) Injected() map[Kind]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[Kind]int{}
	for k, v := range n.injected {
		out[k] = v
	}
	return out
}

// Log returns the nemesis' log, in time order.
func (n *Nemesis) Log() []Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := slices.Clone(n.events)
	slices.SortStableFunc(out, func(a, b Event) int { return int(a.At - b.At) })
	return out
}

func (n *Nemesis) record(f Fault, what string, err error, note string) {
	n.recordAt(time.Since(n.start), f, what, err, note)
}

func (n *Nemesis) recordAt(at time.Duration, f Fault, what string, err error, note string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.events = append(n.events, Event{At: at, Fault: f, What: what, Err: err, Note: note})
	if what == "start" && err == nil {
		n.injected[f.Kind]++
	}
}

// Run carries out the schedule from now and returns when every fault has
// ended (at the schedule's window at the latest), after healing everything.
func (n *Nemesis) Run(ctx context.Context) {
	if err := n.setInventory(ctx, n.base); err != nil {
		n.record(Fault{Kind: "base-profile"}, "start", err, "")
	}
	n.mu.Lock()
	n.start = time.Now()
	n.mu.Unlock()
	var wg sync.WaitGroup
	for _, f := range n.sched.Faults {
		wg.Go(func() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(n.start.Add(f.At))):
			}
			n.inject(ctx, f)
		})
	}
	wg.Wait()
	n.HealAll(context.WithoutCancel(ctx))
}

// inject starts f, waits its duration and heals it.
func (n *Nemesis) inject(ctx context.Context, f Fault) {
	started := time.Since(n.start)
	heal, note, err := n.apply(ctx, f)
	n.recordAt(started, f, "start", err, note)
	if heal == nil {
		return
	}
	// Healed even when the start reported an error: a docker pause whose
	// command failed may still have paused the container.
	select {
	case <-ctx.Done():
	case <-time.After(f.For):
	}
	n.record(f, "heal", heal(context.WithoutCancel(ctx)), "")
}

// apply starts one fault and returns how to end it (nil: nothing to end).
func (n *Nemesis) apply(ctx context.Context, f Fault) (heal func(context.Context) error, note string, err error) {
	s := n.stack
	switch f.Kind {
	case SIGKILL, SIGTERM:
		p := s.Services[f.Target]
		if f.Kind == SIGKILL {
			err = p.Kill()
		} else {
			err = p.Term(15 * time.Second)
		}
		return func(context.Context) error { return p.Start() }, "", err
	case PostgresPause:
		return s.Postgres.Unpause, "", s.Postgres.Pause(ctx)
	case PostgresRestart:
		start := time.Now()
		err := s.Postgres.Restart(ctx)
		return nil, fmt.Sprintf("back after %s", time.Since(start).Round(time.Millisecond)), err
	case Inventory503, Inventory401, Inventory3xx:
		status := map[Kind]int{Inventory503: 503, Inventory401: 401, Inventory3xx: f.Code}[f.Kind]
		p := n.base
		p.Outage = &faults.Outage{Mode: faults.OutageStatus, Status: status}
		return n.healInventory, "", n.setInventory(ctx, p)
	case InventoryHang:
		p := n.base
		p.ErrorRate, p.ErrorStatus, p.TimeoutRate = 0, 0, 1
		return n.healInventory, "", n.setInventory(ctx, p)
	case Inventory422:
		p := n.base
		p.Rules = append([]faults.Rule{{Name: "refuse-orders-ending-" + f.Target, OrderID: f.Target + "$", Status: 422}}, p.Rules...)
		return n.healInventory, "", n.setInventory(ctx, p)
	case Inventory409:
		stolen, err := n.steal(ctx, f.N)
		return nil, fmt.Sprintf("took %v", stolen), err
	case ProduceError:
		e, ok := kerr.ErrorForCode(int16(f.Code)).(*kerr.Error)
		if !ok {
			return nil, "", fmt.Errorf("no Kafka error has code %d", f.Code)
		}
		h := s.Broker.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: f.Target, Err: e, Count: -1})
		return func(context.Context) error {
			h.Remove()
			return nil
		}, e.Message, nil
	case Poison, Oversize:
		return nil, "", n.produceForeign(ctx, f)
	case RedriveRetry, RedriveOriginal:
		// The transient ones and the refused ones (the 422 window and the
		// stolen containers are over by then, or soon will be); poison
		// stays for a person.
		to := map[Kind]string{RedriveRetry: "retry", RedriveOriginal: "original"}[f.Kind]
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		var notes []string
		var errs []error
		for _, reason := range []string{"max-attempts", "permanent-error"} {
			out, err := s.DLQ(rctx, "redrive", "--reason", reason, "--to", to, "--yes", "--timeout", "30s")
			notes = append(notes, reason+": "+lastLine(out))
			errs = append(errs, err)
		}
		return nil, strings.Join(notes, "; "), errors.Join(errs...)
	}
	return nil, "", fmt.Errorf("unknown fault kind %q", f.Kind)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func (n *Nemesis) setInventory(ctx context.Context, p faults.Profile) error {
	n.invMu.Lock()
	defer n.invMu.Unlock()
	_, err := n.stack.Admin.SetFaults(ctx, p)
	return err
}

func (n *Nemesis) healInventory(ctx context.Context) error { return n.setInventory(ctx, n.base) }

// steal takes up to count free containers of the fleet in the inventory,
// for orders that are not the campaign's: the next order the database
// gives one of them gets a real 409 (already_allocated) from the inventory.
func (n *Nemesis) steal(ctx context.Context, count int) ([]string, error) {
	held, err := n.stack.Admin.Containers(ctx, store.Allocated)
	if err != nil {
		return nil, err
	}
	taken := map[string]bool{}
	for _, c := range held {
		taken[c.ContainerID] = true
	}
	n.mu.Lock()
	fleet := FleetFor(n.sched.Orders)
	var picks []string
	for len(picks) < count && len(taken) < fleet {
		id := fmt.Sprintf("C-%04d", 1+n.rng.IntN(fleet))
		if !taken[id] {
			taken[id] = true
			picks = append(picks, id)
		}
	}
	n.mu.Unlock()
	var stolen []string
	var errs []error
	for i, id := range picks {
		thief := fmt.Sprintf("THIEF-%d-%d", n.sched.Seed%1000, i)
		status, err := allocate(ctx, "http://"+n.stack.Inventory.Addr, id, thief)
		switch {
		case err != nil:
			errs = append(errs, err)
		case status == http.StatusOK:
			stolen = append(stolen, id)
		}
	}
	n.mu.Lock()
	n.Stolen = append(n.Stolen, stolen...)
	n.mu.Unlock()
	if len(stolen) == 0 {
		return nil, errors.Join(append(errs, errors.New("no container could be taken"))...)
	}
	return stolen, nil
}

// allocate calls the inventory's allocation API as another client would,
// through the base profile's faults: it tries a few times.
func allocate(ctx context.Context, base, container, order string) (int, error) {
	var last error
	for range 5 {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/containers/"+container+"/allocation",
			strings.NewReader(`{"orderID":"`+order+`"}`))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", order)
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
		if err != nil {
			last = err
			continue
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			last = fmt.Errorf("allocate %s: %s", container, resp.Status)
			continue
		}
		return resp.StatusCode, nil
	}
	return 0, last
}

// maxMessageBytes is the broker's max.message.bytes (kfake's default, as
// Kafka's: 1 MiB + 12 bytes).
const maxMessageBytes = 1048588

// produceForeign writes poison (undecodable values) or one oversize value:
// a value 1 KiB under the topic's limit, which the broker accepts on the
// orders topic and which the dead-letter headers push over it.
func (n *Nemesis) produceForeign(ctx context.Context, f Fault) error {
	var msgs []kafka.Message
	n.mu.Lock()
	for i := range f.N {
		key := fmt.Sprintf("%s-%d-%d", strings.ToUpper(string(f.Kind)), len(n.Foreign), i)
		var value []byte
		if f.Kind == Poison {
			value = [][]byte{[]byte("{not json"), []byte(`{"specversion":"1.0","type":"OrderCreated"}`), {0xff, 0xfe, 0x00}}[n.rng.IntN(3)]
			value = append(bytes.Clone(value), key...)
		} else {
			value = bytes.Repeat([]byte("x"), maxMessageBytes-1024)
		}
		n.Foreign[key] = value
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: value})
	}
	n.mu.Unlock()
	return Produce(ctx, n.stack, msgs...)
}

// HealAll ends every fault: the services run, Postgres is unpaused, the
// inventory and the broker are healthy. Faults that ended by themselves
// are untouched.
func (n *Nemesis) HealAll(ctx context.Context) {
	for _, name := range Replicas {
		if p := n.stack.Services[name]; !p.Running() {
			n.record(Fault{Kind: "heal-all", Target: name}, "heal", p.Start(), "restarted")
		}
	}
	if err := n.stack.Postgres.Unpause(ctx); err != nil {
		n.record(Fault{Kind: "heal-all", Target: "postgres"}, "heal", err, "")
	}
	if err := n.setInventory(ctx, faults.Profile{}); err != nil {
		n.record(Fault{Kind: "heal-all", Target: "inventory"}, "heal", err, "")
	}
}

// Produce writes msgs to the orders topic, trying again while the broker
// refuses (a produce fault of the nemesis applies to the loader too).
func Produce(ctx context.Context, s *Stack, msgs ...kafka.Message) error {
	for {
		err := s.writer.WriteMessages(ctx, msgs...)
		if err == nil {
			return nil
		}
		var werr kafka.WriteErrors
		if errors.As(err, &werr) {
			var failed []kafka.Message
			for i, e := range werr {
				if e != nil {
					failed = append(failed, msgs[i])
				}
			}
			msgs = failed
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("produce %d records: %w (last error: %w)", len(msgs), ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Orders are the campaign's orders: quantities 1..10 (any reefer takes
// them) and one in a hundred of 500, which no reefer holds (rejected).
func Orders(n int) []events.OrderCreated {
	out := make([]events.OrderCreated, n)
	for i := range out {
		q := 1 + i%10
		if i%100 == 99 {
			q = 500
		}
		out[i] = events.OrderCreated{OrderID: fmt.Sprintf("O-%06d", i+1), ProductID: "P-VACCINE", CustomerID: "CUST-CHAOS",
			Quantity: q, PickupCity: "Rotterdam", DestinationCity: "Singapore", ExpectedDeliveryDate: "2031-06-30"}
	}
	return out
}

// Load writes the orders evenly over d, in batches of about 50.
func Load(ctx context.Context, s *Stack, orders []events.OrderCreated, d time.Duration) error {
	const batch = 50
	batches := (len(orders) + batch - 1) / batch
	tick := d / time.Duration(max(batches, 1))
	start := time.Now()
	for b := range batches {
		var msgs []kafka.Message
		for _, o := range orders[b*batch : min((b+1)*batch, len(orders))] {
			env, err := events.New("/reefer-dlq/chaos", events.TypeOrderCreated, o.OrderID, o, time.Now())
			if err != nil {
				return err
			}
			v, err := events.Encode(env)
			if err != nil {
				return err
			}
			msgs = append(msgs, kafka.Message{Key: []byte(o.OrderID), Value: v})
		}
		if err := Produce(ctx, s, msgs...); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(start.Add(time.Duration(b+1) * tick))):
		}
	}
	return nil
}
