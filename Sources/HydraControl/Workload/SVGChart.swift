import Foundation

/// The analyzer's plots, as self-contained SVG (no plotting library to install; browsers and
/// GitHub render them): line charts (CDFs as steps) and Gantt charts.
public enum SVGChart {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    static let width = 720.0, height = 440.0
    static let right = 190.0, top = 40.0, bottom = 55.0

    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]

        public init(name: String, points: [(x: Double, y: Double)]) {
            self.name = name
            self.points = points
        }
    }

    /// Lines through each series' points (`steps`: a staircase, for CDFs).
    public static func lines(title: String, xLabel: String, yLabel: String, series: [Series], yRange: ClosedRange<Double>? = nil,
                             steps: Bool = false) -> String {
        let xs = series.flatMap { $0.points.map(\.x) }, ys = series.flatMap { $0.points.map(\.y) }
        let xRange = niceRange(xs.min() ?? 0, xs.max() ?? 1)
        let yRange = yRange ?? niceRange(min(0, ys.min() ?? 0), ys.max() ?? 1)
        let frame = Frame()
        var body = frame.axes(title: title, xLabel: xLabel, yLabel: yLabel, xRange: xRange, yRange: yRange)
        for (index, line) in series.enumerated() {
            let color = palette[index % palette.count]
            var path = ""
            var previous: (x: Double, y: Double)?
            for point in line.points.sorted(by: { $0.x < $1.x }) {
                let (px, py) = (frame.x(point.x, xRange), y(point.y, yRange))
                if let previous, steps { path += " L\(f(px)),\(f(y(previous.y, yRange)))" }
                path += (previous == nil ? "M" : " L") + "\(f(px)),\(f(py))"
                previous = point
            }
            body += "<path d=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
            if !steps {
                for point in line.points {
                    body += "<circle cx=\"\(f(frame.x(point.x, xRange)))\" cy=\"\(f(y(point.y, yRange)))\" r=\"3\" fill=\"\(color)\"/>\n"
                }
            }
            body += legend(index, line.name, color)
        }
        return document(body)
    }

    public struct Bar: Sendable {
        public var start: Double
        public var end: Double
        /// Index into the chart's phases.
        public var phase: Int

        public init(start: Double, end: Double, phase: Int) {
            self.start = start
            self.end = end
            self.phase = phase
        }
    }

    /// One row per entry, its bars coloured by phase.
    public static func gantt(title: String, xLabel: String, rows: [(label: String, bars: [Bar])], phases: [String]) -> String {
        let xRange = niceRange(0, rows.flatMap { $0.bars.map(\.end) }.max() ?? 1)
        // Room on the left for the row labels.
        let frame = Frame(left: max(70, Double(rows.prefix(40).map(\.label.count).max() ?? 0) * 6 + 12))
        var body = frame.axes(title: title, xLabel: xLabel, yLabel: "", xRange: xRange, yRange: 0...1, yTicks: false)
        let rowHeight = (height - top - bottom) / Double(max(rows.count, 1))
        for (index, row) in rows.enumerated() {
            let rowTop = top + Double(index) * rowHeight
            if rows.count <= 40 {
                body += "<text x=\"\(f(frame.left - 4))\" y=\"\(f(rowTop + rowHeight * 0.65))\" font-size=\"10\" text-anchor=\"end\">\(escape(row.label))</text>\n"
            }
            for bar in row.bars where bar.end > bar.start {
                body += rect(frame.x(bar.start, xRange), rowTop + rowHeight * 0.15, max(0.5, frame.x(bar.end, xRange) - frame.x(bar.start, xRange)),
                             rowHeight * 0.7,
                             fill: palette[bar.phase % palette.count])
            }
        }
        for (index, phase) in phases.enumerated() { body += legend(index, phase, palette[index % palette.count]) }
        return document(body)
    }

    // MARK: Pieces

    /// The plot area, from its left edge (Gantt charts move it for their row labels) to the legend.
    struct Frame {
        var left = 70.0

        func x(_ value: Double, _ range: ClosedRange<Double>) -> Double {
            left + (value - range.lowerBound) / max(range.upperBound - range.lowerBound, 1e-12) * (width - left - right)
        }

        func axes(title: String, xLabel: String, yLabel: String, xRange: ClosedRange<Double>, yRange: ClosedRange<Double>,
                  yTicks: Bool = true) -> String {
            var out = text((left + width - right) / 2, 24, title, size: 15, anchor: "middle")
            out += rect(left, top, width - left - right, height - top - bottom, fill: "none", stroke: "#444")
            for (range, horizontal) in [(xRange, true), (yRange, false)] where horizontal || yTicks {
                let step = tickStep(range.upperBound - range.lowerBound)
                var value = range.lowerBound
                while value <= range.upperBound + step / 1000 {
                    let label = format(value)
                    if horizontal {
                        let px = x(value, range)
                        out += "<line x1=\"\(f(px))\" y1=\"\(f(top))\" x2=\"\(f(px))\" y2=\"\(f(height - bottom))\" stroke=\"#ddd\"/>\n"
                        out += text(px, height - bottom + 16, label, size: 11, anchor: "middle")
                    } else {
                        let py = y(value, range)
                        out += "<line x1=\"\(f(left))\" y1=\"\(f(py))\" x2=\"\(f(width - right))\" y2=\"\(f(py))\" stroke=\"#ddd\"/>\n"
                        out += text(left - 6, py + 4, label, size: 11, anchor: "end")
                    }
                    value += step
                }
            }
            out += text((left + width - right) / 2, height - 14, xLabel, size: 12, anchor: "middle")
            let middle = f((top + height - bottom) / 2)
            out += "<text x=\"16\" y=\"\(middle)\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(middle))\">\(escape(yLabel))</text>\n"
            return out
        }
    }

    static func y(_ value: Double, _ range: ClosedRange<Double>) -> Double {
        height - bottom - (value - range.lowerBound) / max(range.upperBound - range.lowerBound, 1e-12) * (height - top - bottom)
    }

    /// A range from a round number below `low` to one above `high`.
    static func niceRange(_ low: Double, _ high: Double) -> ClosedRange<Double> {
        let step = tickStep(max(high - low, 1e-9))
        let lower = (low / step).rounded(.down) * step
        return lower...max((high / step).rounded(.up) * step, lower + step)
    }

    /// 1, 2 or 5 × 10^k, about five ticks over `span`.
    static func tickStep(_ span: Double) -> Double {
        let raw = span / 5
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        return [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    }

    static func legend(_ index: Int, _ name: String, _ color: String) -> String {
        let ly = top + 10 + Double(index) * 18
        return rect(width - right + 12, ly - 10, 12, 12, fill: color) + text(width - right + 30, ly, name, size: 11, anchor: "start")
    }

    static func f(_ value: Double) -> String { String(format: "%.1f", value) }

    static func rect(_ x: Double, _ y: Double, _ width: Double, _ height: Double, fill: String, stroke: String? = nil) -> String {
        "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(width))\" height=\"\(f(height))\" fill=\"\(fill)\""
            + (stroke.map { " stroke=\"\($0)\"" } ?? "") + "/>\n"
    }

    static func text(_ x: Double, _ y: Double, _ content: String, size: Int, anchor: String) -> String {
        "<text x=\"\(f(x))\" y=\"\(f(y))\" font-size=\"\(size)\" text-anchor=\"\(anchor)\">\(escape(content))</text>\n"
    }

    static func format(_ value: Double) -> String {
        abs(value - value.rounded()) < 1e-9 ? String(Int(value.rounded())) : String(format: "%g", (value * 1000).rounded() / 1000)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static func document(_ body: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\">\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n" + body + "</svg>\n"
    }
}
