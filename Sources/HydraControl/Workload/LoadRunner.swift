import Foundation
import HydraSystem

/// `hydra load`: replays a trace open-loop against an OpenAI-compatible endpoint — every request
/// is sent at its arrival time whether or not earlier ones have answered — streaming each answer
/// and recording its time to first token, time per output token, tokens and status.
///
/// Bounded: requests after `durationSeconds` are not sent, each request gives up after
/// `requestTimeoutSeconds`, and at most `maxInFlight` are open at once (a request due while that
/// many are open is recorded as not sent, never silently dropped).
public struct LoadRunner: Sendable {
    public var trace: Trace
    public var url: String
    public var label: String
    /// Requests/s to replay at (the trace's arrivals compressed or stretched); nil: as written.
    public var rate: Double?
    /// Seconds of the (rescaled) trace to replay; nil: all of it.
    public var durationSeconds: Double?
    public var maxInFlight = 512
    public var requestTimeoutSeconds = 300

    public init(trace: Trace, url: String, label: String) {
        self.trace = trace
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.label = label
    }

    /// Factor applied to the trace's arrival times.
    var timeScale: Double { rate.map { trace.rate / $0 } ?? 1 }

    /// Seconds of arrivals replayed.
    var replayedSeconds: Double { durationSeconds ?? trace.durationSeconds * timeScale }

    /// The requests to send, at their rescaled times.
    public var schedule: [(index: Int, seconds: Double, request: Trace.Request)] {
        let (scale, limit) = (timeScale, replayedSeconds)
        return trace.requests.enumerated().map { ($0.offset, $0.element.arrivalSeconds * scale, $0.element) }.filter { $0.1 < limit }
    }

    public func validate() throws {
        if let rate, !(rate > 0) { throw ControlError(status: 400, "the rate must be positive") }
        if let durationSeconds, !(durationSeconds > 0) { throw ControlError(status: 400, "the duration must be positive") }
        guard maxInFlight >= 1, requestTimeoutSeconds >= 1 else { throw ControlError(status: 400, "max in flight and the request timeout must be positive") }
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else { throw ControlError(status: 400, "\(url): not an http(s) URL") }
    }

    /// Sends every scheduled request and waits for the answers; `progress` hears a line now and then.
    public func run(tracePath: String, progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> LoadResults {
        try validate()
        let schedule = schedule
        let client = ServeClient(base: url)
        let records = LockedBox<[LoadResults.Record]>([])
        let inFlight = LockedBox(0)
        let group = DispatchGroup()
        let startedUnix = Date().timeIntervalSince1970
        let started = DispatchTime.now()
        let elapsed = { Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9 }
        var nextReport = 10.0
        for (index, scheduled, request) in schedule {
            let wait = scheduled - elapsed()
            if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            let task = trace.task(of: request.function)!
            var record = LoadResults.Record(index: index, function: request.function, task: task.name, scheduledSeconds: scheduled,
                                            sentSeconds: elapsed(), status: 0, latencySeconds: 0, completionTokens: 0,
                                            ttftSLOSeconds: task.ttftSLOSeconds, tpotSLOSeconds: task.tpotSLOSeconds)
            if elapsed() >= nextReport {
                progress(String(format: "%.0f s: %d of %d sent, %d in flight", elapsed(), index, schedule.count, inFlight.value))
                nextReport += 10
            }
            let admitted = inFlight.withValue { count -> Bool in
                guard count < maxInFlight else { return false }
                count += 1
                return true
            }
            guard admitted else {
                record.error = "not sent: \(maxInFlight) requests were in flight already (--max-in-flight)"
                records.withValue { $0.append(record) }
                continue
            }
            group.enter()
            Thread.detachNewThread { [requestTimeoutSeconds, record] in
                var record = record
                let answer = client.chat(model: request.function, prompt: request.prompt, maxTokens: request.maxTokens,
                                         ignoreEOS: true, timeoutSeconds: requestTimeoutSeconds)
                record.status = answer.status
                record.error = answer.error
                record.cold = answer.start.map { $0 == "cold" }
                record.ttftSeconds = answer.firstTokenSeconds
                record.tpotSeconds = answer.tpotSeconds
                record.latencySeconds = answer.seconds
                record.completionTokens = answer.completionTokens
                records.withValue { $0.append(record) }
                inFlight.withValue { $0 -= 1 }
                group.leave()
            }
        }
        group.wait()
        let header = LoadResults.Header(label: label, url: url, trace: tracePath, rate: rate ?? trace.rate, cv: trace.cv,
                                        durationSeconds: replayedSeconds, startedUnixSeconds: startedUnix, wallSeconds: elapsed())
        return LoadResults(header: header, records: records.value.sorted { $0.index < $1.index })
    }
}
