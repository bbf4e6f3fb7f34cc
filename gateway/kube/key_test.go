package kube_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wasmbed/wasmbed/api/protocol"
	wasmbedv1alpha1 "github.com/wasmbed/wasmbed/api/v1alpha1"
	"github.com/wasmbed/wasmbed/gateway"
	"github.com/wasmbed/wasmbed/gateway/kube"
	"github.com/wasmbed/wasmbed/internal/pki"
	"github.com/wasmbed/wasmbed/internal/testenv"
)

func keyOf(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: "default", Name: name}
}

// credential is a device certificate with its key and the key's recorded form.
type credential struct {
	cert tls.Certificate
	hash string
}

func issue(t *testing.T, ca *pki.CA, name string) credential {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueDevice(pki.Identity{Namespace: "default", Name: name}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return credential{cert: cert, hash: pki.PublicKeyHash(cert.Leaf.RawSubjectPublicKeyInfo)}
}

// session is a device's connection after Welcome.
type session struct {
	conn *tls.Conn
	r    *protocol.Reader
}

// hello connects to the gateway at addr as name with cred over mutual TLS and says
// Hello; it returns the session once Welcome arrives, or why the gateway refused.
func hello(t *testing.T, addr string, ca *pki.CA, name string, cred credential) (*session, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
		RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cred.cert},
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	w := protocol.NewWriter(c, protocol.DefaultMaxFrame)
	if err := w.WriteMessage(&protocol.Hello{DeviceID: "default/" + name, Board: "virtual", Firmware: "test/1",
		Caps: protocol.Capabilities{RAM: 1 << 18, Flash: 1 << 20, MaxModule: 1 << 18, ABI: 1, MaxFrame: protocol.DefaultMaxFrame}}); err != nil {
		return nil, err
	}
	r := protocol.NewReader(c, protocol.DefaultMaxFrame)
	m, err := r.ReadMessage()
	if err != nil {
		return nil, fmt.Errorf("no Welcome: %w", err)
	}
	if _, ok := m.(*protocol.Welcome); !ok {
		return nil, fmt.Errorf("no Welcome: %s %+v", m.Type(), m)
	}
	_ = c.SetDeadline(time.Time{})
	return &session{conn: c, r: r}, nil
}

// closed waits for the gateway to end the session.
func (s *session) closed(t *testing.T) {
	t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := s.r.ReadMessage(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the gateway did not close the session")
			}
			return
		}
	}
}

// TestKubeRegistryAdmitsOnlyTheRecordedKey runs a gateway with the Kubernetes registry
// against a real apiserver, and devices over real mutual TLS: once a Device has a
// recorded certificate, only its recorded key gets a session, even with another
// certificate the platform CA signed for the same identity; clearing the key or marking
// the Device for re-enrollment refuses it and closes its live session.
func TestKubeRegistryAdmitsOnlyTheRecordedKey(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	ca, err := pki.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	notAfter := metav1.NewTime(time.Now().Add(time.Hour).Truncate(time.Second))
	creds := map[string][2]credential{} // per Device: its recorded key's certificate, and another
	device := func(name string, annotations map[string]string, status func(s *wasmbedv1alpha1.DeviceStatus, mine string)) {
		t.Helper()
		creds[name] = [2]credential{issue(t, ca, name), issue(t, ca, name)}
		d := &wasmbedv1alpha1.Device{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: annotations},
			Spec: wasmbedv1alpha1.DeviceSpec{Board: "virtual"}}
		if err := env.Client.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		if status != nil {
			status(&d.Status, creds[name][0].hash)
			if err := env.Client.Status().Update(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	recorded := func(s *wasmbedv1alpha1.DeviceStatus, mine string) { s.RecordKey(mine, &notAfter) }
	device("recorded", nil, recorded)
	device("cleared", nil, func(s *wasmbedv1alpha1.DeviceStatus, _ string) { s.RecordKey("", &notAfter) })
	device("marked", map[string]string{wasmbedv1alpha1.DeviceReenrollAnnotation: "true"}, recorded)
	device("unrecorded", nil, nil)
	device("live", nil, recorded)

	reg, err := kube.New(env.Config, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, _ := ca.IssueServer([]string{"localhost"}, nil, 0)
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	srv, err := gateway.New(gateway.NewConfig(ca.Pool(), cert).WithRegistry(reg).WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())
	addr := l.Addr().String()

	for _, tc := range []struct {
		device  string
		other   bool   // present the other certificate, not the recorded key's
		refusal string // "" when admitted
	}{
		{device: "recorded"},
		{device: "recorded", other: true, refusal: "not its recorded key " + creds["recorded"][0].hash},
		{device: "cleared", refusal: "recorded key was cleared"},
		{device: "marked", refusal: "marked for re-enrollment"},
		{device: "unrecorded", other: true},
	} {
		t.Run(fmt.Sprintf("%s other=%v", tc.device, tc.other), func(t *testing.T) {
			cred := creds[tc.device][0]
			if tc.other {
				cred = creds[tc.device][1]
			}
			s, err := hello(t, addr, ca, tc.device, cred)
			switch {
			case tc.refusal == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refusal != "" && err == nil:
				t.Fatal("admitted")
			case tc.refusal == "":
				s.conn.Close()
				return
			}
			// The registry says why, as the gateway logs it.
			id := pki.Identity{Namespace: "default", Name: tc.device}
			err = reg.Check(ctx, id, cred.cert.Leaf)
			if !errors.Is(err, gateway.ErrNotAllowed) || !strings.Contains(err.Error(), tc.refusal) {
				t.Fatalf("Check: %v, want ErrNotAllowed saying %q", err, tc.refusal)
			}
		})
	}

	// A live session ends when its key is cleared, and the key stays out.
	s, err := hello(t, addr, ca, "live", creds["live"][0])
	if err != nil {
		t.Fatal(err)
	}
	var d wasmbedv1alpha1.Device
	if err := env.Client.Get(ctx, keyOf("live"), &d); err != nil {
		t.Fatal(err)
	}
	before := d.DeepCopy()
	d.Status.PublicKeyHash = ""
	if err := env.Client.Status().Patch(ctx, &d, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	s.closed(t)
	if _, err := hello(t, addr, ca, "live", creds["live"][0]); err == nil {
		t.Fatal("a revoked key was admitted again")
	}
	// Recording another key admits that one.
	before = d.DeepCopy()
	d.Status.PublicKeyHash = creds["live"][1].hash
	if err := env.Client.Status().Patch(ctx, &d, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := hello(t, addr, ca, "live", creds["live"][1])
		if err == nil {
			s.conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the newly recorded key is refused: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
