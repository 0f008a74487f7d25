import Coordinator
import Foundation
import RLAIF
import Telemetry
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A quick run's telemetry read by the real readers: TensorBoard's event reader, a Prometheus
/// server scraping the coordinator, and headless Chromium opening report.html with no network.
/// tools/telemetry-peers.sh installs them where missing (bounded).
@Suite(.serialized) struct TelemetryRunTests {
    typealias Run = ClusterRunTests

    static let peers = Run.root.appendingPathComponent("tools/telemetry-peers.sh").path

    /// Runs a command to its end under `timeout`: its status and standard output; stderr goes to `errors`.
    static func output(_ arguments: [String], timeout: Int = 120) -> (status: Int32, out: String, errors: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        p.arguments = ["\(timeout)"] + arguments
        let out = Pipe()
        let errorsFile = FileManager.default.temporaryDirectory.appendingPathComponent(
            "rlaif-stderr-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: errorsFile) }
        _ = FileManager.default.createFile(atPath: errorsFile.path, contents: nil)
        guard let err = try? FileHandle(forWritingTo: errorsFile) else { return (-1, "", "no stderr file") }
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { return (-1, "", "\(error)") }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        try? err.close()
        let errors = (try? String(contentsOf: errorsFile, encoding: .utf8)) ?? ""
        return (p.terminationStatus, text, errors)
    }

    static func installPeers() throws {
        let installed = output(["bash", peers, "install"], timeout: 1500)
        try #require(installed.status == 0, "telemetry peers did not install: \(installed.out)\(installed.errors)")
    }

    static func lines(_ dir: URL) throws -> [RunEvent] {
        try RunEventLine.read(dir.appendingPathComponent("metrics.jsonl")).map(\.event)
    }

    /// The tags docs/OBSERVING.md promises, with their cadence.
    static func documentedTags() throws -> [(tag: String, cadence: String)] {
        let doc = try String(contentsOf: Run.root.appendingPathComponent("docs/OBSERVING.md"), encoding: .utf8)
        return doc.split(separator: "\n").compactMap { line in
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 3, cells[0].hasPrefix("`"), cells[0].contains("/") else { return nil }
            return (cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`")), cells[1])
        }
    }

    @Test func tensorBoardsReader_findsEveryDocumentedTag_atItsCadence_andTheTextSamples() throws {
        try Self.installPeers()
        let run = try MethodRunTests.launch([])
        defer { try? FileManager.default.removeItem(at: run.dir) }
        try #require(run.ok, "the run failed")
        let read = Self.output([
            "python3", Run.root.appendingPathComponent("tools/read_tensorboard.py").path, run.dir.path,
        ])
        try #require(read.status == 0, "the reader failed: \(read.errors)")
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(read.out.utf8)) as? [String: [String: [[Any]]]])
        let scalars = try #require(json["scalars"]), text = try #require(json["text"])
        let events = try Self.lines(run.dir)
        let metrics = events.compactMap { if case .metrics(let m) = $0 { m } else { nil } }
        let evaluations = events.filter { if case .evaluation = $0 { true } else { false } }.count
        let audits = events.filter { if case .labelerAudit = $0 { true } else { false } }.count
        let documented = try Self.documentedTags()
        #expect(documented.count > 30)
        for (tag, cadence) in documented where !tag.contains("<") {
            guard let values = scalars[tag] else {
                Issue.record("\(tag) is documented but not in the event files")
                continue
            }
            let steps = values.map { ($0[0] as? NSNumber)?.intValue ?? -1 }
            let phase = String(tag.prefix { $0 != "/" })
            switch cadence {
            case "step", "iteration":
                // One value per logged step of the phase, at its optimizer step.
                #expect(steps == metrics.filter { $0.phase == phase }.map { Int($0.version) }, "\(tag)")
            case "evaluation": #expect(values.count == evaluations, "\(tag)")
            case "labeling" where tag != "labeler/retries" && !tag.hasSuffix("_fraction"):
                #expect(values.count == audits, "\(tag)")
            default: #expect(!values.isEmpty, "\(tag)")
            }
        }
        #expect(scalars.keys.contains { $0.hasPrefix("cluster/jobs/") })
        #expect(text["eval/examples"]?.count == evaluations)
        let table = try #require(text["eval/examples"]?.first?[1] as? String)
        #expect(table.hasPrefix("| prompt | policy | SFT |") && table.split(separator: "\n").count == 2 + 3)
        #expect((text["run/settings"]?.first?[1] as? String)?.contains("\"seed\"") == true)
    }

    /// `count` distinct free TCP ports on loopback (closed again; the caller binds them soon after).
    static func freePorts(_ count: Int) -> [UInt16] {
        let sockets = (0..<count).map { _ in socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) }
        defer { for fd in sockets { close(fd) } }
        return sockets.map { fd in
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, length)
                    return getsockname(fd, $0, &length)
                }
            }
            return UInt16(bigEndian: address.sin_port)
        }
    }

    /// One value of an instant query to Prometheus's HTTP API (nil: no result).
    static func query(_ port: UInt16, _ promQL: String) async throws -> Double? {
        var components = URLComponents(string: "http://127.0.0.1:\(port)/api/v1/query")!
        components.queryItems = [URLQueryItem(name: "query", value: promQL)]
        let (data, _) = try await URLSession.shared.data(from: components.url!)
        let body = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let result = (body?["data"] as? [String: Any])?["result"] as? [[String: Any]]
        return ((result?.first?["value"] as? [Any])?[1] as? String).flatMap(Double.init)
    }

    @Test func prometheus_scrapingTheCoordinator_seesTheWorkersAndTheLabelerLatency() async throws {
        try Self.installPeers()
        let ports = Self.freePorts(2)
        let metricsPort = ports[0], prometheusPort = ports[1]
        let home = FileManager.default.temporaryDirectory.appendingPathComponent(
            "rlaif-prometheus-\(UUID().uuidString)")
        let started = Self.output(
            ["bash", Self.peers, "prometheus-start", home.path, "\(prometheusPort)", "127.0.0.1:\(metricsPort)"])
        defer { _ = Self.output(["bash", Self.peers, "prometheus-stop", home.path]) }
        try #require(started.status == 0, "Prometheus did not start: \(started.errors)")
        // Long enough for a few scrapes, and /metrics kept up after the end for the last one.
        let run = try MethodRunTests.launch([
            "coordinator.metrics_bind=tcp://127.0.0.1:\(metricsPort)", "coordinator.metrics_linger_ms=3000",
            "rl.iterations=40",
        ])
        defer { try? FileManager.default.removeItem(at: run.dir) }
        try #require(run.ok, "the run failed")
        let alive = try await Self.query(prometheusPort, "max_over_time(rlaif_workers_alive[10m])")
        let (targets, _) = try await URLSession.shared.data(
            from: URL(string: "http://127.0.0.1:\(prometheusPort)/api/v1/targets")!)
        #expect(alive == 2, "Prometheus's targets: \(String(decoding: targets, as: UTF8.self))")
        // The run's labeling jobs, from its log: their count and where their median falls.
        let latencies = try Self.lines(run.dir).compactMap { event -> Double? in
            if case .job(_, "labeling", _, _, let seconds) = event { seconds } else { nil }
        }.sorted()
        try #require(!latencies.isEmpty)
        let count = try await Self.query(prometheusPort, "last_over_time(rlaif_labeler_latency_seconds_count[10m])")
        #expect(count == Double(latencies.count))
        let median = try #require(
            try await Self.query(
                prometheusPort, "histogram_quantile(0.5, last_over_time(rlaif_labeler_latency_seconds_bucket[10m]))"))
        // Prometheus interpolates inside the bucket that holds the median: the run's median is in it too.
        let truth = latencies[(latencies.count - 1) / 2]
        let bounds = [0.0] + RunMetrics.labelerLatencyBuckets
        let bucket = try #require(bounds.indices.dropFirst().first { truth <= bounds[$0] })
        #expect(
            median >= bounds[bucket - 1] - 1e-9 && median <= bounds[bucket] + 1e-9, "median \(median), run's \(truth)")
    }

    @Test func report_rendersEveryChart_inHeadlessChromium_withTheNetworkOff() throws {
        try Self.installPeers()
        let run = try MethodRunTests.launch([])
        defer { try? FileManager.default.removeItem(at: run.dir) }
        try #require(run.ok, "the run failed")
        let report = run.dir.appendingPathComponent("report.html")
        let html = try String(contentsOf: report, encoding: .utf8)
        #expect(!html.contains("http://") && !html.contains("https://"), "the page refers to the network")
        let charts = html.components(separatedBy: "<svg class=\"chart\"").count - 1
        #expect(charts >= 12)
        // No network namespace interface but loopback: the page has only itself.
        let rendered = Self.output(
            [
                "unshare", "--net", "chromium", "--headless", "--no-sandbox", "--disable-gpu",
                "--enable-logging=stderr",
                "--v=0", "--virtual-time-budget=3000", "--dump-dom", report.absoluteString,
            ], timeout: 90)
        try #require(rendered.status == 0, "chromium failed: \(rendered.errors.suffix(2000))")
        #expect(rendered.out.contains("<title>rlaif report: \(charts) charts, 0 empty</title>"))
        let console = rendered.errors.split(separator: "\n").filter {
            $0.contains("CONSOLE") || $0.contains("Uncaught")
        }
        #expect(console.isEmpty, "\(console)")
    }
}
