package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	rbacv1client "k8s.io/client-go/kubernetes/typed/rbac/v1"

	"github.com/eventgate/eventgate/pkg/kube"
	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/kubeenv"
	"github.com/eventgate/eventgate/pkg/testenv/natsenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// The gateway process as in a pod, reading a real Secret of its namespace as its service
// account: forbidden until RBAC grants get on secrets (an error that says so, retried),
// then connected; the token shows nowhere.
func TestTokenFromAKubernetesSecret(t *testing.T) {
	const token = "t0ken-from-a-kube-secret"
	env := kubeenv.Shared(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	core, err := corev1client.NewForConfig(env.Admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core.Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "nats-creds"},
		Data:       map[string][]byte{"token": []byte(token)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	natsServer := natsenv.StartServer(t, &natsserver.Options{Port: -1, Authorization: token})

	exe := testExecutable(t)
	gw, proc := testenv.StartGatewayProcess(t, exe, nil, runAsGateway+"=1", secret.EnvDir+"=",
		kube.EnvKubeconfig+"="+env.ServiceAccountKubeconfig(t, ns, "argo-events-sa"), server.EnvNamespace+"="+ns)
	s := testenv.OpenBufferedStream(t, gw.Client, &gateways.EventSource{Name: "kube", Data: fmt.Sprintf(
		"url: %s\nsubject: kube\ntokenSecret: {name: nats-creds, key: token}\nbackoff: {duration: 50ms, factor: 1}", natsServer.ClientURL())}, 64)
	testenv.WaitLogged(t, proc.Output, "nats.tokenSecret: secret nats-creds/token: forbidden: the gateway's service account needs get on secrets in namespace "+ns, 2, 20*time.Second)

	rbac, err := rbacv1client.NewForConfig(env.Admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "gateway-secrets"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "gateway-secrets"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "argo-events-sa", Namespace: ns}},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "gateway-secrets"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	nc := connect(t, natsServer.ClientURL(), nats.Token(token))
	waitSubscribed(t, nc, s, "kube")

	if err := gw.Stop(); err != nil {
		t.Errorf("gateway process: %v", err)
	}
	<-s.Ended()
	testenv.ExpectNotShown(t, "the gateway process's output", proc.Output.String(), token)
	testenv.ExpectNotShown(t, "the stream's error", fmt.Sprint(s.Err()), token)
}
