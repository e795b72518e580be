package server

import (
	"fmt"
	"strconv"
	"strings"
)

// The environment every gateway server reads, as set by the gateway-controller (the
// Argo Events v0.10 runtime contract).
const (
	EnvNamespace            = "GATEWAY_NAMESPACE"
	EnvEventSourceConfigMap = "GATEWAY_EVENT_SOURCE_CONFIG_MAP"
	EnvName                 = "GATEWAY_NAME"
	EnvControllerInstanceID = "GATEWAY_CONTROLLER_INSTANCE_ID"
	EnvControllerName       = "GATEWAY_CONTROLLER_NAME"
	EnvServerPort           = "GATEWAY_SERVER_PORT"
	// EnvServerHost is an eventgate addition: the address to bind, all interfaces when empty
	// (as v0.10 did); local runs set 127.0.0.1.
	EnvServerHost = "GATEWAY_SERVER_HOST"

	// DefaultServerPort is the v0.10 processorPort default.
	DefaultServerPort = 9330
)

// Env is the validated runtime environment of a gateway server. Outside Kubernetes the
// names may be empty; only the port is always needed, and it has a default.
type Env struct {
	Namespace            string
	EventSourceConfigMap string
	Name                 string
	ControllerInstanceID string
	ControllerName       string
	Host                 string
	// Port is the gRPC port; 0 asks the kernel for a free one (tests, local runs).
	Port int
}

// Address is the host:port to listen on.
func (e Env) Address() string { return e.Host + ":" + strconv.Itoa(e.Port) }

// EnvFrom reads the gateway environment through lookup (os.LookupEnv in production) and
// reports every malformed variable by name.
func EnvFrom(lookup func(string) (string, bool)) (Env, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return v
	}
	env := Env{
		Namespace:            get(EnvNamespace),
		EventSourceConfigMap: get(EnvEventSourceConfigMap),
		Name:                 get(EnvName),
		ControllerInstanceID: get(EnvControllerInstanceID),
		ControllerName:       get(EnvControllerName),
		Host:                 get(EnvServerHost),
		Port:                 DefaultServerPort,
	}
	var problems []string
	bad := func(name, format string, args ...any) {
		problems = append(problems, name+": "+fmt.Sprintf(format, args...))
	}

	for _, v := range []struct{ name, value string }{
		{EnvNamespace, env.Namespace},
		{EnvName, env.Name},
		{EnvControllerInstanceID, env.ControllerInstanceID},
		{EnvControllerName, env.ControllerName},
	} {
		if v.value != "" && !isDNSName(v.value) {
			bad(v.name, "%q is not a valid Kubernetes name (lower-case letters, digits, '-' and '.')", v.value)
		}
	}
	if cm := env.EventSourceConfigMap; cm != "" {
		ns, name, found := strings.Cut(cm, "/")
		if !found {
			ns, name = "", cm
		}
		if (found && !isDNSName(ns)) || !isDNSName(name) {
			bad(EnvEventSourceConfigMap, "%q is not a ConfigMap name or namespace/name", cm)
		}
	}
	if raw, ok := lookup(EnvServerPort); ok && raw != "" {
		port, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil || port < 0 || port > 65535 {
			bad(EnvServerPort, "%q is not a port number (0-65535)", raw)
		} else {
			env.Port = port
		}
	}
	if strings.ContainsAny(env.Host, " /:") && !strings.HasPrefix(env.Host, "[") {
		bad(EnvServerHost, "%q is not a host name or IP address", env.Host)
	}
	if len(problems) > 0 {
		return Env{}, fmt.Errorf("gateway environment: %s", strings.Join(problems, "; "))
	}
	return env, nil
}

// isDNSName accepts RFC 1123 subdomains, the names Kubernetes objects carry.
func isDNSName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
