import Foundation
import HydraFormat

/// A workload to replay against `hydra serve` (`hydra trace generate` writes one, `hydra load`
/// replays it): tasks with their objectives, functions (the served names, one per model replica)
/// and every request's arrival. Stored as JSON.
public struct Trace: Codable, Sendable, Equatable {
    /// An application: what its requests look like and the objectives it is judged by.
    public struct Task: Codable, Sendable, Equatable {
        public var name: String
        public var ttftSLOSeconds: Double
        public var tpotSLOSeconds: Double
        /// Words in a prompt (each request draws within ±25%).
        public var promptWords: Int
        public var maxTokens: Int

        public init(name: String, ttftSLOSeconds: Double, tpotSLOSeconds: Double, promptWords: Int, maxTokens: Int) {
            self.name = name
            self.ttftSLOSeconds = ttftSLOSeconds
            self.tpotSLOSeconds = tpotSLOSeconds
            self.promptWords = promptWords
            self.maxTokens = maxTokens
        }

        enum CodingKeys: String, CodingKey {
            case name, ttftSLOSeconds = "ttft_slo_seconds", tpotSLOSeconds = "tpot_slo_seconds", promptWords = "prompt_words", maxTokens = "max_tokens"
        }

        /// The three applications of the paper's end-to-end study. Their objectives are scaled
        /// to this project's CPU engine and emulated links (seconds, not the paper's GPU figures):
        /// short chats, medium code prompts, long documents to summarise.
        public static let builtIn = [
            Task(name: "chatbot", ttftSLOSeconds: 3, tpotSLOSeconds: 0.25, promptWords: 12, maxTokens: 24),
            Task(name: "code", ttftSLOSeconds: 4, tpotSLOSeconds: 0.25, promptWords: 40, maxTokens: 32),
            Task(name: "summarization", ttftSLOSeconds: 6, tpotSLOSeconds: 0.4, promptWords: 120, maxTokens: 16),
        ]

        /// NAME:TTFT:TPOT:WORDS:TOKENS, or the name of a built-in task.
        public static func parse(_ text: String) throws -> Task {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            if parts.count == 1, let known = builtIn.first(where: { $0.name == parts[0] }) { return known }
            guard parts.count == 5, !parts[0].isEmpty, let ttft = Double(parts[1]), let tpot = Double(parts[2]), let words = Int(parts[3]),
                  let tokens = Int(parts[4]), ttft > 0, tpot > 0, words >= 1, tokens >= 1 else {
                throw ControlError(status: 400, "task '\(text)': expected NAME:TTFT_SLO_S:TPOT_SLO_S:PROMPT_WORDS:MAX_TOKENS (positive figures) or one of \(builtIn.map(\.name).joined(separator: ", "))")
            }
            return Task(name: parts[0], ttftSLOSeconds: ttft, tpotSLOSeconds: tpot, promptWords: words, maxTokens: tokens)
        }
    }

    /// A served name (`MODEL` or `MODEL/k` for replica k) and the task its requests belong to.
    public struct Function: Codable, Sendable, Equatable {
        public var name: String
        /// The store entry behind it.
        public var model: String
        public var task: String
        /// Its mean arrival rate, requests/s.
        public var rate: Double

        public init(name: String, model: String, task: String, rate: Double) {
            self.name = name
            self.model = model
            self.task = task
            self.rate = rate
        }
    }

    public struct Request: Codable, Sendable, Equatable {
        /// Seconds from the start of the trace.
        public var arrivalSeconds: Double
        public var function: String
        public var prompt: String
        public var maxTokens: Int

        public init(arrivalSeconds: Double, function: String, prompt: String, maxTokens: Int) {
            self.arrivalSeconds = arrivalSeconds
            self.function = function
            self.prompt = prompt
            self.maxTokens = maxTokens
        }

        enum CodingKeys: String, CodingKey { case arrivalSeconds = "arrival_seconds", function, prompt, maxTokens = "max_tokens" }
    }

    /// How the arrivals were made: `gamma` (generated) or `csv` (replayed timestamps).
    public var source: String
    public var seed: UInt64?
    /// Mean requests/s over the whole trace.
    public var rate: Double
    /// Coefficient of variation of the inter-arrival times (generated traces).
    public var cv: Double?
    public var durationSeconds: Double
    public var tasks: [Task]
    public var functions: [Function]
    /// Sorted by arrival.
    public var requests: [Request]

    enum CodingKeys: String, CodingKey {
        case source, seed, rate, cv, durationSeconds = "duration_seconds", tasks, functions, requests
    }

    public init(source: String, seed: UInt64?, rate: Double, cv: Double?, durationSeconds: Double, tasks: [Task], functions: [Function], requests: [Request]) {
        self.source = source
        self.seed = seed
        self.rate = rate
        self.cv = cv
        self.durationSeconds = durationSeconds
        self.tasks = tasks
        self.functions = functions
        self.requests = requests
    }

    public func task(of function: String) -> Task? {
        guard let name = functions.first(where: { $0.name == function })?.task else { return nil }
        return tasks.first { $0.name == name }
    }

    public static func load(_ path: String) throws -> Trace {
        guard let data = FileManager.default.contents(atPath: path) else { throw ControlError(status: 400, "\(path): cannot read the trace") }
        let trace: Trace
        do { trace = try JSONDecoder().decode(Trace.self, from: data) } catch {
            throw ControlError(status: 400, "\(path): not a trace (\(describe(error)))")
        }
        try trace.validate(path)
        return trace
    }

    /// Every request names a known function, every function a known task; arrivals are sorted.
    public func validate(_ origin: String) throws {
        let names = Set(functions.map(\.name))
        let taskNames = Set(tasks.map(\.name))
        if let function = functions.first(where: { !taskNames.contains($0.task) }) {
            throw ControlError(status: 400, "\(origin): function \(function.name) names an unknown task '\(function.task)'")
        }
        if let request = requests.first(where: { !names.contains($0.function) }) {
            throw ControlError(status: 400, "\(origin): a request names an unknown function '\(request.function)'")
        }
        if let index = requests.indices.dropFirst().first(where: { requests[$0].arrivalSeconds < requests[$0 - 1].arrivalSeconds }) {
            throw ControlError(status: 400, "\(origin): request \(index) arrives before the one listed before it")
        }
        if let request = requests.first(where: { !($0.arrivalSeconds >= 0) || $0.maxTokens < 1 }) {
            throw ControlError(status: 400, "\(origin): a request at \(request.arrivalSeconds) s has a negative arrival or no tokens to generate")
        }
    }

    /// A `hydra serve --config` file serving the trace's models (and only those), each with its
    /// replicas and its task's TTFT objective, so the planner plans for what requests are judged by.
    public var serveConfiguration: String {
        var replicas: [(model: String, count: Int, task: String)] = []
        for function in functions {
            if let index = replicas.firstIndex(where: { $0.model == function.model }) { replicas[index].count += 1 } else {
                replicas.append((function.model, 1, function.task))
            }
        }
        var lines = ["# hydra serve --config: the trace's models, each with its task's TTFT objective (hydra trace generate).", "serve_all: false", "models:"]
        for entry in replicas {
            let slo = tasks.first { $0.name == entry.task }?.ttftSLOSeconds ?? ServedModel.Settings().ttftSLOSeconds
            lines += ["  \(entry.model):", "    ttft_slo_seconds: \(slo)", "    replicas: \(entry.count)"]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }
}
