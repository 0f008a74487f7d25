import Coordinator
import RLAIF
import Foundation
import Telemetry

/// What watches a launched run, as cluster.yaml's coordinator section asks: TensorBoard files,
/// Prometheus `/metrics`, and report.html at the end.
struct RunTelemetry {
    let observers: [any RunObserver]
    let server: MetricsServer?
    let metrics: RunMetrics?
    let directory: URL
    let linger: Duration
    let quiet: Bool

    init(config: ClusterConfig, directory: URL, quiet: Bool) async throws {
        let c = config.deployment.coordinator
        var observers: [any RunObserver] = []
        do {
            if c.tensorboard {
                observers.append(try TensorBoardLog(runDirectory: directory, settings: config.sectionsJSON()))
            }
            if !c.metricsBind.isEmpty {
                let metrics = RunMetrics(questionsPerPair: config.settings.labeler.bothOrders ? 2 : 1)
                observers.append(metrics)
                server = try await MetricsServer(bind: c.metricsBind, metrics: metrics)
                self.metrics = metrics
            } else {
                server = nil
                metrics = nil
            }
        } catch {
            throw CommandFailure("cannot start the run's telemetry (coordinator.tensorboard, metrics_bind): \(error)")
        }
        self.observers = observers
        self.directory = directory
        self.linger = .milliseconds(c.metricsLingerMs)
        self.quiet = quiet
        if let server, !quiet {
            let address = await server.address.replacingOccurrences(of: "tcp://", with: "http://")
            print("rlaif: Prometheus metrics on \(address)/metrics")
        }
    }

    /// Job queue gauges read from the run's scheduler at each scrape.
    func watch(_ run: ClusterRun) {
        metrics?.readOccupancy { await run.occupancy() }
    }

    /// Writes the report when asked, then serves `/metrics` for the linger and stops.
    func finish(report: Bool) async {
        if report {
            do {
                let url = try RunReport.write(runDirectory: directory)
                print("rlaif: report in \(url.path)")
            } catch {
                FileHandle.standardError.write(Data("rlaif: the report could not be written: \(error)\n".utf8))
            }
        }
        guard let server else { return }
        if linger > .zero { try? await Task.sleep(for: linger) }
        await server.stop()
    }
}
