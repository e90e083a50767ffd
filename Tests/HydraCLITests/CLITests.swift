import Foundation
import Testing

/// Runs the built `hydra` binary as a user would.
struct HydraProcess {
    static let binary: String = {
        // The test bundle and the CLI are built into the same products folder.
        let folder = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for candidate in [folder, folder.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("hydra").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return folder.appendingPathComponent("hydra").path
    }()

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path

    static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }
}

@Suite struct CLITests {
    let store = NSTemporaryDirectory() + "hydra-cli-" + UUID().uuidString

    @Test func convertInspectVerify() throws {
        defer { try? FileManager.default.removeItem(atPath: store) }
        let convert = try HydraProcess.run(["convert", HydraProcess.fixtures + "/tiny/llama3-tiny", store, "--name", "l3", "--max-pp", "4"])
        #expect(convert.status == 0, "\(convert.stderr)")
        #expect(convert.stdout.contains("converted l3: 39 tensors"))

        let inspect = try HydraProcess.run(["inspect", store, "l3"])
        #expect(inspect.status == 0)
        #expect(inspect.stdout.contains("model:        l3 (llama, 4 layers)"))
        #expect(inspect.stdout.contains("pp=4"))
        #expect(!inspect.stdout.contains("pp=5"))
        #expect(inspect.stdout.contains("stage 3: layer 3 + head"))

        let verify = try HydraProcess.run(["verify", store])
        #expect(verify.status == 0 && verify.stdout.contains("l3: ok"))

        // Corrupt one chunk: verify fails and names the tensors.
        let chunks = FileManager.default.enumerator(atPath: store + "/chunks")!.compactMap { $0 as? String }.filter { $0.count > 60 }.sorted()
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: store + "/models/l3.json"))) as! [String: Any]
        let firstChunk = ((manifest["chunks"] as! [[String: Any]])[1])["sha256"] as! String
        let path = store + "/chunks/" + chunks.first { $0.hasSuffix(firstChunk) }!
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[7] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        let bad = try HydraProcess.run(["verify", store, "l3"])
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("does not match") && bad.stdout.contains("model.layers.0."))
    }

    @Test func badSourceIsOneLineAndNonZero() throws {
        defer { try? FileManager.default.removeItem(atPath: store) }
        let result = try HydraProcess.run(["convert", "/nonexistent/model-dir", store])
        #expect(result.status == 1)
        #expect(result.stderr == "error: /nonexistent/model-dir: no such file or directory\n")
        #expect(!FileManager.default.fileExists(atPath: store + "/models"))

        let usage = try HydraProcess.run(["convert", HydraProcess.fixtures + "/tiny/opt-tiny", store, "--dtype", "f8"])
        #expect(usage.status != 0 && usage.stderr.contains("--dtype must be keep, bf16, f16 or f32"))
    }

    @Test func unknownModelNamesTheStore() throws {
        let result = try HydraProcess.run(["inspect", NSTemporaryDirectory(), "no-such-model"])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("error: ") && result.stderr.contains("no model 'no-such-model'"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }
}

@Suite struct GenerateCLITests {
    @Test func generateWritesLogitsAndIds() throws {
        let store = NSTemporaryDirectory() + "hydra-cli-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: store) }
        let model = HydraProcess.fixtures + "/tiny/llama2-tiny"
        #expect(try HydraProcess.run(["convert", model, store, "--name", "l2"]).status == 0)
        let golden = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: model + "/golden.json"))) as! [String: Any]
        let len7 = (golden["prompts"] as! [String: [String: Any]])["len7"]!
        let ids = (len7["input_ids"] as! [Int]).map(String.init).joined(separator: ",")
        let out = store + "/logits.json"
        let result = try HydraProcess.run(["generate", store, "l2", "--prompt-ids", ids, "--max-tokens", "12", "--ignore-eos", "--logits-out", out])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("generated 12 tokens"))
        let written = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as! [String: Any]
        #expect(written["generated_ids"] as! [Int] == len7["greedy_new_tokens"] as! [Int])
        let logits = written["last_logits"] as! [Double], expected = len7["last_logits"] as! [Double]
        #expect(zip(logits, expected).allSatisfy { abs($0 - $1) <= 1e-4 })
        // The tiny fixtures carry no tokenizer: text prompts fail clearly.
        let text = try HydraProcess.run(["generate", store, "l2", "--prompt", "hello"])
        #expect(text.status == 1 && text.stderr == "error: entry 'l2' carries no tokenizer.json: use --prompt-ids\n")
        let long = try HydraProcess.run(["generate", store, "l2", "--prompt-ids", Array(repeating: "5", count: 200).joined(separator: ",")])
        #expect(long.status == 1 && long.stderr.contains("does not fit the context of 128 tokens"))
    }
}
