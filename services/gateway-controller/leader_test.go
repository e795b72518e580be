package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/eventgate/eventgate/pkg/testenv"
)

// Two replicas: one holds the Lease and reconciles, the other stands by; when the leader
// stops, the other takes over and reconciles what comes next.
func TestTwoReplicasOneLeader(t *testing.T) {
	k := newKubeTest(t)
	args := []string{"--instance-id", "argo-events", "--lease-duration", "3s"}
	a := k.startController(t, k.env.AdminKubeconfig, args...)
	b := k.startController(t, k.env.AdminKubeconfig, args...)

	var leader, standby *controllerProc
	testenv.Eventually(t, wait, poll, func() error {
		la, lb := a.metric("eventgate_controller_leader"), b.metric("eventgate_controller_leader")
		switch {
		case la == "1" && lb == "0":
			leader, standby = a, b
		case la == "0" && lb == "1":
			leader, standby = b, a
		default:
			return fmt.Errorf("leader gauges %q and %q, want one 1 and one 0", la, lb)
		}
		return nil
	})
	lease, err := k.kube.CoordinationV1().Leases(k.ns).Get(context.Background(), "gateway-controller-argo-events", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	holder := *lease.Spec.HolderIdentity
	if want := fmt.Sprintf("_%d", leader.Cmd.Process.Pid); len(holder) < len(want) || holder[len(holder)-len(want):] != want {
		t.Errorf("Lease holder %q is not the replica whose gauge says leader (pid %d)", holder, leader.Cmd.Process.Pid)
	}
	k.create(t, k.seed(t))
	k.waitDeployment(t, "webhook-gateway-http", nil)

	// A graceful stop releases the Lease: the standby need not wait for it to expire.
	if err := leader.Stop(10 * time.Second); err != nil {
		t.Fatalf("leader did not stop cleanly: %v", err)
	}
	testenv.Eventually(t, wait, poll, func() error {
		if got := standby.metric("eventgate_controller_leader"); got != "1" {
			return fmt.Errorf("standby's leader gauge %q", got)
		}
		return nil
	})
	next := k.seed(t)
	next.SetName("after-failover")
	unstructured.SetNestedField(next.Object, "after-failover-pod", "spec", "template", "metadata", "name")
	k.create(t, next)
	k.waitDeployment(t, "after-failover-pod", nil)
}

// The settings come from v0.10's ConfigMap (key "config": instanceID, namespace) when no
// flag overrides them.
func TestSettingsFromConfigMap(t *testing.T) {
	k := newKubeTest(t)
	_, err := k.kube.CoreV1().ConfigMaps(k.ns).Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "gateway-controller-configmap"},
		Data:       map[string]string{"config": "instanceID: team-a\nnamespace: " + k.ns + "\n"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreePort(t)
	testenv.StartProcess(t, testenv.Binary(t, "services/gateway-controller"),
		[]string{"--kubeconfig", k.env.AdminKubeconfig, "--metrics-address", addr, "--leader-elect=false"},
		"NAMESPACE="+k.ns, "CONTROLLER_CONFIG_MAP=gateway-controller-configmap")
	gw := k.seed(t)
	gw.SetLabels(map[string]string{labelInstanceID: "team-a", "argo-events-gateway-version": "v0.10"})
	k.create(t, gw)
	d := k.waitDeployment(t, "webhook-gateway-http", nil)
	if got := envOf(t, d.Spec.Template.Spec.Containers[0])["GATEWAY_CONTROLLER_INSTANCE_ID"]; got != "team-a" {
		t.Errorf("GATEWAY_CONTROLLER_INSTANCE_ID = %q, want the ConfigMap's team-a", got)
	}
}

// A controller that cannot run says why and exits, rather than running with a guess.
func TestBadSettingsExit(t *testing.T) {
	k := newKubeTest(t)
	_, err := k.kube.CoreV1().ConfigMaps(k.ns).Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "typo"},
		Data:       map[string]string{"config": "instanceID: team-a\nnamspace: team-a\n"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no instance id", nil, "instanceID: required"},
		{"missing ConfigMap", []string{"--config-map", "nope"}, "ConfigMap " + k.ns + "/nope (--config-map) not found"},
		{"misspelt key", []string{"--config-map", "typo"}, `unknown field "namspace"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--kubeconfig", k.env.AdminKubeconfig, "--namespace", k.ns, "--metrics-address", "127.0.0.1:0"}, tc.args...)
			p := testenv.StartProcess(t, testenv.Binary(t, "services/gateway-controller"), args)
			testenv.Eventually(t, wait, poll, func() error {
				if exited, _ := p.Exited(); !exited {
					return fmt.Errorf("still running")
				}
				return nil
			})
			if _, err := p.Exited(); err == nil {
				t.Error("exit status 0, want an error")
			}
			if out := p.Output.String(); !strings.Contains(out, tc.want) {
				t.Errorf("output %q does not say %q", out, tc.want)
			}
		})
	}
}
