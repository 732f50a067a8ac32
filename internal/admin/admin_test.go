package admin

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestEndpoints(t *testing.T) {
	st := Status{NodeID: 1, Shards: 4, ShardsLed: 3, LocalReplicas: 5, LocalLeaders: 2}
	s := New(func() Status { return st }, slog.Default())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, `"shards_with_leader":3`) {
		t.Errorf("/readyz with a leaderless shard = %d %s, want 503", code, body)
	}
	st.ShardsLed = 4
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz with every shard led = %d, want 200", code)
	}
	if _, body := get("/metrics"); !strings.Contains(body, "shoal_local_leaders 2") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics lacks shoal or Go metrics:\n%.500s", body)
	}
}
