import Foundation
import HydraEngine

/// `hydra trace generate`: per-function arrivals with Gamma-distributed inter-arrival times (the
/// paper's workload model: the Azure Functions trace's burstiness as a coefficient of variation),
/// a target overall rate split over the functions by a Zipf popularity, seeded and reproducible.
public struct TraceGenerator: Sendable {
    /// Store entry → task; each entry is served as `replicas` functions.
    public var models: [(model: String, task: String)]
    public var replicas = 1
    public var tasks = Trace.Task.builtIn
    /// Requests/s over all functions.
    public var rate: Double
    /// Coefficient of variation of each function's inter-arrival times (1: Poisson; larger: burstier).
    public var cv: Double
    public var durationSeconds: Double
    /// Zipf exponent of the functions' popularity (0: every function as popular).
    public var skew = 0.0
    public var seed: UInt64 = 1

    public init(models: [(model: String, task: String)], rate: Double, cv: Double, durationSeconds: Double) {
        self.models = models
        self.rate = rate
        self.cv = cv
        self.durationSeconds = durationSeconds
    }

    /// The served names: `MODEL` for one replica, `MODEL/k` for several (as `hydra serve` names them).
    public var functions: [(name: String, model: String, task: String)] {
        models.flatMap { entry in
            replicas == 1 ? [(entry.model, entry.model, entry.task)] : (0..<replicas).map { ("\(entry.model)/\($0)", entry.model, entry.task) }
        }
    }

    public func validate() throws {
        guard !models.isEmpty else { throw ControlError(status: 400, "no models: name at least one (MODEL=TASK)") }
        guard rate > 0, cv > 0, durationSeconds > 0, replicas >= 1, skew >= 0 else {
            throw ControlError(status: 400, "rate, cv, duration and replicas must be positive and skew not negative")
        }
        let known = Set(tasks.map(\.name))
        if let entry = models.first(where: { !known.contains($0.task) }) {
            throw ControlError(status: 400, "\(entry.model): unknown task '\(entry.task)' (known: \(tasks.map(\.name).joined(separator: ", ")))")
        }
    }

    /// Each function's share of `rate`: Zipf over the functions in order, shuffled by the seed
    /// so the most popular function is not always the first model's first replica.
    func shares(_ random: inout SeededGenerator) -> [Double] {
        let count = functions.count
        var weights = (1...count).map { pow(Double($0), -skew) }
        weights.shuffle(using: &random)
        let total = weights.reduce(0, +)
        return weights.map { $0 / total }
    }

    public func generate() throws -> Trace {
        try validate()
        var random = SeededGenerator(seed: seed)
        let shares = shares(&random)
        var traceFunctions: [Trace.Function] = []
        var requests: [Trace.Request] = []
        for (function, share) in zip(functions, shares) {
            let functionRate = rate * share
            traceFunctions.append(Trace.Function(name: function.name, model: function.model, task: function.task, rate: functionRate))
            let task = tasks.first { $0.name == function.task }!
            // Each function its own stream, so adding a function leaves the others' arrivals as they were.
            var stream = SeededGenerator(seed: random.next())
            let shape = 1 / (cv * cv)
            // The process starts well before the trace (ten mean gaps, at least its duration), so
            // each function is caught mid-stream at t = 0 — at a random point of its bursts —
            // rather than every function bursting at once at the start.
            var clock = -max(durationSeconds, 10 / functionRate)
            while true {
                clock += stream.gamma(shape: shape) / (shape * functionRate)
                guard clock < durationSeconds else { break }
                guard clock >= 0 else { continue }
                requests.append(Trace.Request(arrivalSeconds: clock, function: function.name,
                                              prompt: PromptText.make(words: task.promptWords, &stream), maxTokens: task.maxTokens))
            }
        }
        requests.sort { ($0.arrivalSeconds, $0.function) < ($1.arrivalSeconds, $1.function) }
        let usedTasks = tasks.filter { task in models.contains { $0.task == task.name } }
        return Trace(source: "gamma", seed: seed, rate: rate, cv: cv, durationSeconds: durationSeconds, tasks: usedTasks,
                     functions: traceFunctions, requests: requests)
    }
}

extension SeededGenerator {
    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    public mutating func index(_ count: Int) -> Int { Int(next() % UInt64(count)) }

    /// Standard normal (Box–Muller).
    mutating func normal() -> Double {
        let u = 1 - unit()
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * unit())
    }

    /// Gamma(shape, scale 1): Marsaglia and Tsang's method; shapes below 1 boosted by U^(1/shape).
    public mutating func gamma(shape: Double) -> Double {
        precondition(shape > 0, "a gamma shape must be positive")
        if shape < 1 { return gamma(shape: shape + 1) * pow(1 - unit(), 1 / shape) }
        let d = shape - 1.0 / 3
        let c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double
            var v: Double
            repeat {
                x = normal()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = 1 - unit()
            if log(u) < 0.5 * x * x + d - d * v + d * log(v) { return d * v }
        }
    }
}

/// Prompts of a given length from a small seeded vocabulary: the engine's cost depends on the
/// token count, not on what the words say.
enum PromptText {
    static let words = ["the", "model", "serves", "a", "request", "from", "cold", "node", "cache", "pipeline", "stage", "token", "write",
                        "explain", "why", "function", "returns", "quickly", "summary", "of", "report", "data", "river", "mountain",
                        "city", "history", "music", "garden", "planet", "ocean", "code", "loop", "array", "sort", "list", "number"]

    static func make(words count: Int, _ random: inout SeededGenerator) -> String {
        let spread = max(1, count / 4)
        let length = max(1, count - spread + random.index(2 * spread + 1))
        return (0..<length).map { _ in words[random.index(words.count)] }.joined(separator: " ")
    }
}
