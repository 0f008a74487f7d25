import RLAIF
import Foundation

/// `report.html`: one self-contained page about a run — the summary, curves of every phase, the
/// win rate over RL iterations, what the labeler's two orders say, a timeline of each worker's
/// jobs, and evaluation examples side by side. Built from metrics.jsonl, summary.json and
/// evaluation.jsonl alone, so it can be made for any run directory, finished or not.
public struct RunReport {
    let lines: [RunEventLine]
    let summary: RunSummary?
    let examples: [EvaluationRecord]
    /// Each line's time on one clock: a resumed run's clock restarts, so later segments are shifted.
    let times: [Double]

    struct EvaluationRecord: Decodable {
        let prompt: String, policy: String, sft: String
        let label: Label
        struct Label: Decodable { let probabilityA: Double? }
    }

    public init(runDirectory: URL) throws {
        lines = try RunEventLine.read(runDirectory.appendingPathComponent("metrics.jsonl"))
        summary = try? RunSummary.read(from: runDirectory.appendingPathComponent("summary.json"))
        let evaluation =
            (try? String(contentsOf: runDirectory.appendingPathComponent("evaluation.jsonl"), encoding: .utf8)) ?? ""
        examples = evaluation.split(separator: "\n").prefix(8).compactMap {
            try? JSONDecoder().decode(EvaluationRecord.self, from: Data($0.utf8))
        }
        var offset = 0.0, last = 0.0, times: [Double] = []
        for line in lines {
            if case .runStarted = line.event, !times.isEmpty { offset = last }
            last = line.time + offset
            times.append(last)
        }
        self.times = times
    }

    /// Writes `report.html` in the run directory and returns its URL.
    @discardableResult
    public static func write(runDirectory: URL) throws -> URL {
        let url = runDirectory.appendingPathComponent("report.html")
        try Data(try RunReport(runDirectory: runDirectory).html.utf8).write(to: url, options: .atomic)
        return url
    }

    public var html: String {
        let name =
            lines.lazy.compactMap { if case .runStarted(let n, _, _) = $0.event { n } else { nil } }.first ?? "run"
        let body = [
            "<h1>rlaif: \(escape(name))</h1>", summarySection, curvesSection, winRateSection, labelerSection,
            timelineSection, examplesSection,
        ]
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>rlaif report: \(escape(name))</title>
            <style>\(Self.style)</style></head>
            <body>
            \(body.joined(separator: "\n"))
            <script>\(Self.check)</script>
            </body></html>
            """
    }

    static let style = """
        body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
        h2{margin-top:32px;border-bottom:1px solid #ddd}
        table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
        .charts{display:flex;flex-wrap:wrap;gap:12px}
        .frame{fill:none;stroke:#999}.grid{stroke:#eee}.reference{stroke:#888;stroke-dasharray:4 3}
        .title{font-weight:600;font-size:13px}.tick{font-size:10px;fill:#555}.axis{font-size:11px;fill:#333}
        .legend{font-size:11px}pre{white-space:pre-wrap;margin:0;font-size:12px}
        """

    /// Every chart must have drawn something: a chart that did not is a console error.
    static let check = """
        const charts=[...document.querySelectorAll('svg.chart')];
        const empty=charts.filter(c=>{const b=c.getBBox();return !(b.width>0&&b.height>0)||!c.querySelector('polyline,circle,rect.job');});
        empty.forEach(c=>console.error('chart did not render: '+(c.querySelector('.title')||{}).textContent));
        document.title='rlaif report: '+charts.length+' charts, '+empty.length+' empty';
        """

    func section(_ title: String, _ content: String) -> String {
        content.isEmpty ? "" : "<h2>\(escape(title))</h2>\n\(content)"
    }
}
