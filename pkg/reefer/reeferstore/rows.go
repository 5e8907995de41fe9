package reeferstore

import (
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
)

// Status is the state of one reefer in the fleet.
type Status string

const (
	// StatusFree: the reefer can take an order.
	StatusFree Status = "free"
	// StatusAllocated: the reefer carries the order named in Reefer.OrderID.
	StatusAllocated Status = "allocated"
	// StatusQuarantined: out of the pool, because the inventory refused it
	// (409: another order holds it there); Reefer.QuarantineReason says
	// which order and when. An operator frees it after checking the
	// inventory (reefers.status back to 'free').
	StatusQuarantined Status = "quarantined"
)

// Reefer is one refrigerated container of the fleet, as the rest of the
// code sees it. It carries no database types.
type Reefer struct {
	ContainerID string
	Capacity    int
	Status      Status
	OrderID     string // empty unless allocated
	// QuarantineReason says why a quarantined reefer left the pool.
	QuarantineReason string
}

// reeferRow is the reefers table's row. Only this file and the queries
// know it; converters keep gorm tags and NULLs out of the domain type.
type reeferRow struct {
	ContainerID string  `gorm:"column:container_id;primaryKey"`
	Capacity    int     `gorm:"column:capacity"`
	Status      string  `gorm:"column:status"`
	OrderID     *string `gorm:"column:order_id"`
	// QuarantineReason is set only for status quarantined.
	QuarantineReason *string   `gorm:"column:quarantine_reason"`
	UpdatedAt        time.Time `gorm:"column:updated_at"`
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
	if row.QuarantineReason != nil {
		r.QuarantineReason = *row.QuarantineReason
	}
	return r
}

// orderRow is the order_states table's row: one per order that was ever
// reserved or dead-lettered (see conclusion.go for its transitions).
type orderRow struct {
	OrderID      string    `gorm:"column:order_id;primaryKey"`
	State        string    `gorm:"column:state"`
	ContainerID  *string   `gorm:"column:container_id"`
	Quantity     *int      `gorm:"column:quantity"`
	Generation   int       `gorm:"column:generation"`
	ClaimToken   *string   `gorm:"column:claim_token"`
	ErrorClass   *string   `gorm:"column:error_class"`
	ErrorReason  *string   `gorm:"column:error_reason"`
	ErrorMessage *string   `gorm:"column:error_message"`
	Written      bool      `gorm:"column:dead_letter_written"`
	ClaimOwner   *string   `gorm:"column:claim_owner"`
	Version      int       `gorm:"column:version"`
	UpdatedAt    time.Time `gorm:"column:updated_at"`
}

func (orderRow) TableName() string { return "order_states" }

func fromOrderRow(row orderRow) allocation.Order {
	o := allocation.Order{
		OrderID:     row.OrderID,
		State:       allocation.State(row.State),
		ContainerID: deref(row.ContainerID),
		Generation:  row.Generation,
		Version:     row.Version,
	}
	if row.ClaimToken != nil {
		o.Claim = allocation.Claim{
			Token:        *row.ClaimToken,
			Generation:   row.Generation,
			ErrorClass:   failure.Class(deref(row.ErrorClass)),
			ErrorReason:  deref(row.ErrorReason),
			ErrorMessage: deref(row.ErrorMessage),
			Owner:        deref(row.ClaimOwner),
			Written:      row.Written,
			ClaimedAt:    row.UpdatedAt,
		}
	}
	return o
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
