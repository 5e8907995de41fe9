package reeferstore

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Seeded capacities cycle through 10, 20, ..., MaxSeedCapacity, so every
// tenth reefer is a big one and an order above MaxSeedCapacity can never
// be served: the demo shows OrderRejected without any special set-up.
const (
	MinSeedCapacity  = 10
	MaxSeedCapacity  = 100
	seedCapacityStep = 10
	seedBatchSize    = 500
)

// SeedReefer returns the n-th reefer (n from 1) of the fleet SeedFleet
// creates: id C-0001, C-0002, ... and a capacity that depends only on n.
// Tests and the demo use it to know the fleet without reading it back.
func SeedReefer(n int) Reefer {
	steps := (MaxSeedCapacity-MinSeedCapacity)/seedCapacityStep + 1
	return Reefer{
		ContainerID: fmt.Sprintf("C-%04d", n),
		Capacity:    MinSeedCapacity + ((n-1)%steps)*seedCapacityStep,
		Status:      StatusFree,
	}
}

// SeedFleet makes sure the reefers SeedReefer(1..size) exist. It is
// idempotent and safe to run at every start and from several replicas:
// reefers that already exist are left alone (free or allocated), and it
// never removes reefers, so lowering size does not shrink the fleet.
func (s *Store) SeedFleet(ctx context.Context, size int) error {
	if size < 0 {
		return fmt.Errorf("seed fleet: size %d is negative", size)
	}
	if size == 0 {
		return nil
	}
	now := s.now()
	rows := make([]reeferRow, 0, size)
	for n := 1; n <= size; n++ {
		rows = append(rows, toRow(SeedReefer(n), now))
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// ON CONFLICT DO NOTHING: an existing reefer keeps its state.
		return tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, seedBatchSize).Error
	})
	if err != nil {
		return fmt.Errorf("seed fleet of %d reefers: %w", size, classify(err))
	}
	return nil
}
