package sensorsink

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// controlRoutes let tests and demos drive a running sensor, even one started as a separate
// process, without restarting it:
//
//	GET  /control/mode                       current mode
//	PUT  /control/mode  body ok|fail|stall    switch mode (POST ?mode=... too)
//	GET  /control/fail-first                 deliveries still to fail whatever the mode
//	PUT  /control/fail-first  body N         fail the next N deliveries (POST ?n=... too)
//	GET  /control/events                     received events, a JSON array
//	DELETE /control/events                   forget them
//	GET  /control/stats                      delivery counts, JSON
func (s *Sink) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /control/mode", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, s.Mode())
	})
	setMode := func(w http.ResponseWriter, r *http.Request) {
		value, ok := controlValue(w, r, "mode")
		if !ok {
			return
		}
		m, err := ParseMode(value)
		if err != nil {
			http.Error(w, "mode: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.SetMode(m)
		fmt.Fprintln(w, m)
	}
	mux.HandleFunc("PUT /control/mode", setMode)
	mux.HandleFunc("POST /control/mode", setMode)

	mux.HandleFunc("GET /control/fail-first", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, s.FailFirst())
	})
	setFailFirst := func(w http.ResponseWriter, r *http.Request) {
		value, ok := controlValue(w, r, "n")
		if !ok {
			return
		}
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			http.Error(w, fmt.Sprintf("fail-first: %q is not a count", value), http.StatusBadRequest)
			return
		}
		s.SetFailFirst(n)
		fmt.Fprintln(w, n)
	}
	mux.HandleFunc("PUT /control/fail-first", setFailFirst)
	mux.HandleFunc("POST /control/fail-first", setFailFirst)

	mux.HandleFunc("GET /control/events", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.Received())
	})
	mux.HandleFunc("DELETE /control/events", func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /control/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.Stats())
	})
	// A mistyped control path must not be taken for an event.
	mux.HandleFunc("POST /control/", http.NotFound)
}

// controlValue reads a setting from the query parameter key or, failing that, the body,
// so that both `curl -X PUT -d fail` and `curl -X POST '...?mode=fail'` work.
func controlValue(w http.ResponseWriter, r *http.Request, key string) (string, bool) {
	if v := r.URL.Query().Get(key); v != "" {
		return v, true
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1024))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return "", false
	}
	return strings.TrimSpace(string(body)), true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
