import RLAIF
import Foundation

/// Who did what when: one lane per worker with its jobs (by kind) and the steps it took part in,
/// and marks where workers joined, were lost, and where the run resumed.
extension RunReport {
    static let kindColors = ["rollout": "#1f77b4", "labeling": "#ff7f0e", "evaluation": "#9467bd", "steps": "#2ca02c"]

    var timelineSection: String {
        var lanes: [String] = []
        var bars: [(lane: String, from: Double, to: Double, kind: String)] = []
        var marks: [(time: Double, lane: String?, kind: String)] = []
        var lastStep: [String: Double] = [:]
        var previousCommit = 0.0
        func lane(_ w: String) { if !lanes.contains(w) { lanes.append(w) } }
        for (line, t) in zip(lines, times) {
            switch line.event {
            case .workerJoined(let w, _, _, _, _, _):
                lane(w)
                marks.append((t, w, "joined"))
            case .workerLost(let w, _): marks.append((t, w, "lost"))
            case .resumed: marks.append((t, nil, "resumed"))
            case .job(_, let kind, let w, _, let seconds):
                lane(w)
                bars.append((w, t - seconds, t, kind))
            case .step(_, let participants, _, _):
                // A run of consecutive steps on a worker is one bar.
                for w in participants {
                    lane(w)
                    if let i = bars.lastIndex(where: { $0.lane == w && $0.kind == "steps" }),
                        lastStep[w] == previousCommit
                    {
                        bars[i].to = t
                    } else {
                        bars.append((w, previousCommit, t, "steps"))
                    }
                    lastStep[w] = t
                }
                previousCommit = t
            default:
                if case .metrics = line.event {} else { previousCommit = max(previousCommit, t) }
            }
        }
        guard !bars.isEmpty, let end = times.last, end > 0 else { return "" }
        return section("Timeline of jobs per worker", svg(lanes: lanes, bars: bars, marks: marks, end: end))
    }

    private func svg(
        lanes: [String], bars: [(lane: String, from: Double, to: Double, kind: String)],
        marks: [(time: Double, lane: String?, kind: String)], end: Double
    ) -> String {
        let left = 70.0, width = 1100.0, laneHeight = 26.0, top = 30.0
        let height = top + laneHeight * Double(lanes.count) + 40
        func x(_ t: Double) -> Double { left + max(0, t) / end * (width - left - 10) }
        func y(_ w: String) -> Double { top + Double(lanes.firstIndex(of: w) ?? 0) * laneHeight }
        var out = [
            #"<svg class="chart" width="\#(Int(width))" height="\#(Int(height))" viewBox="0 0 \#(Int(width)) \#(Int(height))" role="img">"#,
            #"<text x="\#(left)" y="18" class="title">jobs and steps by worker over the run (seconds)</text>"#,
        ]
        for w in lanes {
            out.append(#"<text x="\#(left - 8)" y="\#(y(w) + 16)" class="tick" text-anchor="end">\#(escape(w))</text>"#)
        }
        for b in bars {
            let color = Self.kindColors[b.kind] ?? "#8c564b"
            let w = max(0.5, x(b.to) - x(b.from))
            out.append(
                #"<rect class="job" x="\#(fmt(x(b.from)))" y="\#(fmt(y(b.lane) + 4))" width="\#(fmt(w))" height="\#(laneHeight - 8)" fill="\#(color)"><title>\#(b.kind) \#(fmt(b.from))–\#(fmt(b.to)) s</title></rect>"#
            )
        }
        for m in marks {
            let color = m.kind == "lost" ? "#d62728" : (m.kind == "resumed" ? "#000" : "#2ca02c")
            let (y1, y2) = m.lane.map { (y($0), y($0) + laneHeight) } ?? (top, top + laneHeight * Double(lanes.count))
            out.append(
                #"<line x1="\#(fmt(x(m.time)))" x2="\#(fmt(x(m.time)))" y1="\#(y1)" y2="\#(y2)" stroke="\#(color)" stroke-width="2"><title>\#(m.kind)</title></line>"#
            )
        }
        let axisY = top + laneHeight * Double(lanes.count) + 16
        for t in SVGChart.ticks(0...end) {
            out.append(#"<text x="\#(fmt(x(t)))" y="\#(axisY)" class="tick" text-anchor="middle">\#(Int(t))</text>"#)
        }
        let legend =
            (["rollout", "labeling", "evaluation", "steps"].map { ($0, Self.kindColors[$0]!) }
            + [("joined", "#2ca02c"), ("lost", "#d62728"), ("resumed", "#000")]).enumerated().map { i, k in
                #"<text x="\#(left + Double(i) * 110)" y="\#(axisY + 18)" class="legend" fill="\#(k.1)">■ \#(k.0)</text>"#
            }
        return (out + legend + ["</svg>"]).joined(separator: "\n")
    }

    private func fmt(_ v: Double) -> String { String(format: "%.2f", v) }
}
