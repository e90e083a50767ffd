import Foundation

/// Rotary position embedding in the Hugging Face "rotate half" convention: element i pairs with
/// i + D/2. Inverse frequencies follow the config, with llama3 scaling when configured.
public struct Rope: Sendable {
    public let headDim: Int
    public let inverseFrequencies: [Float]

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
        var cosines = [Float](repeating: 0, count: half), sines = [Float](repeating: 0, count: half)
        x.values.withUnsafeMutableBufferPointer { v in
            for (row, position) in positions.enumerated() {
                for i in 0..<half {
                    let angle = Float(position) * inverseFrequencies[i]  // f32 product, as torch computes it
                    cosines[i] = cos(angle)
                    sines[i] = sin(angle)
                }
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
