package server

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
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
	// EnvSourceHost is an eventgate addition: the address a gateway's own inbound listeners
	// (the webhook ports) bind. Unset, they bind where the gRPC server binds; set, they bind
	// there, every interface when empty. The gateway-controller keeps gRPC on loopback (the
	// gateway-client is in the same pod) and sets this empty, so that a Service reaches the
	// webhook ports but not the gRPC port.
	EnvSourceHost = "GATEWAY_SOURCE_HOST"
	// EnvServerTLSCertFile and EnvServerTLSKeyFile are an eventgate addition, for a gateway
	// server outside its client's pod: both set, gRPC is served over TLS with this
	// certificate (PEM files); neither set, in plaintext.
	EnvServerTLSCertFile = "GATEWAY_SERVER_TLS_CERT_FILE"
	EnvServerTLSKeyFile  = "GATEWAY_SERVER_TLS_KEY_FILE"
	// EnvServerTLSClientCAFile, with TLS, requires a client certificate signed by one of the
	// CAs in this PEM file: only clients given one can start event sources.
	EnvServerTLSClientCAFile = "GATEWAY_SERVER_TLS_CLIENT_CA_FILE"

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
	// Host is the address the gRPC server binds, every interface when empty.
	Host string
	// SourceHost is the address a gateway's own listeners bind (EnvSourceHost), every
	// interface when empty.
	SourceHost string
	// Port is the gRPC port; 0 asks the kernel for a free one (tests, local runs).
	Port int
	// TLSCertFile, TLSKeyFile and TLSClientCAFile are the gRPC server's TLS files, empty
	// for plaintext; see TLSConfig.
	TLSCertFile, TLSKeyFile, TLSClientCAFile string
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
		TLSCertFile:          get(EnvServerTLSCertFile),
		TLSKeyFile:           get(EnvServerTLSKeyFile),
		TLSClientCAFile:      get(EnvServerTLSClientCAFile),
	}
	var problems []string
	bad := func(name, format string, args ...any) {
		problems = append(problems, name+": "+fmt.Sprintf(format, args...))
	}

	for _, v := range []struct{ name, value string }{
		{EnvNamespace, env.Namespace},
		{EnvName, env.Name},
		{EnvControllerName, env.ControllerName},
	} {
		if v.value != "" && !isDNSName(v.value) {
			bad(v.name, "%q is not a valid Kubernetes name (lower-case letters, digits, '-' and '.')", v.value)
		}
	}
	// The instance ID is the value of the Gateway's instance label, which the controller
	// checks as a label value (upper case and '_' allowed) and copies into every pod.
	if id := env.ControllerInstanceID; id != "" {
		if errs := validation.IsValidLabelValue(id); len(errs) > 0 {
			bad(EnvControllerInstanceID, "%q is not a label value: %s", id, strings.Join(errs, ", "))
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
	if !isHost(env.Host) {
		bad(EnvServerHost, "%q is not a host name or IP address", env.Host)
	}
	env.SourceHost = env.Host
	if v, ok := lookup(EnvSourceHost); ok {
		// Set but empty is every interface, not "unset": the controller means it.
		env.SourceHost = v
		if !isHost(v) {
			bad(EnvSourceHost, "%q is not a host name or IP address", v)
		}
	}
	switch {
	case env.TLSCertFile != "" && env.TLSKeyFile == "":
		bad(EnvServerTLSKeyFile, "required with %s", EnvServerTLSCertFile)
	case env.TLSCertFile == "" && env.TLSKeyFile != "":
		bad(EnvServerTLSCertFile, "required with %s", EnvServerTLSKeyFile)
	case env.TLSCertFile == "" && env.TLSClientCAFile != "":
		bad(EnvServerTLSClientCAFile, "client certificates need TLS: set %s and %s too", EnvServerTLSCertFile, EnvServerTLSKeyFile)
	}
	if len(problems) > 0 {
		return Env{}, fmt.Errorf("gateway environment: %s", strings.Join(problems, "; "))
	}
	return env, nil
}

// isHost accepts what may stand before ":port" in a listen address: empty (every
// interface), a host name, an IPv4 address or a bracketed IPv6 address.
func isHost(s string) bool {
	return !strings.ContainsAny(s, " /:") || strings.HasPrefix(s, "[")
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
