// Command container-inventory-mock runs the mock of the legacy container
// inventory (package inventorymock); see --help and README.md.
package main

import (
	"github.com/reeferdlq/reefer-dlq/pkg/platform/cmdline"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
)

func main() { cmdline.Main(command()) }

func command() cmdline.Command {
	return cmdline.Command{Name: "container-inventory-mock", About: inventorymock.About, Env: inventorymock.Vars, Run: run}
}
