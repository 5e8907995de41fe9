package compose

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

func TestVolumeReadsBothSyntaxes(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       Volume
		wantErr    bool
	}{
		{name: "short bind, read-only (v1)", yaml: `/repo/prometheus.yml:/etc/prometheus/prometheus.yml:ro`,
			want: Volume{Type: "bind", Source: "/repo/prometheus.yml", Target: "/etc/prometheus/prometheus.yml", ReadOnly: true}},
		{name: "short named volume", yaml: `kafka-data:/var/lib/kafka/data`,
			want: Volume{Type: "volume", Source: "kafka-data", Target: "/var/lib/kafka/data"}},
		{name: "short bind with several modes", yaml: `/a:/b:z,ro`,
			want: Volume{Type: "bind", Source: "/a", Target: "/b", ReadOnly: true}},
		{name: "long syntax (v2)", yaml: "{type: bind, source: /a, target: /b, read_only: true}",
			want: Volume{Type: "bind", Source: "/a", Target: "/b", ReadOnly: true}},
		{name: "no target", yaml: `/a`, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v Volume
			err := yaml.Unmarshal([]byte(tc.yaml), &v)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("decoded %q as %+v, want an error", tc.yaml, v)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, v); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestActiveFollowsProfiles(t *testing.T) {
	p := Project{Services: map[string]Service{
		"kafka":   {},
		"kafka-2": {Profiles: []string{"cluster"}},
		"grafana": {Profiles: []string{"observe"}},
		"both":    {Profiles: []string{"cluster", "observe"}},
	}}
	cases := []struct {
		profiles []string
		want     []string
	}{
		{nil, []string{"kafka"}},
		{[]string{"cluster"}, []string{"both", "kafka", "kafka-2"}},
		{[]string{"observe", "cluster"}, []string{"both", "grafana", "kafka", "kafka-2"}},
		{[]string{"unknown"}, []string{"kafka"}},
	}
	for _, tc := range cases {
		p.Profiles = tc.profiles
		if diff := cmp.Diff(tc.want, p.Active()); diff != "" {
			t.Errorf("profiles %v (-want +got):\n%s", tc.profiles, diff)
		}
	}
}

func TestEnvLeavesUnsetVariablesOut(t *testing.T) {
	v := "1"
	s := Service{Environment: map[string]*string{"SET": &v, "UNSET": nil}}
	if diff := cmp.Diff(map[string]string{"SET": "1"}, s.Env()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
