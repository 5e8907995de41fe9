// Command reefer-manager runs the reefer-manager service (package manager); see
// reefer-manager --help and README.md.
package main

import (
	"github.com/reeferdlq/reefer-dlq/pkg/platform/cmdline"
	"github.com/reeferdlq/reefer-dlq/services/reefer-manager/manager"
)

func main() { cmdline.Main(manager.Command()) }
