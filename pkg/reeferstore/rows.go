package reeferstore

import "time"

// Status is the state of one reefer in the fleet.
type Status string

const (
	// StatusFree: the reefer can take an order.
	StatusFree Status = "free"
	// StatusAllocated: the reefer carries the order named in Reefer.OrderID.
	StatusAllocated Status = "allocated"
)

// Reefer is one refrigerated container of the fleet, as the rest of the
// code sees it. It carries no database types.
type Reefer struct {
	ContainerID string
	Capacity    int
	Status      Status
	OrderID     string // empty while the reefer is free
}

// reeferRow is the reefers table's row. Only this file and the queries
// know it; converters keep gorm tags and NULLs out of the domain type.
type reeferRow struct {
	ContainerID string    `gorm:"column:container_id;primaryKey"`
	Capacity    int       `gorm:"column:capacity"`
	Status      string    `gorm:"column:status"`
	OrderID     *string   `gorm:"column:order_id"`
	UpdatedAt   time.Time `gorm:"column:updated_at"`
}

func (reeferRow) TableName() string { return "reefers" }

func toRow(r Reefer, now time.Time) reeferRow {
	row := reeferRow{
		ContainerID: r.ContainerID,
		Capacity:    r.Capacity,
		Status:      string(r.Status),
		UpdatedAt:   now,
	}
	if r.OrderID != "" {
		id := r.OrderID
		row.OrderID = &id
	}
	return row
}

func fromRow(row reeferRow) Reefer {
	r := Reefer{
		ContainerID: row.ContainerID,
		Capacity:    row.Capacity,
		Status:      Status(row.Status),
	}
	if row.OrderID != nil {
		r.OrderID = *row.OrderID
	}
	return r
}

// allocationRow is the allocations table's row: one per order, which is
// what makes allocation idempotent (order_id is the primary key).
type allocationRow struct {
	OrderID     string    `gorm:"column:order_id;primaryKey"`
	ContainerID string    `gorm:"column:container_id"`
	Quantity    int       `gorm:"column:quantity"`
	AllocatedAt time.Time `gorm:"column:allocated_at"`
}

func (allocationRow) TableName() string { return "allocations" }
