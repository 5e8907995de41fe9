package ordergen

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// PermanentPrefix starts the id of every order the demo's inventory refuses
// with 422 (a rule of its fault profile).
const PermanentPrefix = "O-PERM-"

// Outcome is where an order should end.
type Outcome string

// The terminal outcomes an order can deserve.
const (
	// Allocated: a reefer was reserved (ContainerAllocated).
	Allocated Outcome = "allocated"
	// Rejected: no reefer is big enough (OrderRejected), a business outcome.
	Rejected Outcome = "rejected"
	// DeadLettered: the inventory refuses the order for good; it waits on
	// the dead-letter topic for a person.
	DeadLettered Outcome = "dead-lettered"
)

// Order is one generated order and the outcome it should reach.
type Order struct {
	events.OrderCreated
	Expect Outcome
}

// Generator makes orders. It is not safe for concurrent use.
type Generator struct {
	rng       *rand.Rand
	prefix    string
	base      time.Time
	ordinary  int
	permanent int
}

// New returns a generator whose sequence depends only on seed. run, when
// not empty, goes into every order id ("O-<run>-000001"): the demo sets it
// when it shares a broker or database with earlier runs, whose orders must
// not be mistaken for this run's. base is the day delivery dates count from.
func New(seed uint64, run string, base time.Time) *Generator {
	prefix := ""
	if run != "" {
		prefix = run + "-"
	}
	return &Generator{
		// Two different streams from one seed: the constant only has to
		// differ from the seed's own.
		rng:    rand.New(rand.NewPCG(seed, 0x5eed_0f_0de75)),
		prefix: prefix,
		base:   base.UTC().Truncate(24 * time.Hour),
	}
}

var (
	products = []string{"P-VACCINES", "P-BANANAS", "P-SALMON", "P-FLOWERS", "P-INSULIN", "P-AVOCADOS", "P-CHEESE", "P-BERRIES"}
	cities   = []string{"Rotterdam", "Singapore", "Shanghai", "Santos", "Oakland", "Hamburg", "Durban", "Valparaiso", "Busan", "Antwerp"}
)

// oversizeShare is the share of ordinary orders that no reefer can carry.
const oversizeShare = 0.04

// Next returns the next ordinary order: allocated, or rejected when its
// quantity exceeds the biggest reefer.
func (g *Generator) Next() Order {
	g.ordinary++
	o := g.order(fmt.Sprintf("O-%s%06d", g.prefix, g.ordinary))
	if g.rng.Float64() < oversizeShare {
		o.Quantity = reeferstore.MaxSeedCapacity + 1 + g.rng.IntN(3*reeferstore.MaxSeedCapacity)
		o.Expect = Rejected
		return o
	}
	// Mostly small loads, now and then a big one that needs a big reefer.
	if g.rng.Float64() < 0.8 {
		o.Quantity = 1 + g.rng.IntN(12)
	} else {
		o.Quantity = 13 + g.rng.IntN(reeferstore.MaxSeedCapacity-12)
	}
	o.Expect = Allocated
	return o
}

// Permanent returns the next order the inventory refuses for good.
func (g *Generator) Permanent() Order {
	g.permanent++
	o := g.order(fmt.Sprintf("%s%s%04d", PermanentPrefix, g.prefix, g.permanent))
	o.Quantity = 1 + g.rng.IntN(12)
	o.Expect = DeadLettered
	return o
}

func (g *Generator) order(id string) Order {
	from := g.rng.IntN(len(cities))
	to := (from + 1 + g.rng.IntN(len(cities)-1)) % len(cities) // never the same city
	return Order{OrderCreated: events.OrderCreated{
		OrderID:              id,
		ProductID:            products[g.rng.IntN(len(products))],
		CustomerID:           fmt.Sprintf("CUST-%03d", 1+g.rng.IntN(40)),
		PickupCity:           cities[from],
		DestinationCity:      cities[to],
		ExpectedDeliveryDate: g.base.AddDate(0, 0, 7+g.rng.IntN(35)).Format(time.DateOnly),
	}}
}
