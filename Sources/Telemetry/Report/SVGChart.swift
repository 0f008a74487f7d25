import Foundation

/// A line chart as inline SVG: axes with rounded ticks, one polyline per series, a legend. No
/// script and no external reference, so the page renders offline and as a file.
struct SVGChart {
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
    }

    var title: String
    var xLabel: String
    var series: [Series]
    var width = 560.0, height = 260.0
    /// A dashed horizontal reference line (0.5 for win rates and position bias).
    var reference: Double?

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    private let left = 56.0, right = 16.0, top = 30.0, bottom = 40.0

    var svg: String {
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        guard !all.isEmpty else { return "" }
        let xs = Self.range(all.map(\.x)), ys = Self.range(all.map(\.y) + (reference.map { [$0] } ?? []))
        let plotW = width - left - right, plotH = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - xs.lowerBound) / (xs.upperBound - xs.lowerBound) * plotW }
        func py(_ y: Double) -> Double { top + plotH - (y - ys.lowerBound) / (ys.upperBound - ys.lowerBound) * plotH }
        var out = [
            #"<svg class="chart" width="\#(Int(width))" height="\#(Int(height))" viewBox="0 0 \#(Int(width)) \#(Int(height))" role="img">"#,
            #"<text x="\#(left)" y="18" class="title">\#(escape(title))</text>"#,
            #"<rect x="\#(left)" y="\#(top)" width="\#(plotW)" height="\#(plotH)" class="frame"/>"#,
        ]
        for t in Self.ticks(ys) {
            out.append(#"<line x1="\#(left)" x2="\#(left + plotW)" y1="\#(f(py(t)))" y2="\#(f(py(t)))" class="grid"/>"#)
            out.append(
                #"<text x="\#(left - 6)" y="\#(f(py(t) + 4))" class="tick" text-anchor="end">\#(label(t))</text>"#)
        }
        for t in Self.ticks(xs) {
            out.append(
                #"<text x="\#(f(px(t)))" y="\#(top + plotH + 16)" class="tick" text-anchor="middle">\#(label(t))</text>"#
            )
        }
        out.append(
            #"<text x="\#(left + plotW / 2)" y="\#(height - 6)" class="axis" text-anchor="middle">\#(escape(xLabel))</text>"#
        )
        if let reference {
            out.append(
                #"<line x1="\#(left)" x2="\#(left + plotW)" y1="\#(f(py(reference)))" y2="\#(f(py(reference)))" class="reference"/>"#
            )
        }
        for (i, s) in series.enumerated() {
            let color = Self.colors[i % Self.colors.count]
            let points = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            let path = points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            if points.count == 1 {
                out.append(#"<circle cx="\#(f(px(points[0].x)))" cy="\#(f(py(points[0].y)))" r="3" fill="\#(color)"/>"#)
            } else {
                out.append(
                    #"<polyline class="series" fill="none" stroke="\#(color)" stroke-width="1.5" points="\#(path)"/>"#)
            }
            let lx = left + 8 + Double(i) * 150
            out.append(#"<text x="\#(lx)" y="\#(top + 14)" class="legend" fill="\#(color)">\#(escape(s.name))</text>"#)
        }
        out.append("</svg>")
        return out.joined(separator: "\n")
    }

    /// The data's range, widened a little, and never empty.
    static func range(_ values: [Double]) -> ClosedRange<Double> {
        let lo = values.min()!, hi = values.max()!
        let pad = hi > lo ? (hi - lo) * 0.05 : max(abs(lo) * 0.1, 0.5)
        return (lo - pad)...(hi + pad)
    }

    /// About five round ticks inside `r`.
    static func ticks(_ r: ClosedRange<Double>) -> [Double] {
        let raw = (r.upperBound - r.lowerBound) / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        let first = ceil(r.lowerBound / step) * step
        return stride(from: first, through: r.upperBound, by: step).map { $0 }
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }
    private func label(_ v: Double) -> String {
        if abs(v) < 1e-12 { return "0" }
        return abs(v) >= 1000 || v == v.rounded() ? String(format: "%.0f", v) : String(format: "%.3g", v)
    }
}

/// Text for HTML and SVG: the five characters that could end an element or an attribute.
func escape(_ s: String) -> String {
    var out = ""
    for c in s {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(c)
        }
    }
    return out
}
