package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"

	"github.com/eventgate/eventgate/pkg/kube"
)

// reportEvery is how often the same list or watch failure is logged again while it lasts.
const reportEvery = time.Minute

// configMapAccess hears of the event-source informer's list and watch failures. client-go
// retries every failure by itself, on backoff, and tells only klog; a refusal by RBAC would
// leave the client waiting for its first sync without a word in its log or the Gateway's
// status. A refusal is logged as an error and written to the Gateway's status (phase Error,
// as failGateway writes it), and the client keeps waiting: RBAC may be fixed, and the next
// watch the API server accepts clears that status again.
type configMapAccess struct {
	gateways dynamic.ResourceInterface
	gateway  string // the Gateway's name
	ref      string // namespace/name of the Gateway
	source   string // namespace/name of the ConfigMap
	log      *slog.Logger
	now      func() time.Time

	mu         sync.Mutex
	lastReason string    // the last failure logged
	lastLogged time.Time // when it was logged
	denied     string    // the status message written for a refusal, "" if none
}

func newConfigMapAccess(gateways dynamic.ResourceInterface, gateway, ref, source string, log *slog.Logger) *configMapAccess {
	return &configMapAccess{gateways: gateways, gateway: gateway, ref: ref, source: source, log: log, now: time.Now}
}

// isRoutine tells the failures every long watch meets (closed, expired): client-go lists
// or watches again at once, and there is nothing to tell.
func isRoutine(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
}

// failed is the informer's watch-error handler: it runs on the reflector's goroutine after
// each failed list or watch, before client-go retries.
func (a *configMapAccess) failed(ctx context.Context, r *cache.Reflector, err error) {
	switch {
	case kube.IsDenied(err):
		if a.shouldLog(err) {
			a.log.Error("event-source ConfigMap not readable: no event sources until RBAC allows it", "configMap", a.source, "error", err)
		}
		a.deny(ctx, err)
	case isRoutine(err):
	default:
		if a.shouldLog(err) {
			a.log.Warn("event-source ConfigMap list or watch failed: retrying", "configMap", a.source, "error", err)
		}
	}
	cache.DefaultWatchErrorHandler(ctx, r, err)
}

// shouldLog throttles the log: a failure is logged when its reason changes, and again every
// reportEvery while it lasts.
func (a *configMapAccess) shouldLog(err error) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if err.Error() == a.lastReason && now.Sub(a.lastLogged) < reportEvery {
		return false
	}
	a.lastReason, a.lastLogged = err.Error(), now
	return true
}

// deny writes the refusal to the Gateway's status, once per distinct reason.
func (a *configMapAccess) deny(ctx context.Context, err error) {
	message := fmt.Sprintf("Gateway %s cannot read its event-source ConfigMap %s (waiting until it may): %v", a.ref, a.source, err)
	a.mu.Lock()
	defer a.mu.Unlock()
	if message == a.denied {
		return
	}
	if werr := writeClientError(ctx, a.gateways, a.gateway, message); werr != nil {
		a.log.Error("could not write the Gateway's Error status", "error", werr)
		return // written again on the next refusal
	}
	a.denied = message
}

// watching hears that the API server accepted a watch of the ConfigMap: list and watch are
// allowed. A refusal written before is cleared, and a later one is told again.
func (a *configMapAccess) watching(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastReason = ""
	if a.denied == "" {
		return
	}
	if err := clearClientError(ctx, a.gateways, a.gateway, a.denied); err != nil {
		// Most likely the gateway-controller replaced the status already.
		a.log.Debug("Gateway's Error status not cleared", "error", err)
	}
	a.log.Info("event-source ConfigMap readable again", "configMap", a.source)
	a.denied = ""
}
