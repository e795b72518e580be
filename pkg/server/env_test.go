package server

import (
	"strings"
	"testing"
)

func TestEnvFrom(t *testing.T) {
	tests := []struct {
		name    string
		vars    map[string]string
		want    Env
		wantErr []string // every variable the error must name
		notErr  []string // variables the error must not name
	}{
		{name: "nothing set: defaults", vars: nil, want: Env{Port: 9330}},
		{
			name: "everything set",
			vars: map[string]string{
				EnvNamespace: "argo-events", EnvEventSourceConfigMap: "other-ns/calendar-event-source",
				EnvName: "calendar-gateway", EnvControllerInstanceID: "argo-events",
				EnvControllerName: "gateway-controller", EnvServerPort: "9331", EnvServerHost: "127.0.0.1",
			},
			want: Env{
				Namespace: "argo-events", EventSourceConfigMap: "other-ns/calendar-event-source",
				Name: "calendar-gateway", ControllerInstanceID: "argo-events",
				ControllerName: "gateway-controller", Port: 9331, Host: "127.0.0.1", SourceHost: "127.0.0.1",
			},
		},
		{
			name: "source host unset: where gRPC binds",
			vars: map[string]string{EnvServerHost: "127.0.0.1"},
			want: Env{Port: 9330, Host: "127.0.0.1", SourceHost: "127.0.0.1"},
		},
		{
			name: "source host empty: every interface (the gateway-controller's pods)",
			vars: map[string]string{EnvServerHost: "127.0.0.1", EnvSourceHost: ""},
			want: Env{Port: 9330, Host: "127.0.0.1", SourceHost: ""},
		},
		{
			name: "source host set",
			vars: map[string]string{EnvServerHost: "127.0.0.1", EnvSourceHost: "10.1.2.3"},
			want: Env{Port: 9330, Host: "127.0.0.1", SourceHost: "10.1.2.3"},
		},
		{
			name: "source host IPv6",
			vars: map[string]string{EnvSourceHost: "[::1]"},
			want: Env{Port: 9330, SourceHost: "[::1]"},
		},
		{
			name: "TLS with client certificates",
			vars: map[string]string{EnvServerTLSCertFile: "/tls/tls.crt", EnvServerTLSKeyFile: "/tls/tls.key", EnvServerTLSClientCAFile: "/tls/ca.crt"},
			want: Env{Port: 9330, TLSCertFile: "/tls/tls.crt", TLSKeyFile: "/tls/tls.key", TLSClientCAFile: "/tls/ca.crt"},
		},
		{
			name: "TLS without client certificates",
			vars: map[string]string{EnvServerTLSCertFile: "/tls/tls.crt", EnvServerTLSKeyFile: "/tls/tls.key"},
			want: Env{Port: 9330, TLSCertFile: "/tls/tls.crt", TLSKeyFile: "/tls/tls.key"},
		},
		{name: "TLS cert without key", vars: map[string]string{EnvServerTLSCertFile: "/tls/tls.crt"}, wantErr: []string{EnvServerTLSKeyFile}},
		{name: "TLS key without cert", vars: map[string]string{EnvServerTLSKeyFile: "/tls/tls.key"}, wantErr: []string{EnvServerTLSCertFile}},
		{name: "client CA without TLS", vars: map[string]string{EnvServerTLSClientCAFile: "/tls/ca.crt"}, wantErr: []string{EnvServerTLSClientCAFile}},
		{name: "source host with a port", vars: map[string]string{EnvSourceHost: "0.0.0.0:12000"}, wantErr: []string{EnvSourceHost}},
		{name: "source host with a space", vars: map[string]string{EnvSourceHost: "local host"}, wantErr: []string{EnvSourceHost}},
		{name: "port zero picks a free port", vars: map[string]string{EnvServerPort: "0"}, want: Env{Port: 0}},
		{name: "empty port keeps the default", vars: map[string]string{EnvServerPort: ""}, want: Env{Port: 9330}},
		{name: "port not a number", vars: map[string]string{EnvServerPort: "ninety"}, wantErr: []string{EnvServerPort}},
		{name: "port out of range", vars: map[string]string{EnvServerPort: "70000"}, wantErr: []string{EnvServerPort}},
		{name: "negative port", vars: map[string]string{EnvServerPort: "-1"}, wantErr: []string{EnvServerPort}},
		{name: "upper-case namespace", vars: map[string]string{EnvNamespace: "Argo"}, wantErr: []string{EnvNamespace}},
		{
			// The controller checks the instance ID as a label value and copies it into every
			// gateway pod: a server that refused it would crash-loop every pod.
			name: "instance ID with upper case and '_', as labels allow",
			vars: map[string]string{EnvControllerInstanceID: "Team_A"},
			want: Env{Port: 9330, ControllerInstanceID: "Team_A"},
		},
		{name: "instance ID that is not a label value", vars: map[string]string{EnvControllerInstanceID: "team/a"}, wantErr: []string{EnvControllerInstanceID}},
		{name: "config map with two slashes", vars: map[string]string{EnvEventSourceConfigMap: "a/b/c"}, wantErr: []string{EnvEventSourceConfigMap}},
		{name: "host with a port", vars: map[string]string{EnvServerHost: "127.0.0.1:80"}, wantErr: []string{EnvServerHost}, notErr: []string{EnvSourceHost}},
		{
			name:    "every problem reported",
			vars:    map[string]string{EnvName: "bad_name", EnvServerPort: "x", EnvControllerName: "-x"},
			wantErr: []string{EnvName, EnvServerPort, EnvControllerName},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EnvFrom(func(k string) (string, bool) { v, ok := tc.vars[k]; return v, ok })
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("EnvFrom = %+v, want an error naming %v", got, tc.wantErr)
				}
				for _, name := range tc.wantErr {
					if !strings.Contains(err.Error(), name+": ") {
						t.Errorf("error %q does not name %s", err, name)
					}
				}
				for _, name := range tc.notErr {
					if strings.Contains(err.Error(), name+": ") {
						t.Errorf("error %q names %s, which is fine", err, name)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("EnvFrom: %v", err)
			}
			if got != tc.want {
				t.Errorf("EnvFrom = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestEnvAddress(t *testing.T) {
	if got := (Env{Port: 9330}).Address(); got != ":9330" {
		t.Errorf("Address = %q, want :9330 (all interfaces, as v0.10)", got)
	}
	if got := (Env{Host: "127.0.0.1", Port: 0}).Address(); got != "127.0.0.1:0" {
		t.Errorf("Address = %q", got)
	}
}
