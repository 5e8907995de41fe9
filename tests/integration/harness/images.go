package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/testcontainers/testcontainers-go"

	"github.com/reeferdlq/reefer-dlq/pkg/testkit/pgtest"
)

// The images `make images` builds, nothing pulled. Each can be replaced
// through the environment variable named in Images.
const (
	DefaultKafkaImage     = "reefer-dlq/devbroker:dev"
	DefaultInventoryImage = "reefer-dlq/container-inventory-mock:dev"
	DefaultManagerImage   = "reefer-dlq/reefer-manager:dev"
	DefaultRetryImage     = "reefer-dlq/order-retry:dev"
	DefaultDLQImage       = "reefer-dlq/dlq:dev"
)

// Images names the image of every container a Stack runs.
type Images struct {
	Kafka     string // KAFKA_IMAGE (else DEVBROKER_IMAGE): devbroker or a real Kafka, see BrokerKindOf
	Postgres  string // POSTGRES_IMAGE
	Inventory string // INVENTORY_MOCK_IMAGE
	Manager   string // REEFER_MANAGER_IMAGE
	Retry     string // ORDER_RETRY_IMAGE
	DLQ       string // DLQ_IMAGE
}

// ImagesFromEnv reads the image names from the environment (the Makefile
// exports them), each falling back to the image `make images` builds.
func ImagesFromEnv() Images {
	return Images{
		Kafka:     firstSet(os.Getenv("KAFKA_IMAGE"), os.Getenv("DEVBROKER_IMAGE"), DefaultKafkaImage),
		Postgres:  pgtest.Image(),
		Inventory: firstSet(os.Getenv("INVENTORY_MOCK_IMAGE"), DefaultInventoryImage),
		Manager:   firstSet(os.Getenv("REEFER_MANAGER_IMAGE"), DefaultManagerImage),
		Retry:     firstSet(os.Getenv("ORDER_RETRY_IMAGE"), DefaultRetryImage),
		DLQ:       firstSet(os.Getenv("DLQ_IMAGE"), DefaultDLQImage),
	}
}

func (im Images) all() []string {
	return []string{im.Kafka, im.Postgres, im.Inventory, im.Manager, im.Retry, im.DLQ}
}

func firstSet(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// isLocalImage reports whether img is one of the images `make images`
// builds, which no registry serves.
func isLocalImage(img string) bool {
	return strings.HasPrefix(img, "reefer-dlq/")
}

// checkEngine turns the usual set-up mistakes into one clear message each,
// instead of a panic, a hang or a failed pull: no Docker engine, and images
// that `make images` has not built yet. Public images are left to the
// engine to pull.
func checkEngine(ctx context.Context, images []string) (err error) {
	// testcontainers panics when it finds no Docker host at all.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("no Docker engine reachable (%v): start Docker, or run `make test-unit` for the tests that need none", r)
		}
	}()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("no Docker engine reachable: %w: start Docker, or run `make test-unit` for the tests that need none", err)
	}
	defer cli.Close()

	var missing []string
	for _, img := range images {
		_, err := cli.ImageInspect(ctx, img)
		switch {
		case err == nil:
		case !errdefs.IsNotFound(err):
			return fmt.Errorf("inspect image %s: %w", img, err)
		case isLocalImage(img):
			missing = append(missing, img)
		}
	}
	if len(missing) > 0 {
		return errors.New("images not in the Docker engine: " + strings.Join(missing, ", ") +
			": run `make images` (or point the *_IMAGE variables at images your engine can pull)")
	}
	return nil
}
