import ArgumentParser
import Foundation
import HydraFormat

struct SyntheticCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synthetic",
        abstract: "Write a random-weight checkpoint (Llama, OPT or Falcon) of a given size, for benchmarks and experiments.",
        discussion: """
        Writes config.json and model.safetensors (bf16) into DIR: a 2048-wide model of \
        --architecture with as many layers as bring it nearest to --gb. Its vocabulary is \
        SmolLM2's size, so with --tokenizer-from STORE:ENTRY (a converted SmolLM2) its tokenizer \
        and chat template are copied in and `hydra serve` can answer chat requests with it \
        (the answers are noise: the weights are random). Convert DIR with `hydra convert`.
        """
    )

    @Argument(help: "Folder to write the checkpoint into.") var directory: String
    @Option(help: "llama, opt or falcon.") var architecture: String = "llama"
    @Option(help: "Size of the weights, GB (10⁹ bytes).") var gb: Double = 1
    @Option(name: .customLong("tokenizer-from"), help: "STORE:ENTRY whose tokenizer files to copy in.") var tokenizerFrom: String?

    func validate() throws {
        guard SyntheticModel.Architecture(rawValue: architecture) != nil else { throw ValidationError("--architecture must be llama, opt or falcon") }
        guard gb > 0, gb <= 64 else { throw ValidationError("--gb must be in (0, 64]") }
    }

    func run() throws {
        try runReportingErrors {
            let model = SyntheticModel.sized(SyntheticModel.Architecture(rawValue: architecture)!, bytes: Int(gb * 1e9))
            Terminal.note("writing a \(architecture) of \(model.layers) layers (\(formatBytes(model.weightBytes))) into \(directory)…")
            try model.write(to: directory)
            if let tokenizerFrom {
                let parts = tokenizerFrom.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw ValidationError("--tokenizer-from: expected STORE:ENTRY") }
                let entry = try StoreEntry(store: StoreDirectory(root: parts[0]), name: parts[1])
                for name in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"] {
                    if let bytes = try entry.file(named: name) { try Data(bytes).write(to: URL(fileURLWithPath: directory + "/" + name)) }
                }
            }
        }
    }
}
