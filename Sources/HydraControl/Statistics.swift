import HydraEngine

/// Nearest-rank percentile of a non-empty list.
public func percentile(_ values: [Double], _ fraction: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, max(0, Int((fraction * Double(sorted.count)).rounded(.up)) - 1))]
}

/// The middle value (the mean of the two middle ones for an even count); NaN for an empty list.
public func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// How far a benchmark's ratio of medians, `median(numerator) / median(denominator)`, can be
/// trusted: a percentile bootstrap interval (90% by default). When both lists have one value per
/// round of a benchmark that alternates its contenders, rounds are resampled whole (paired), so
/// a slow spell of the machine weighs on both sides alike; otherwise each list is resampled on
/// its own. The seed is fixed: the same runs always give the same interval. Nil below 3 values.
public func ratioOfMediansInterval(_ numerator: [Double], _ denominator: [Double], confidence: Double = 0.9,
                                   resamples: Int = 2000, seed: UInt64 = 1) -> ClosedRange<Double>? {
    guard numerator.count >= 3, denominator.count >= 3, confidence > 0, confidence < 1, resamples > 0 else { return nil }
    var generator = SeededGenerator(seed: seed)
    let paired = numerator.count == denominator.count
    var ratios: [Double] = []
    ratios.reserveCapacity(resamples)
    var top: [Double] = [], bottom: [Double] = []
    for _ in 0..<resamples {
        top.removeAll(keepingCapacity: true)
        bottom.removeAll(keepingCapacity: true)
        if paired {
            for _ in numerator.indices {
                let round = Int.random(in: 0..<numerator.count, using: &generator)
                top.append(numerator[round])
                bottom.append(denominator[round])
            }
        } else {
            for _ in numerator.indices { top.append(numerator[Int.random(in: 0..<numerator.count, using: &generator)]) }
            for _ in denominator.indices { bottom.append(denominator[Int.random(in: 0..<denominator.count, using: &generator)]) }
        }
        ratios.append(median(top) / median(bottom))
    }
    let tail = (1 - confidence) / 2
    return percentile(ratios, tail)...percentile(ratios, 1 - tail)
}
