import RLAIF
import Foundation

/// The report's sections, each from the events it is about.
extension RunReport {
    var summarySection: String {
        guard let summary else { return section("Summary", "<p>The run has not finished: no summary.json yet.</p>") }
        let rows = summary.rows.map { "<tr><th>\(escape($0.0))</th><td>\(escape($0.1))</td></tr>" }
        return section("Summary", "<table>\(rows.joined())</table>")
    }

    var steps: [RunEvent.StepMetrics] {
        lines.compactMap { if case .metrics(let m) = $0.event { m } else { nil } }
    }

    /// Loss and gradient norm of every phase by optimizer step; RL's own figures by iteration.
    var curvesSection: String {
        let all = steps
        var phases: [String] = []
        for m in all where !phases.contains(m.phase) { phases.append(m.phase) }
        var charts: [SVGChart] = []
        for phase in phases {
            let ms = all.filter { $0.phase == phase }
            func series(_ key: String) -> SVGChart.Series {
                .init(name: key, points: ms.compactMap { m in m.values[key].map { (Double(m.version), $0) } })
            }
            charts.append(.init(title: "\(phase): loss", xLabel: "optimizer step", series: [series("loss")]))
            charts.append(
                .init(
                    title: "\(phase): gradient norm", xLabel: "optimizer step",
                    series: [.init(name: "gradient norm", points: ms.map { (Double($0.version), $0.gradientNorm) })]))
            if ms.contains(where: { $0.values["accuracy"] != nil }) {
                charts.append(
                    .init(title: "\(phase): accuracy", xLabel: "optimizer step", series: [series("accuracy")]))
            }
            guard phase == "rl" else { continue }
            func byIteration(_ key: String) -> SVGChart.Series {
                .init(name: key, points: ms.compactMap { m in m.values[key].map { (m.values["iteration"] ?? 0, $0) } })
            }
            for key in ["reward", "kl", "response_length", "ground_truth_quality"]
            where byIteration(key).points.count > 0 {
                charts.append(
                    .init(
                        title: "rl: \(key.replacingOccurrences(of: "_", with: " "))", xLabel: "RL iteration",
                        series: [byIteration(key)]))
            }
        }
        return section("Training curves", "<div class=\"charts\">\(charts.map(\.svg).joined(separator: "\n"))</div>")
    }

    var evaluations: [RunEvent.Evaluation] {
        lines.compactMap { if case .evaluation(let e) = $0.event { e } else { nil } }
    }

    /// The policy against SFT on held-out prompts after each evaluated RL iteration.
    var winRateSection: String {
        let evals = evaluations.filter { $0.iteration != nil }
        guard !evals.isEmpty else { return "" }
        func series(_ name: String, _ value: (RunEvent.Evaluation) -> Double?) -> SVGChart.Series {
            .init(name: name, points: evals.compactMap { e in value(e).map { (Double(e.iteration!), $0) } })
        }
        let chart = SVGChart(
            title: "win rate of the policy against SFT", xLabel: "RL iteration",
            series: [series("labeler", { $0.winRate.labeler }), series("ground truth", { $0.winRate.groundTruth })]
                .filter { !$0.points.isEmpty }, reference: 0.5)
        let kl = SVGChart(title: "KL to SFT (nats/response)", xLabel: "RL iteration", series: [series("KL", { $0.kl })])
        return section("Win rate over RL iterations", "<div class=\"charts\">\(chart.svg)\n\(kl.svg)</div>")
    }

    /// Each labeling phase's agreement between orders, position bias and alignment.
    var labelerSection: String {
        func f(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "—" }
        var rows: [String] = []
        var points: [(first: Double?, alignment: Double?)] = []
        for line in lines {
            guard case .labelerAudit(let phase, let rate, let audit, let alignment) = line.event else { continue }
            rows.append(
                "<tr><td>\(escape(phase))</td><td>\(String(format: "%.0f", rate))</td><td>\(f(audit.orderAgreement))</td>"
                    + "<td>\(f(audit.firstPosition))</td><td>\(f(alignment.debiased))</td><td>\(f(alignment.singleOrder))</td></tr>"
            )
            points.append((audit.firstPosition, alignment.debiased))
        }
        guard !rows.isEmpty else { return "" }
        let header =
            "<tr><th>labeling</th><th>pairs/s</th><th>orders agree</th><th>P(first shown wins)</th>"
            + "<th>alignment, both orders</th><th>alignment, single order</th></tr>"
        let chart = SVGChart(
            title: "position bias and alignment, by labeling", xLabel: "labeling (in run order)",
            series: [
                .init(
                    name: "P(first shown wins)",
                    points: points.enumerated().compactMap { i, p in p.first.map { (Double(i + 1), $0) } }),
                .init(
                    name: "alignment",
                    points: points.enumerated().compactMap { i, p in p.alignment.map { (Double(i + 1), $0) } }),
            ].filter { !$0.points.isEmpty }, reference: 0.5)
        return section("Labeler", "<table>\(header)\(rows.joined())</table>\n<div class=\"charts\">\(chart.svg)</div>")
    }

    /// Held-out prompts with the policy's and the SFT policy's responses and the labeler's verdict.
    var examplesSection: String {
        guard !examples.isEmpty else { return "" }
        let rows = examples.map { e in
            let p = e.label.probabilityA.map { String(format: "%.3f", $0) } ?? "—"
            return "<tr><td><pre>\(escape(e.prompt))</pre></td><td><pre>\(escape(e.policy))</pre></td>"
                + "<td><pre>\(escape(e.sft))</pre></td><td>\(p)</td></tr>"
        }
        return section(
            "Evaluation examples",
            "<table><tr><th>prompt</th><th>policy</th><th>SFT</th><th>P(policy better)</th></tr>\(rows.joined())</table>"
        )
    }
}
