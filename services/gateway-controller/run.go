package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// runController connects, reads its settings, serves metrics and health, and reconciles
// while it holds the leader Lease (or at once, without --leader-elect) until ctx ends.
func runController(ctx context.Context, o options, log *slog.Logger) error {
	rc, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("Kubernetes client config: %w", err)
	}
	rc.UserAgent = o.controllerName
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("Kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("Kubernetes client: %w", err)
	}
	s, err := o.resolve(ctx, kube)
	if err != nil {
		return err
	}
	log = log.With("instanceID", s.InstanceID)

	lis, err := net.Listen("tcp", o.metricsAddress)
	if err != nil {
		return fmt.Errorf("--metrics-address: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := newMetrics()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		serveObservability(ctx, lis, m, log)
	}()

	recorder, stopRecorder := newRecorder(kube, o.controllerName)
	defer stopRecorder()
	c := newController(kube, dyn, s, o.controllerName, m, log)
	c.recorder = recorder

	if !o.leaderElect {
		m.leader.Set(1)
		return c.run(ctx, o.workers)
	}

	id := identity()
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, o.namespace, o.lease(s),
		kube.CoreV1(), kube.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id, EventRecorder: recorder})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	var runErr error
	lost := false
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          lock,
		LeaseDuration: o.leaseDuration,
		RenewDeadline: o.leaseDuration * 2 / 3,
		RetryPeriod:   o.leaseDuration / 5,
		// A replica that stops gracefully hands the Lease over at once.
		ReleaseOnCancel: true,
		Name:            o.lease(s),
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				log.Info("leading: reconciling", "lease", o.namespace+"/"+o.lease(s), "identity", id)
				m.leader.Set(1)
				runErr = c.run(ctx, o.workers)
			},
			OnStoppedLeading: func() {
				m.leader.Set(0)
				if ctx.Err() == nil {
					lost = true
				}
			},
			OnNewLeader: func(leader string) {
				if leader != id {
					log.Info("standing by: another replica leads", "lease", o.namespace+"/"+o.lease(s), "leader", leader)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	log.Info("waiting for the leader Lease", "lease", o.namespace+"/"+o.lease(s), "identity", id)
	le.Run(ctx)
	if lost {
		// Another replica may be reconciling by now: stop, and let the pod restart as a
		// standby, rather than risk two writers.
		return errors.Join(errors.New("lost the leader Lease"), runErr)
	}
	return runErr
}
