package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics holds the API's own Prometheus registry (never the global one).
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	handler  fiber.Handler
	known    map[string]bool
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walsearch_api_requests_total", Help: "API requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "walsearch_api_request_duration_seconds", Help: "API request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		known: map[string]bool{},
	}
	m.reg.MustRegister(m.requests, m.latency, &pipelineCollector{s: s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = adaptor.HTTPHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return m
}

// middleware counts and times every request.
func (m *metrics) middleware(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	code := c.Response().StatusCode()
	if err != nil {
		// The error handler has not run yet; use the status it will send.
		code = fiber.StatusInternalServerError
		switch e := err.(type) {
		case *Error:
			code = e.Status
		case *fiber.Error:
			code = e.Code
		}
	}
	route := c.Route().Path
	if code == fiber.StatusNotFound && c.Route().Method == "USE" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, c.Method(), strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route, c.Method()).Observe(time.Since(start).Seconds())
	return err
}

// errMetricsForbidden answers GET /metrics for a key limited to some
// indices: the metrics hold every table's figures.
var errMetricsForbidden = &Error{Status: http.StatusForbidden, Code: CodeForbidden,
	Message: "GET /metrics shows the figures of every table: use an API key that is not limited to some indices (an api.keys entry without indices)"}

// metricsHandler answers GET /metrics in the Prometheus text format.
func (s *Server) metricsHandler(c *fiber.Ctx) error {
	if !allIndices(c) {
		return errMetricsForbidden
	}
	return s.metrics.handler(c)
}

// pipelineCollector reads the pipeline's status at scrape time.
type pipelineCollector struct{ s *Server }

var (
	descIndexed   = prometheus.NewDesc("walsearch_sink_documents_indexed_total", "Documents written to the search engine.", nil, nil)
	descDeleted   = prometheus.NewDesc("walsearch_sink_documents_deleted_total", "Documents deleted from the search engine.", nil, nil)
	descStale     = prometheus.NewDesc("walsearch_sink_stale_writes_total", "Writes skipped because the index already had a newer version.", nil, nil)
	descRetries   = prometheus.NewDesc("walsearch_sink_retries_total", "Bulk requests retried after a transient failure.", nil, nil)
	descDeadSink  = prometheus.NewDesc("walsearch_sink_dead_lettered_total", "Documents the search engine rejected for good.", nil, nil)
	descDLQ       = prometheus.NewDesc("walsearch_dlq_messages", "Events in the dead-letter queue.", nil, nil)
	descDLQTable  = prometheus.NewDesc("walsearch_dlq_table_messages", "Events in the dead-letter queue, by the table they came from.", []string{"table"}, nil)
	descBatchSize = prometheus.NewDesc("walsearch_sink_batch_size", "Most documents the sink now sends in one bulk request (adapted to the engine's response times).", nil, nil)
	descInFlight  = prometheus.NewDesc("walsearch_sink_bulk_requests_in_flight", "Bulk requests being sent now.", nil, nil)
	descBulkDocs  = prometheus.NewDesc("walsearch_sink_bulk_request_documents", "Documents per bulk request sent.", nil, nil)
	descBacklog   = prometheus.NewDesc("walsearch_bus_backlog_messages", "Messages waiting for a bus consumer.", []string{"consumer"}, nil)
	descLagBytes  = prometheus.NewDesc("walsearch_lag_bytes", "WAL bytes between PostgreSQL and the applied watermark.", nil, nil)
	descLagSecs   = prometheus.NewDesc("walsearch_lag_seconds", "Age of the newest indexed change while the index is behind.", nil, nil)
	descSlotLag   = prometheus.NewDesc("walsearch_slot_lag_bytes", "WAL retained by the replication slot.", nil, nil)
	descApplied   = prometheus.NewDesc("walsearch_applied_lsn", "Applied watermark as a number: every commit before it is indexed.", nil, nil)
	descSnapshot  = prometheus.NewDesc("walsearch_snapshot_rows", "Rows read by the snapshot, per table.", []string{"index"}, nil)
	descEngineUp  = prometheus.NewDesc("walsearch_search_engine_up", "1 when the search engine answered the last request, 0 while the breaker is open.", nil, nil)
	descLeaseTok  = prometheus.NewDesc("walsearch_capture_lease_token", "Fencing token of the capture leader's lease (grows with each new leader), by holder.", []string{"holder"}, nil)
	descLeaseRev  = prometheus.NewDesc("walsearch_capture_lease_revision", "Revision of the capture lease at its last renewal, by holder.", []string{"holder"}, nil)
	descLeaseExp  = prometheus.NewDesc("walsearch_capture_lease_expiry_seconds", "Unix time at which the capture leader's lease ends unless renewed, by holder.", []string{"holder"}, nil)
	descPartHold  = prometheus.NewDesc("walsearch_partition_holder", "1 for the process holding a partition's lease, by partition, kind of process and holder.", []string{"partition", "kind", "holder"}, nil)
	descPartBack  = prometheus.NewDesc("walsearch_partition_backlog_messages", "Messages waiting for a partition's consumer, by partition and stage.", []string{"partition", "stage"}, nil)
	descCapRecv   = prometheus.NewDesc("walsearch_capture_received_lsn", "Newest WAL position capture received from the replication slot, as a number (while capture runs in this process).", nil, nil)
	descCapConf   = prometheus.NewDesc("walsearch_capture_confirmed_lsn", "WAL position capture confirmed to PostgreSQL, as a number: every change before it is stored on the bus (while capture runs in this process).", nil, nil)
	descCollectOK = prometheus.NewDesc("walsearch_status_up", "1 when the pipeline status could be read at this scrape.", nil, nil)
)

func (p *pipelineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descIndexed, descDeleted, descStale, descRetries, descDeadSink, descDLQ, descDLQTable,
		descBatchSize, descInFlight, descBulkDocs, descBacklog, descLagBytes, descLagSecs, descSlotLag, descApplied, descSnapshot,
		descEngineUp, descCollectOK, descLeaseTok, descLeaseRev, descLeaseExp, descPartHold, descPartBack, descCapRecv, descCapConf} {
		ch <- d
	}
}

func (p *pipelineCollector) Collect(ch chan<- prometheus.Metric) {
	if p.s.eng != nil {
		up := 1.0
		if p.s.eng.br.open() {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(descEngineUp, prometheus.GaugeValue, up)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := p.s.pipe.Status(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descCollectOK, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descCollectOK, prometheus.GaugeValue, 1)
	capture, sink := p.s.reports("capture"), p.s.reports("sink")
	if l := st.Capture.Leader; l != nil && capture {
		ch <- prometheus.MustNewConstMetric(descLeaseTok, prometheus.GaugeValue, float64(l.Token), l.Holder)
		ch <- prometheus.MustNewConstMetric(descLeaseRev, prometheus.GaugeValue, float64(l.Revision), l.Holder)
		ch <- prometheus.MustNewConstMetric(descLeaseExp, prometheus.GaugeValue, float64(l.Expires.UnixNano())/1e9, l.Holder)
	}
	for _, ps := range st.Partitions {
		k := strconv.Itoa(ps.Partition)
		for kind, holder := range ps.Holders {
			ch <- prometheus.MustNewConstMetric(descPartHold, prometheus.GaugeValue, 1, k, kind, holder)
		}
		for stage, n := range ps.Backlog {
			ch <- prometheus.MustNewConstMetric(descPartBack, prometheus.GaugeValue, float64(n), k, stage)
		}
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descDLQ, float64(st.DeadLetters))
	for table, n := range st.DeadLettersByTable {
		gauge(descDLQTable, float64(n), table)
	}
	for consumer, n := range st.Backlog {
		gauge(descBacklog, float64(n), consumer)
	}
	if capture && st.Capture.Phase != "" && st.Capture.Phase != "idle" {
		gauge(descCapRecv, float64(st.Capture.ReceivedLSN))
		gauge(descCapConf, float64(st.Capture.ConfirmedLSN))
	}
	if capture {
		if st.SlotLagBytes >= 0 {
			gauge(descSlotLag, float64(st.SlotLagBytes))
		}
		for _, t := range st.Tables {
			gauge(descSnapshot, float64(t.SnapshotRows), t.Index)
		}
	}
	if capture && sink {
		// Lag compares capture's position with the sink's: a process
		// running one of them alone knows only one side.
		lb, ls := lag(st, time.Now())
		gauge(descLagBytes, float64(lb))
		gauge(descLagSecs, ls)
	}
	if !sink {
		return
	}
	counter(descIndexed, st.Sink.Indexed)
	counter(descDeleted, st.Sink.Deleted)
	counter(descStale, st.Sink.Stale)
	counter(descRetries, st.Sink.Retries)
	counter(descDeadSink, st.Sink.DeadLetters)
	gauge(descBatchSize, float64(st.Sink.BatchSize))
	gauge(descInFlight, float64(st.Sink.InFlight))
	if b := st.Sink.BulkDocBounds; len(b) > 0 && len(st.Sink.BulkDocs) == len(b)+1 {
		buckets := make(map[float64]uint64, len(b))
		var total uint64
		for i, bound := range b {
			total += st.Sink.BulkDocs[i]
			buckets[bound] = total
		}
		total += st.Sink.BulkDocs[len(b)]
		ch <- prometheus.MustNewConstHistogram(descBulkDocs, total, float64(st.Sink.BulkDocsSum), buckets)
	}
	gauge(descApplied, float64(st.Sink.AppliedLSN))
}
