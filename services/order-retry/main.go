// Command order-retry runs the order-retry service (package retrier); see
// order-retry --help and README.md.
package main

import (
	"github.com/reeferdlq/reefer-dlq/pkg/platform/cmdline"
	"github.com/reeferdlq/reefer-dlq/services/order-retry/retrier"
)

func main() { cmdline.Main(retrier.Command()) }
