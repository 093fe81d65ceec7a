package metrics

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// SDK is the Temporal SDK's client.MetricsHandler over client_golang. The SDK names its
// metrics at run time and tags the same name with different keys (namespace, task queue,
// workflow or activity type, ...), which client_golang's vectors cannot hold (fixed label
// names per metric): this collector keeps each series by name and tags and describes them
// at each scrape (an unchecked collector). Counters keep the SDK's names, timers become
// histograms in seconds, as tally's prometheus reporter would name them, so the SDK's
// documented dashboards apply.
type SDK struct {
	mu     sync.Mutex
	series map[string]*series
}

// NewSDK returns an empty SDK collector; register it and pass Handler() to the client.
func NewSDK() *SDK { return &SDK{series: map[string]*series{}} }

type kind int

const (
	counterKind kind = iota
	gaugeKind
	timerKind
)

type series struct {
	name   string
	kind   kind
	labels map[string]string
	value  float64 // counter total or gauge value
	count  uint64  // timer observations
	sum    float64
	bucket []uint64 // per upper bound of timerBuckets (not cumulative)
}

// timerBuckets are the upper bounds (seconds) of the SDK's latency histograms: from a local
// poll answer to a long poll's minute.
var timerBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

func (s *SDK) get(name string, k kind, tags map[string]string) *series {
	var b strings.Builder
	b.WriteString(name)
	for _, key := range slices.Sorted(maps.Keys(tags)) {
		b.WriteString("\x00" + key + "\x00" + tags[key])
	}
	key := b.String()
	if x, ok := s.series[key]; ok {
		return x
	}
	x := &series{name: name, kind: k, labels: tags}
	if k == timerKind {
		x.bucket = make([]uint64, len(timerBuckets))
	}
	s.series[key] = x
	return x
}

// Handler returns the client.MetricsHandler that records into s.
func (s *SDK) Handler() client.MetricsHandler { return sdkHandler{s: s} }

type sdkHandler struct {
	s    *SDK
	tags map[string]string
}

func (h sdkHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(h.tags)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, tags)
	return sdkHandler{s: h.s, tags: merged}
}

func (h sdkHandler) Counter(name string) client.MetricsCounter { return sdkMetric{h, name} }
func (h sdkHandler) Gauge(name string) client.MetricsGauge     { return sdkMetric{h, name} }
func (h sdkHandler) Timer(name string) client.MetricsTimer     { return sdkMetric{h, name} }

type sdkMetric struct {
	h    sdkHandler
	name string
}

func (m sdkMetric) Inc(n int64) {
	m.h.s.mu.Lock()
	m.h.s.get(m.name, counterKind, m.h.tags).value += float64(n)
	m.h.s.mu.Unlock()
}

func (m sdkMetric) Update(v float64) {
	m.h.s.mu.Lock()
	m.h.s.get(m.name, gaugeKind, m.h.tags).value = v
	m.h.s.mu.Unlock()
}

func (m sdkMetric) Record(d time.Duration) {
	sec := d.Seconds()
	m.h.s.mu.Lock()
	x := m.h.s.get(m.name, timerKind, m.h.tags)
	x.count++
	x.sum += sec
	if i, _ := slices.BinarySearch(timerBuckets, sec); i < len(timerBuckets) {
		x.bucket[i]++
	}
	m.h.s.mu.Unlock()
}

// Describe sends nothing: the SDK's series are only known as it emits them.
func (s *SDK) Describe(chan<- *prometheus.Desc) {}

// Collect sends every series recorded so far.
func (s *SDK) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.series {
		names := slices.Sorted(maps.Keys(x.labels))
		values := make([]string, len(names))
		for i, n := range names {
			values[i] = x.labels[n]
		}
		var m prometheus.Metric
		var err error
		switch x.kind {
		case counterKind:
			m, err = prometheus.NewConstMetric(prometheus.NewDesc(x.name, "Temporal SDK counter", names, nil),
				prometheus.CounterValue, x.value, values...)
		case gaugeKind:
			m, err = prometheus.NewConstMetric(prometheus.NewDesc(x.name, "Temporal SDK gauge", names, nil),
				prometheus.GaugeValue, x.value, values...)
		case timerKind:
			buckets := make(map[float64]uint64, len(timerBuckets))
			var cum uint64
			for i, ub := range timerBuckets {
				cum += x.bucket[i]
				buckets[ub] = cum
			}
			m, err = prometheus.NewConstHistogram(prometheus.NewDesc(x.name, "Temporal SDK timer (seconds)", names, nil),
				x.count, x.sum, buckets, values...)
		}
		if err == nil {
			ch <- m
		} else {
			ch <- prometheus.NewInvalidMetric(prometheus.NewDesc(x.name, "", nil, nil), err)
		}
	}
}
