import Foundation
import Glibc
import Testing
import HydraEngine
import HydraFormat
import HydraSystem
import HydraTestSupport
@testable import HydraWorker

@Suite(.serialized) struct PipelineWireTests {
    /// Sends raw bytes to a stage and returns what it answered (kind and text) before closing.
    static func exchange(_ port: Int, _ bytes: [UInt8], then frames: [(PipelineWire.Kind, [UInt8])] = []) throws -> [(PipelineWire.Kind, String)] {
        let connection = try TCPConnection.connect(host: "127.0.0.1", port: port)
        connection.setReceiveTimeout(seconds: 5)
        try bytes.withUnsafeBytes { try connection.write($0) }
        for (kind, payload) in frames { try PipelineWire.write(connection, kind, payload) }
        _ = Glibc.shutdown(connection.fd, Int32(SHUT_WR))  // nothing more is coming
        var replies: [(PipelineWire.Kind, String)] = []
        while let (kind, payload) = try? PipelineWire.read(connection) {
            replies.append((kind, String(decoding: payload.prefix(300), as: UTF8.self)))
        }
        return replies
    }

    static func frame(_ kind: UInt8, _ payload: [UInt8], magic: [UInt8] = PipelineWire.magic, version: UInt16 = 1, length: Int? = nil) -> [UInt8] {
        let size = UInt32(length ?? payload.count)
        return magic + [UInt8(version & 0xFF), UInt8(version >> 8), kind, 0,
                        UInt8(size & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size >> 16 & 0xFF), UInt8(size >> 24)] + payload
    }

    @Test func malformedAndTruncatedFramesAreRejectedAndTheStageKeepsServing() async throws {
        try await ServedStore.with(model: "llama3-tiny") { served in
            let port = served.port
            let reference = try Engine(runner: try StageRunner(entry: served.entry)).generate(PipelineRequests.all)
            try await offPool {
                let pipeline = try LocalPipeline(port: port, pp: 2)
                defer { pipeline.stop() }
                let stage = pipeline.servers[0]
                let hello = PipelineHello(model: "m", pp: 2, stage: 1, blockCount: stage.runner.cache.blockCount, blockSize: stage.runner.cache.blockSize)
                let config = stage.runner.config
                func forward(blocks: [Int], columns: Int, start: Int = 0) -> [UInt8] {
                    let layout = Batch.Sequence(firstRow: 0, tokenCount: 2, startPosition: start, blockTable: blocks)
                    let step = ScheduledStep(tokens: [], batch: Batch(sequences: [layout]),
                                             sequences: [.init(id: 7, sampling: .greedy, wantsPromptLogits: false)], released: [])
                    return PipelineForward(stepID: 1, step: step, hidden: Matrix(zeros: 2, columns)).encoded()
                }
                let cases: [(String, [UInt8], [(PipelineWire.Kind, [UInt8])], String)] = [
                    ("bad magic", Self.frame(1, [], magic: Array("HTTP".utf8)), [], "bad magic"),
                    ("future version", Self.frame(1, [], version: 9), [], "protocol version 9"),
                    ("unknown kind", Self.frame(77, []), [], "unknown frame kind 77"),
                    ("huge length", Self.frame(3, [], length: Int(UInt32.max)), [], "limit"),
                    ("forward before hello", [], [(.forward, forward(blocks: [0], columns: config.hiddenSize))], "before hello"),
                    ("wrong model", [], [(.hello, PipelineHello(model: "x", pp: 2, stage: 1, blockCount: hello.blockCount, blockSize: hello.blockSize).encoded())], "does not match"),
                    ("truncated hello", [], [(.hello, Array(hello.encoded().dropLast(3)))], "truncated"),
                    ("block id out of range", [], [(.hello, hello.encoded()), (.forward, forward(blocks: [hello.blockCount + 5], columns: config.hiddenSize))], "out of range"),
                    ("wrong width", [], [(.hello, hello.encoded()), (.forward, forward(blocks: [0], columns: config.hiddenSize + 1))], "hidden size"),
                    ("beyond the context", [], [(.hello, hello.encoded()), (.forward, forward(blocks: [0], columns: config.hiddenSize, start: 1 << 20))], "context"),
                    ("trailing bytes", [], [(.hello, hello.encoded() + [0])], "trailing"),
                ]
                for (name, raw, frames, expected) in cases {
                    let replies = try Self.exchange(stage.port, raw, then: frames)
                    let error = replies.last { $0.0 == .error }?.1 ?? "(no error frame: \(replies.map(\.0)))"
                    #expect(error.contains(expected), "\(name): \(error)")
                }
                // A header cut short, then hang-up: nothing to answer, nothing broken.
                _ = try Self.exchange(stage.port, Array(Self.frame(2, []).prefix(5)))
                // The stage still serves its pipeline.
                #expect(try pipeline.engine.generate(PipelineRequests.all) == reference)
            }
        }
    }

    @Test func framesRoundTrip() throws {
        let layout = [Batch.Sequence(firstRow: 0, tokenCount: 3, startPosition: 5, blockTable: [4, 2]),
                      Batch.Sequence(firstRow: 3, tokenCount: 1, startPosition: 0, blockTable: [9])]
        let step = ScheduledStep(tokens: [], batch: Batch(sequences: layout),
                                 sequences: [.init(id: 3, sampling: SamplingParameters(temperature: 0.5, topP: 0.9, seed: 11), wantsPromptLogits: true),
                                             .init(id: 8, sampling: .greedy, wantsPromptLogits: false)],
                                 released: [1, 2])
        let hidden = Matrix(rows: 4, columns: 3, values: (0..<12).map { Float($0) * 0.25 - 1 })
        let decoded = try PipelineForward(decoding: PipelineForward(stepID: 99, step: step, hidden: hidden).encoded(),
                                          hiddenSize: 3, contextLength: 64, blockCount: 16, blockSize: 4)
        #expect(decoded.stepID == 99 && decoded.hidden == hidden && decoded.step.sequences == step.sequences && decoded.step.released == [1, 2])
        #expect(decoded.step.batch.sequences.map(\.blockTable) == [[4, 2], [9]] && decoded.step.batch.positions == step.batch.positions)
        let tokens = PipelineTokens(stepID: 4, tokens: [5, 0, 31])
        #expect(try PipelineTokens(decoding: tokens.encoded(), vocabSize: 32) == tokens)
        #expect(throws: PipelineWire.Malformed.self) { try PipelineTokens(decoding: tokens.encoded(), vocabSize: 31) }
        // Every truncation of a valid frame is rejected, never trusted.
        let bytes = PipelineForward(stepID: 99, step: step, hidden: hidden).encoded()
        for cut in stride(from: 0, to: bytes.count, by: 7) {
            #expect(throws: PipelineWire.Malformed.self) {
                _ = try PipelineForward(decoding: Array(bytes.prefix(cut)), hiddenSize: 3, contextLength: 64, blockCount: 16, blockSize: 4)
            }
        }
    }
}
