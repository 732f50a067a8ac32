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
	s := New(func() Status { return st }, slog.Default(), Options{})
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

func TestMetricsAuthorization(t *testing.T) {
	s := New(func() Status { return Status{} }, slog.Default(), Options{AuthorizeMetrics: func(r *http.Request) bool {
		u, p, _ := r.BasicAuth()
		return u == "prom" && p == "pw"
	}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()
	get := func(path, user, pass string) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if r := get("/metrics", "", ""); r.StatusCode != 401 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("/metrics without credentials = %d %q, want 401 with a Basic challenge", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	if r := get("/metrics", "prom", "bad"); r.StatusCode != 401 {
		t.Errorf("/metrics with a wrong password = %d, want 401", r.StatusCode)
	}
	if r := get("/metrics", "prom", "pw"); r.StatusCode != 200 {
		t.Errorf("/metrics authorized = %d, want 200", r.StatusCode)
	}
	if r := get("/healthz", "", ""); r.StatusCode != 200 {
		t.Errorf("/healthz = %d: probes need no credentials", r.StatusCode)
	}
}
