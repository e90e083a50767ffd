import Foundation

/// How to pick the next token: greedy when temperature is 0, else softmax(logits / T) restricted
/// to the smallest set of tokens whose probability reaches top_p, drawn with a seeded generator.
public struct SamplingParameters: Sendable, Equatable {
    public var temperature: Float
    public var topP: Float
    public var seed: UInt64?

    public init(temperature: Float = 0, topP: Float = 1, seed: UInt64? = nil) {
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
    }

    public static let greedy = SamplingParameters()

    public func validate() throws {
        guard temperature >= 0, temperature.isFinite else { throw EngineError("temperature must be ≥ 0, got \(temperature)") }
        guard topP > 0, topP <= 1 else { throw EngineError("top_p must be in (0, 1], got \(topP)") }
    }
}

/// A small, fast, seedable generator (SplitMix64), so sampling (and a benchmark's workload) is reproducible.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    /// The whole generator: copying it moves a sequence's sampling to another worker exactly.
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

struct Sampler {
    let parameters: SamplingParameters
    private(set) var generator: SeededGenerator

    /// A sampler resumed where another one stopped.
    init(_ parameters: SamplingParameters, generatorState: UInt64) {
        self.parameters = parameters
        generator = SeededGenerator(seed: generatorState)
    }

    init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        generator = SeededGenerator(seed: parameters.seed ?? UInt64.random(in: 0...UInt64.max))
    }

    static func argmax(_ logits: ArraySlice<Float>) -> Int {
        var best = logits.startIndex
        for i in logits.indices where logits[i] > logits[best] { best = i }
        return best - logits.startIndex
    }

    mutating func sample(_ logits: ArraySlice<Float>) -> Int {
        if parameters.temperature == 0 { return Self.argmax(logits) }
        let scaled = logits.map { $0 / parameters.temperature }
        let maximum = scaled.max()!
        var probabilities = scaled.map { exp($0 - maximum) }
        let total = probabilities.reduce(0, +)
        for i in probabilities.indices { probabilities[i] /= total }
        var order = Array(probabilities.indices)
        if parameters.topP < 1 {
            order.sort { probabilities[$0] > probabilities[$1] }
            var kept = 0
            var mass: Float = 0
            while kept < order.count && mass < parameters.topP {
                mass += probabilities[order[kept]]
                kept += 1
            }
            order.removeLast(order.count - kept)
        }
        let keptMass = order.reduce(Float(0)) { $0 + probabilities[$1] }
        var draw = Float(Double(generator.next() >> 11) / Double(1 << 53)) * keptMass
        for index in order {
            draw -= probabilities[index]
            if draw <= 0 { return index }
        }
        return order.last!
    }
}
