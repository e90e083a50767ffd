import Testing
@testable import HydraControl

/// The scaling state machine driven by hand with an injected clock (seconds as plain numbers).
@Suite struct AutoscalerTests {
    static func scaler(concurrency: Int = 2, instances: Int = 2, keepAlive: Double = 30) -> Autoscaler {
        var scaler = Autoscaler(queueTimeoutSeconds: 60, queueLimit: 4, retryStartSeconds: 1)
        scaler.register("m", limits: .init(maxConcurrency: concurrency, maxInstances: instances, keepAliveSeconds: keepAlive))
        return scaler
    }

    @Test func theFirstRequestStartsAnInstanceAndWaitsInItsColdStart() {
        var scaler = Self.scaler()
        #expect(scaler.arrive(request: 0, function: "m", now: 0) == [.start(instance: 0, function: "m", queueSeconds: 0),
                                                                        .dispatch(request: 0, instance: 0, cold: true)])
        // A second request joins the starting instance (concurrency 2): no second cold start.
        #expect(scaler.arrive(request: 1, function: "m", now: 0.1) == [.dispatch(request: 1, instance: 0, cold: true)])
        _ = scaler.ready(instance: 0, now: 1)
        #expect(scaler.finished(request: 0, now: 1.5) == [])
        #expect(scaler.arrive(request: 2, function: "m", now: 2) == [.dispatch(request: 2, instance: 0, cold: false)])
    }

    @Test func aFullInstanceQueuesAndTheQueueStartsOneMoreUpToTheLimit() {
        var scaler = Self.scaler(concurrency: 1, instances: 2)
        _ = scaler.arrive(request: 0, function: "m", now: 0)
        #expect(scaler.arrive(request: 1, function: "m", now: 0) == [.start(instance: 1, function: "m", queueSeconds: 0),
                                                                        .dispatch(request: 1, instance: 1, cold: true)])
        // Both full and at the instance limit: the third waits in the queue…
        #expect(scaler.arrive(request: 2, function: "m", now: 1).isEmpty)
        #expect(scaler.queueDepth("m") == 1)
        // …until a slot frees, FIFO.
        _ = scaler.arrive(request: 3, function: "m", now: 1.5)
        #expect(scaler.finished(request: 1, now: 2) == [.dispatch(request: 2, instance: 1, cold: true)])
        #expect(scaler.finished(request: 0, now: 3) == [.dispatch(request: 3, instance: 0, cold: true)])
    }

    @Test func keepAliveStopsOnlyIdleReadyInstances() {
        var scaler = Self.scaler(keepAlive: 10)
        _ = scaler.arrive(request: 0, function: "m", now: 0)
        #expect(scaler.tick(now: 50).isEmpty, "a starting instance is never stopped")
        _ = scaler.ready(instance: 0, now: 51)
        #expect(scaler.tick(now: 60).isEmpty, "busy")
        _ = scaler.finished(request: 0, now: 61)
        #expect(scaler.tick(now: 70.9).isEmpty)
        #expect(scaler.tick(now: 71) == [.stop(instance: 0)])
        #expect(scaler.instances.isEmpty)
        // Scaled to zero: the next request cold-starts a new instance.
        #expect(scaler.arrive(request: 1, function: "m", now: 80).first == .start(instance: 1, function: "m", queueSeconds: 0))
    }

    @Test func aLostInstanceIsReplacedForTheRequestsStillWaiting() {
        var scaler = Self.scaler(concurrency: 1, instances: 1)
        _ = scaler.arrive(request: 0, function: "m", now: 0)
        _ = scaler.arrive(request: 1, function: "m", now: 0)
        // The instance died: request 0 is the caller's to retry (at the queue's head), request 1 gets a new instance.
        #expect(scaler.lost(instance: 0, now: 1) == [.start(instance: 1, function: "m", queueSeconds: 1), .dispatch(request: 1, instance: 1, cold: true)])
        _ = scaler.arrive(request: 0, function: "m", now: 1, retry: true, since: 0)
        #expect(scaler.queueDepth("m") == 1)
        #expect(scaler.finished(request: 1, now: 2) == [.dispatch(request: 0, instance: 1, cold: true)])
    }

    @Test func anUnplacedStartBacksOffThenRetries() {
        var scaler = Self.scaler()
        _ = scaler.arrive(request: 0, function: "m", now: 0)
        #expect(scaler.lost(instance: 0, now: 0, backOff: true).isEmpty)
        _ = scaler.arrive(request: 0, function: "m", now: 0, retry: true)
        #expect(scaler.tick(now: 0.5).isEmpty)
        #expect(scaler.tick(now: 1) == [.start(instance: 1, function: "m", queueSeconds: 1), .dispatch(request: 0, instance: 1, cold: true)])
    }

    @Test func boundedQueuesFailClearly() {
        var scaler = Self.scaler(concurrency: 1, instances: 1)
        #expect(scaler.arrive(request: 9, function: "other", now: 0) == [.fail(request: 9, ControlError(status: 404, "no model named 'other'"))])
        _ = scaler.arrive(request: 0, function: "m", now: 0)
        for request in 1...4 { #expect(scaler.arrive(request: request, function: "m", now: 0).isEmpty) }
        guard case .fail(5, let full)? = scaler.arrive(request: 5, function: "m", now: 0).first else { Issue.record("not refused"); return }
        #expect(full.status == 429)
        // A request withdrawn by its client leaves the queue; the rest time out after 60 s.
        scaler.withdraw(request: 1)
        let expired = scaler.tick(now: 60)
        #expect(expired.count == 3 && expired.allSatisfy { if case .fail(_, let error) = $0 { error.status == 503 } else { false } })
        #expect(scaler.queueDepth("m") == 0)
    }
}

extension AutoscalerTests {
    @Test func aPinnedInstanceOutlivesItsKeepAliveAndIdlesFromItsRelease() {
        var scaler = Self.scaler(keepAlive: 10)
        _ = scaler.arrive(request: 0, function: "m", now: 0)
        _ = scaler.ready(instance: 0, now: 1)
        scaler.pin(instance: 0, true, now: 1)
        _ = scaler.finished(request: 0, now: 2)
        #expect(scaler.tick(now: 30).isEmpty)
        scaler.pin(instance: 0, false, now: 30)
        #expect(scaler.tick(now: 39).isEmpty)
        #expect(scaler.tick(now: 40) == [.stop(instance: 0)])
    }
}
