import Testing
@testable import HydraControl

@Suite struct MetricsTests {
    @Test func rendersPrometheusTextWithCumulativeBuckets() {
        let metrics = Metrics()
        metrics.increment("hydra_requests_total", ["model": "m", "outcome": "ok"])
        metrics.increment("hydra_requests_total", ["model": "m", "outcome": "ok"])
        metrics.set("hydra_queue_depth", ["model": "a\"b"], to: 3)
        for value in [0.07, 0.3, 100] { metrics.observe("hydra_ttft_seconds", ["model": "m", "start": "cold"], value) }
        let text = metrics.render()
        #expect(text.contains("# TYPE hydra_requests_total counter\n"))
        #expect(text.contains("hydra_requests_total{model=\"m\",outcome=\"ok\"} 2\n"))
        #expect(text.contains("hydra_queue_depth{model=\"a\\\"b\"} 3\n"))
        #expect(text.contains("hydra_ttft_seconds_bucket{le=\"0.05\",model=\"m\",start=\"cold\"} 0\n"))
        #expect(text.contains("hydra_ttft_seconds_bucket{le=\"0.1\",model=\"m\",start=\"cold\"} 1\n"))
        #expect(text.contains("hydra_ttft_seconds_bucket{le=\"0.5\",model=\"m\",start=\"cold\"} 2\n"))
        #expect(text.contains("hydra_ttft_seconds_bucket{le=\"+Inf\",model=\"m\",start=\"cold\"} 3\n"))
        #expect(text.contains("hydra_ttft_seconds_count{model=\"m\",start=\"cold\"} 3\n"))
        #expect(text.contains("hydra_ttft_seconds_sum{model=\"m\",start=\"cold\"} 100.37"))
    }
}
