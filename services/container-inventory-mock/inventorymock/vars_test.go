package inventorymock_test

import (
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
)

// TestVarsShowTheRealDefaults: setting every variable to the default
// --help prints gives the configuration of an empty environment.
func TestVarsShowTheRealDefaults(t *testing.T) {
	vars, err := inventorymock.Vars()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, v := range vars {
		env[v.Name] = v.Default
	}
	env["HTTP_ADDR"] = "127.0.0.1:8081" // the default binds beyond loopback, which wants a token
	empty := map[string]string{"HTTP_ADDR": "127.0.0.1:8081"}
	got, err := inventorymock.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want, err := inventorymock.ConfigFromEnv(func(k string) string { return empty[k] })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.Exporter(func(reflect.Type) bool { return true })); diff != "" {
		t.Errorf("configuration from the --help defaults (-empty environment +defaults):\n%s", diff)
	}
}
