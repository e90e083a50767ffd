import Foundation
import Testing
import HydraEngine
@testable import HydraControl

/// `hydra trace generate`: Gamma arrivals with the asked rate and burstiness, seeded; CSV replay.
@Suite struct TraceTests {
    static func meanAndCV(_ values: [Double]) -> (mean: Double, cv: Double) {
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
        return (mean, variance.squareRoot() / mean)
    }

    @Test(arguments: [0.0625, 0.25, 1, 4])
    func gammaSamplesHaveTheirShapesMeanAndSpread(shape: Double) {
        var random = SeededGenerator(seed: 7)
        let samples = (0..<40_000).map { _ in random.gamma(shape: shape) }
        let (mean, cv) = Self.meanAndCV(samples)
        // Gamma(k, 1): mean k, CV 1/√k.
        #expect(abs(mean / shape - 1) < 0.05, "mean \(mean)")
        #expect(abs(cv * shape.squareRoot() - 1) < 0.08, "cv \(cv)")
        #expect(samples.allSatisfy { $0 >= 0 && $0.isFinite })
    }

    static func generator(rate: Double = 2, cv: Double = 1, duration: Double = 60) -> TraceGenerator {
        var generator = TraceGenerator(models: [("a", "chatbot"), ("b", "summarization")], rate: rate, cv: cv, durationSeconds: duration)
        generator.replicas = 2
        return generator
    }

    @Test func theSameSeedWritesTheSameTraceAndAnotherSeedAnother() throws {
        let one = try Self.generator().generate()
        #expect(try Self.generator().generate() == one)
        var other = Self.generator()
        other.seed = 2
        #expect(try other.generate().requests != one.requests)
        #expect(one.functions.map(\.name) == ["a/0", "a/1", "b/0", "b/1"])
        #expect(one.tasks.map(\.name) == ["chatbot", "summarization"])
        #expect(zip(one.requests, one.requests.dropFirst()).allSatisfy { $0.arrivalSeconds <= $1.arrivalSeconds })
        #expect(one.requests.allSatisfy { $0.arrivalSeconds >= 0 && $0.arrivalSeconds < 60 })
        // Requests of a summarization function carry that task's tokens and longer prompts.
        let summaries = one.requests.filter { $0.function.hasPrefix("b/") }
        #expect(!summaries.isEmpty && summaries.allSatisfy { $0.maxTokens == 16 && $0.prompt.split(separator: " ").count >= 90 })
        try one.validate("generated")
    }

    @Test(arguments: [1.0, 4.0])
    func longTracesHaveTheAskedRateAndBurstiness(cv: Double) throws {
        let trace = try Self.generator(rate: 4, cv: cv, duration: 5000).generate()
        #expect(abs(Double(trace.requests.count) / 5000 / 4 - 1) < 0.1, "\(trace.requests.count) requests")
        for function in trace.functions {
            let times = trace.requests.filter { $0.function == function.name }.map(\.arrivalSeconds)
            let gaps = zip(times, times.dropFirst()).map { $1 - $0 }
            #expect(abs(Self.meanAndCV(gaps).cv / cv - 1) < 0.2, "\(function.name): CV \(Self.meanAndCV(gaps).cv)")
        }
    }

    @Test func skewSplitsTheRateUnevenlyButKeepsItsSum() throws {
        var generator = Self.generator()
        generator.skew = 1.5
        let rates = try generator.generate().functions.map(\.rate)
        #expect(abs(rates.reduce(0, +) - 2) < 1e-9)
        #expect(rates.max()! > 3 * rates.min()!)
    }

    @Test func badSettingsAreRefusedByName() throws {
        var generator = Self.generator()
        generator.models = [("a", "poetry")]
        #expect(throws: ControlError.self) { try generator.generate() }
        do { _ = try generator.generate() } catch { #expect("\(error)".contains("unknown task 'poetry'")) }
        #expect(try Trace.Task.parse("chat:2:0.1:10:8") == Trace.Task(name: "chat", ttftSLOSeconds: 2, tpotSLOSeconds: 0.1, promptWords: 10, maxTokens: 8))
        #expect(try Trace.Task.parse("code").ttftSLOSeconds == 4)
        for bad in ["chat:2:0.1:10", "chat:-1:0.1:10:8", "chat:x:0.1:10:8", "nosuchtask"] {
            #expect(throws: ControlError.self) { try Trace.Task.parse(bad) }
        }
    }

    @Test func aTraceNamingAnUnknownFunctionIsRefused() throws {
        var trace = try Self.generator(duration: 10).generate()
        trace.requests.append(Trace.Request(arrivalSeconds: 11, function: "ghost", prompt: "x", maxTokens: 1))
        let path = NSTemporaryDirectory() + "trace-" + UUID().uuidString + ".json"
        defer { unlink(path) }
        try trace.encoded().write(to: URL(fileURLWithPath: path))
        #expect(throws: ControlError.self) { try Trace.load(path) }
        do { _ = try Trace.load(path) } catch { #expect("\(error)".contains("unknown function 'ghost'")) }
    }

    @Test func theServeConfigurationCarriesEachModelsReplicasAndObjective() throws {
        let text = try Self.generator().generate().serveConfiguration
        let configuration = try JSONDecoder().decode(ServeConfiguration.self, from: Data(try YAMLReader.parse(text, file: "t", typed: true).encoded()))
        #expect(configuration.serveAll == false)
        #expect(configuration.models["a"]?.replicas == 2 && configuration.models["a"]?.ttftSLOSeconds == 3)
        #expect(configuration.models["b"]?.ttftSLOSeconds == 6)
    }

    // MARK: CSV

    static let functions = [(name: "m/0", model: "m", task: "chatbot"), (name: "m/1", model: "m", task: "chatbot")]

    @Test func azureRowsReplayAsArrivalsMostInvokedFirst() throws {
        // Azure Functions 2021: arrival = end_timestamp − duration. f2 is invoked most: it becomes m/0.
        let csv = """
        app,func,end_timestamp,duration
        a1,f1,10.5,0.5
        a1,f2,12.0,1.0
        a1,f2,13.0,0.5
        a1,f2,20.0,1.0
        """
        let replay = try InvocationCSV(text: csv, origin: "azure.csv")
        #expect(replay.arrivals.map(\.seconds) == [10, 11, 12.5, 19])
        let trace = try replay.trace(functions: Self.functions, tasks: Trace.Task.builtIn, rate: nil, durationSeconds: nil, origin: "azure.csv")
        #expect(trace.requests.map(\.arrivalSeconds) == [0, 1, 2.5, 9])
        #expect(trace.requests.map(\.function) == ["m/1", "m/0", "m/0", "m/0"])
        // Twice the recorded rate: times halve; a duration cuts the rest.
        let faster = try replay.trace(functions: Self.functions, tasks: Trace.Task.builtIn, rate: 8.0 / 9, durationSeconds: 2, origin: "azure.csv")
        #expect(faster.requests.count == 3 && zip(faster.requests.map(\.arrivalSeconds), [0, 0.5, 1.25]).allSatisfy { abs($0 - $1) < 1e-9 })
    }

    @Test func csvProblemsNameTheRowAndColumn() {
        for (csv, expected) in [("func,timestamp\nf,1\nf,soon", "row 3"), ("when,who\n1,f", "no function column"),
                                ("func,duration\nf,1", "no timestamp column"), ("func,timestamp\n", "no invocations")] {
            do {
                _ = try InvocationCSV(text: csv, origin: "x.csv")
                Issue.record("accepted: \(csv)")
            } catch { #expect("\(error)".contains(expected), "\(error)") }
        }
    }
}
