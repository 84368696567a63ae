import CoreMetrics
import Foundation
import Metrics
import Prometheus

/// TEI's metrics (same names and labels), recorded through swift-metrics into a Prometheus
/// registry of this server's own, so several servers in one process keep separate counts.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    let queueSize: CoreMetrics.Gauge
    let batchSize: CoreMetrics.Recorder
    let batchTokens: CoreMetrics.Recorder
    let inputLength: CoreMetrics.Recorder
    let requestDuration: CoreMetrics.Timer
    let tokenizationDuration: CoreMetrics.Timer
    let queueDuration: CoreMetrics.Timer
    let inferenceDuration: CoreMetrics.Timer
    let embedSuccess: CoreMetrics.Counter
    let embedCount: CoreMetrics.Counter
    let droppedRequests: CoreMetrics.Counter

    init(maxInputLength: Int) {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // TEI's buckets: durations 1.5^k × 10µs, input lengths powers of two up to the limit,
        // batch sizes 2^0…2^12, batch tokens 2^0…2^20.
        var value = 0.00001
        var durations: [Duration] = []
        for _ in 0..<35 {
            value *= 1.5
            durations.append(.nanoseconds(Int64(value * 1e9)))
        }
        factory.defaultDurationHistogramBuckets = durations
        factory.valueHistogramBuckets = [
            "te_request_input_length": (0..<20).map { pow(2.0, Double($0)) }.filter { Int($0) <= max(1, maxInputLength) },
            "te_batch_next_size": (0..<13).map { pow(2.0, Double($0)) },
            "te_batch_next_tokens": (0..<21).map { pow(2.0, Double($0)) },
        ]
        self.registry = registry
        self.factory = factory
        queueSize = CoreMetrics.Gauge(label: "te_queue_size", factory: factory)
        batchSize = CoreMetrics.Recorder(label: "te_batch_next_size", aggregate: true, factory: factory)
        batchTokens = CoreMetrics.Recorder(label: "te_batch_next_tokens", aggregate: true, factory: factory)
        inputLength = CoreMetrics.Recorder(label: "te_request_input_length", aggregate: true, factory: factory)
        requestDuration = CoreMetrics.Timer(label: "te_request_duration", factory: factory)
        tokenizationDuration = CoreMetrics.Timer(label: "te_request_tokenization_duration", factory: factory)
        queueDuration = CoreMetrics.Timer(label: "te_request_queue_duration", factory: factory)
        inferenceDuration = CoreMetrics.Timer(label: "te_request_inference_duration", factory: factory)
        embedSuccess = CoreMetrics.Counter(label: "te_embed_success", factory: factory)
        embedCount = CoreMetrics.Counter(label: "te_embed_count", factory: factory)
        droppedRequests = CoreMetrics.Counter(label: "te_request_dropped", factory: factory)
        // Make the counters TEI users chart visible from the start.
        for method in ["single", "batch"] {
            _ = CoreMetrics.Counter(label: "te_request_count", dimensions: [("method", method)], factory: factory)
            _ = CoreMetrics.Counter(label: "te_request_success", dimensions: [("method", method)], factory: factory)
        }
        queueSize.record(0)
    }

    func requestCount(_ method: String) { CoreMetrics.Counter(label: "te_request_count", dimensions: [("method", method)], factory: factory).increment() }
    func requestSuccess(_ method: String) { CoreMetrics.Counter(label: "te_request_success", dimensions: [("method", method)], factory: factory).increment() }
    func failure(_ label: String) { CoreMetrics.Counter(label: "te_request_failure", dimensions: [("err", label)], factory: factory).increment() }

    /// Prometheus text exposition.
    public func render() -> [UInt8] { registry.emitToBuffer() }
}

extension CoreMetrics.Timer {
    func record(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
