// Package admin serves a node's HTTP endpoints: /healthz (the process is
// up), /readyz (the cluster can serve: every data shard has a leader) and
// /metrics (Prometheus). Status is data first: the node hands in functions
// returning structs, and the handlers only encode them.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Status is what /readyz reports.
type Status struct {
	NodeID        uint64 `json:"node_id"`
	ClusterID     string `json:"cluster_id"`
	Shards        int    `json:"shards"`
	ShardsLed     int    `json:"shards_with_leader"`
	LocalReplicas int    `json:"local_replicas"`
	LocalLeaders  int    `json:"local_leaders"`
}

// Ready reports whether every shard has a leader.
func (s Status) Ready() bool { return s.Shards > 0 && s.ShardsLed == s.Shards }

// Server is the HTTP endpoint of a node.
type Server struct {
	srv *http.Server
	log *slog.Logger
}

// Options shape the endpoints.
type Options struct {
	// AuthorizeMetrics, when set, decides whether a request may read
	// /metrics; a refused one is answered 401 with a Basic challenge.
	// /healthz and /readyz stay open to probes.
	AuthorizeMetrics func(*http.Request) bool
}

// New returns a server whose handlers report status(); /metrics also
// exports the given collectors.
func New(status func() Status, log *slog.Logger, opts Options, extra ...prometheus.Collector) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(statusCollector{status})
	reg.MustRegister(extra...)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		st := status()
		w.Header().Set("Content-Type", "application/json")
		if !st.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(st)
	})
	var metrics http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if auth := opts.AuthorizeMetrics; auth != nil {
		open := metrics
		metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !auth(r) {
				w.Header().Set("WWW-Authenticate", `Basic realm="shoal metrics", charset="UTF-8"`)
				http.Error(w, "a user who may run INFO is required: HTTP basic authentication or a client certificate", http.StatusUnauthorized)
				return
			}
			open.ServeHTTP(w, r)
		})
	}
	mux.Handle("GET /metrics", metrics)
	return &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, log: log}
}

// Serve serves on ln until Close.
func (s *Server) Serve(ln net.Listener) {
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("http server", "err", err)
	}
}

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// statusCollector exports Status as gauges, read at scrape time.
type statusCollector struct{ status func() Status }

var (
	descShards        = prometheus.NewDesc("shoal_shards", "Data shards in the cluster.", nil, nil)
	descShardsLed     = prometheus.NewDesc("shoal_shards_with_leader", "Data shards with a known leader.", nil, nil)
	descLocalReplicas = prometheus.NewDesc("shoal_local_replicas", "Shard replicas on this node, the meta shard included.", nil, nil)
	descLocalLeaders  = prometheus.NewDesc("shoal_local_leaders", "Shard replicas this node leads.", nil, nil)
)

func (c statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descShards
	ch <- descShardsLed
	ch <- descLocalReplicas
	ch <- descLocalLeaders
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	ch <- prometheus.MustNewConstMetric(descShards, prometheus.GaugeValue, float64(st.Shards))
	ch <- prometheus.MustNewConstMetric(descShardsLed, prometheus.GaugeValue, float64(st.ShardsLed))
	ch <- prometheus.MustNewConstMetric(descLocalReplicas, prometheus.GaugeValue, float64(st.LocalReplicas))
	ch <- prometheus.MustNewConstMetric(descLocalLeaders, prometheus.GaugeValue, float64(st.LocalLeaders))
}
