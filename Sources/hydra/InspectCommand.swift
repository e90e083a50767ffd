import ArgumentParser
import Foundation
import HydraFormat

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a store entry: model, tensors, bytes and every stage plan."
    )

    @OptionGroup var selection: StoreSelection

    func run() throws {
        try runReportingErrors {
            let directory = selection.directory
            let names = try selection.names()
            if names.isEmpty { print("store \(selection.store) holds no models") }
            for (position, model) in names.enumerated() {
                if position > 0 { print("") }
                print(describe(try StoreEntry(store: directory, name: model)))
            }
        }
    }

    func describe(_ entry: StoreEntry) -> String {
        let m = entry.manifest
        let payload = m.chunks.reduce(0) { $0 + $1.payloadBytes }
        let stored = m.chunks.reduce(0) { $0 + $1.storedBytes }
        let unique = Set(m.chunks.map(\.sha256)).count
        let dtypes = Dictionary(grouping: m.tensors, by: \.dtype).map { "\($0.key.rawValue)×\($0.value.count)" }.sorted()
        var lines = [
            "model:        \(m.name) (\(m.architecture), \(m.layerCount) layers\(m.tiedEmbeddings ? ", tied head" : ""))",
            "format:       \(m.format) \(m.formatVersion), source \(m.source.kind.rawValue), dtype \(m.source.dtypePolicy.rawValue)",
            "tensors:      \(m.tensors.count) (\(dtypes.joined(separator: ", ")))",
            "chunks:       \(m.chunks.count) (\(unique) unique), target size \(m.chunkSizeBytes >> 20) MiB",
            "bytes:        \(formatBytes(payload)) payload, \(formatBytes(stored)) stored",
            "files:        \(m.files.map(\.name).joined(separator: ", "))",
            "stage plans:",
        ]
        for plan in m.stagePlans {
            let largest = plan.stages.map(\.bytes).max() ?? 0
            let smallest = plan.stages.map(\.bytes).min() ?? 0
            let spread = largest > 0 ? Double(largest - smallest) / Double(largest) * 100 : 0
            lines.append(String(format: "  pp=%d  (largest stage %@, spread %.0f%%)", plan.pp, formatBytes(largest), spread))
            for stage in plan.stages {
                var parts = [stage.endLayer - stage.firstLayer == 1 ? "layer \(stage.firstLayer)" : "layers \(stage.firstLayer)-\(stage.endLayer - 1)"]
                if stage.embed { parts.insert("embed", at: 0) }
                if stage.head { parts.append("head") }
                lines.append("    stage \(stage.index): \(parts.joined(separator: " + ")), \(stage.chunks.count) chunks, \(formatBytes(stage.bytes))")
            }
        }
        return lines.joined(separator: "\n")
    }
}
