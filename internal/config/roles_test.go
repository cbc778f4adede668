package config

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestParseRoles(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{in: "", want: "all"},
		{in: "all", want: "all"},
		{in: "capture", want: "capture"},
		{in: "api", want: "api"},
		{in: "sink, transform", want: "transform,sink"},
		{in: "capture,transform,sink", want: "capture,transform,sink"},
		{in: "capture,transform,sink,api", want: "all"},
		{in: "API,Capture", want: "capture,api"},
		{in: "capture,all", want: "all"},
		{in: "sync", err: true},
		{in: "capture,", err: true},
		{in: "captures", err: true},
	} {
		rs, err := ParseRoles(tc.in)
		if tc.err {
			if err == nil {
				t.Errorf("ParseRoles(%q) = %s, want an error", tc.in, rs)
			}
			continue
		}
		if err != nil || rs.String() != tc.want {
			t.Errorf("ParseRoles(%q) = %s, %v; want %s", tc.in, rs, err, tc.want)
		}
	}
}

func TestRoleFromFlagEnvAndServiceType(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   []string
		flags []string
		want  string
		err   string
	}{
		{name: "default", want: "all"},
		{name: "flag", flags: []string{"--role=capture"}, want: "capture"},
		{name: "flag list", flags: []string{"--role", "transform,sink"}, want: "transform,sink"},
		{name: "SERVICE_TYPE sync", env: []string{"SERVICE_TYPE=sync"}, want: "capture,transform,sink"},
		{name: "SERVICE_TYPE api", env: []string{"SERVICE_TYPE=api"}, want: "api"},
		{name: "generic beats legacy", env: []string{"SERVICE_TYPE=api", "WALSEARCH_ROLE=sink"}, want: "sink"},
		{name: "flag beats env", env: []string{"SERVICE_TYPE=sync"}, flags: []string{"--role=api"}, want: "api"},
		{name: "bad SERVICE_TYPE", env: []string{"SERVICE_TYPE=worker"}, err: "SERVICE_TYPE: want sync"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			AddFlags(fs, AllFlags...)
			if err := fs.Parse(tc.flags); err != nil {
				t.Fatal(err)
			}
			c, err := Load("", tc.env, fs)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Load: %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Roles().String(); got != tc.want {
				t.Fatalf("roles = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestRolesNeedASharedBus(t *testing.T) {
	for _, tc := range []struct {
		role, nats, es string
		err            string
	}{
		{role: "all"},
		{role: "capture", err: "set nats.url"},
		{role: "capture", nats: "nats://127.0.0.1:4222"},
		{role: "sink", nats: "nats://127.0.0.1:4222", err: "set elasticsearch.url"},
		{role: "sink,api", nats: "nats://127.0.0.1:4222"},
		{role: "api", nats: "nats://127.0.0.1:4222", es: "http://127.0.0.1:9200"},
		{role: "bogus", err: "role: want all"},
	} {
		c := Default()
		c.Role, c.NATS.URL, c.Elasticsearch.URL = tc.role, tc.nats, tc.es
		err := c.validateRoles()
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("role %s nats %q es %q: %v, want %q", tc.role, tc.nats, tc.es, err, tc.err)
		}
	}
}
