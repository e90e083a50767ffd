import Foundation

/// Rotary position embedding in the Hugging Face "rotate half" convention: element i pairs with
/// i + D/2. Inverse frequencies follow the config, with llama3 scaling when configured.
public struct Rope: Sendable {
    public let headDim: Int
    public let inverseFrequencies: [Float]
    private let table = AngleTable()

    /// cos and sin of every (position, frequency), computed once per position block and shared
    /// by every layer (which would otherwise recompute them for q and k in each of them).
    final class AngleTable: @unchecked Sendable {
        static let blockPositions = 256
        private let lock = NSLock()
        /// Per block of positions: [position][cos… sin…]. Allocated once, never moved or freed
        /// before the table, so rows can be read without the lock.
        private var blocks: [UnsafeMutablePointer<Float>] = []

        deinit { blocks.forEach { $0.deallocate() } }

        func row(_ position: Int, _ inverse: [Float]) -> UnsafePointer<Float> {
            let block = position / Self.blockPositions
            lock.lock()
            defer { lock.unlock() }
            while blocks.count <= block {
                let first = blocks.count * Self.blockPositions
                let values = UnsafeMutablePointer<Float>.allocate(capacity: Self.blockPositions * 2 * inverse.count)
                for p in 0..<Self.blockPositions {
                    for (i, frequency) in inverse.enumerated() {
                        let angle = Float(first + p) * frequency  // f32 product, as torch computes it
                        values[p * 2 * inverse.count + i] = cos(angle)
                        values[p * 2 * inverse.count + inverse.count + i] = sin(angle)
                    }
                }
                blocks.append(values)
            }
            return UnsafePointer(blocks[block] + (position % Self.blockPositions) * 2 * inverse.count)
        }
    }

    public init(headDim: Int, theta: Double, scaling: ModelConfig.RopeScaling?) {
        self.headDim = headDim
        var inverse = stride(from: 0, to: headDim, by: 2).map { 1 / pow(theta, Double($0) / Double(headDim)) }
        if let s = scaling {
            let lowWavelength = s.originalMaxPositions / s.lowFrequencyFactor
            let highWavelength = s.originalMaxPositions / s.highFrequencyFactor
            inverse = inverse.map { frequency in
                let wavelength = 2 * Double.pi / frequency
                if wavelength < highWavelength { return frequency }
                if wavelength > lowWavelength { return frequency / s.factor }
                let smooth = (s.originalMaxPositions / wavelength - s.lowFrequencyFactor) / (s.highFrequencyFactor - s.lowFrequencyFactor)
                return (1 - smooth) * frequency / s.factor + smooth * frequency
            }
        }
        inverseFrequencies = inverse.map(Float.init)
    }

    /// Rotates each of `heads` heads of every row of `x` by its row's position.
    public func apply(_ x: inout Matrix, heads: Int, positions: [Int]) {
        precondition(x.rows == positions.count && x.columns == heads * headDim)
        let half = headDim / 2
        x.values.withUnsafeMutableBufferPointer { v in
            for (row, position) in positions.enumerated() {
                let angles = table.row(position, inverseFrequencies)
                let cosines = angles, sines = angles + half
                for head in 0..<heads {
                    let base = v.baseAddress! + row * x.columns + head * headDim
                    for i in 0..<half {
                        let a = base[i], b = base[i + half]
                        base[i] = a * cosines[i] - b * sines[i]
                        base[i + half] = b * cosines[i] + a * sines[i]
                    }
                }
            }
        }
    }
}
